"""Where the SE calibration's fixed-point iteration goes beyond the shipped E.CALIBRATION_ITERATIONS_SE (docs/
reconstruct.md, "se16"): replicates the estimate step of a finished in-lens silicon run (its inspected stack from the
step cache, its workflow seed, the same simulations) for N iterations and prints the estimate after each.
Usage: python benchmarks/se_calibration_fixed_point.py RUN_DIR N   (RUN_DIR: a `fibsynth reconstruct` output of an
in-lens silicon stack at 2 keV, 5 nm voxels, e.g. from benchmarks/se_silicon_stack.py; ~15 s per iteration)"""
import glob
import json
import sys

import numpy as np

from fibsynth.reconstruct import estimate as E
from fibsynth.reconstruct import generate as G

run, n_it = sys.argv[1], int(sys.argv[2])
s = json.load(open(f"{run}/summary.json"))
k_in = [x for x in s["steps"] if x["step"] == "inspect"][0]["key"]
real = np.load(glob.glob(f"{run}/work/cache/{k_in}*/real.npy")[0])
vz, energy, seed = tuple(s["voxel_size_nm"][k] for k in ("z", "y", "x")), float(s["energy_kev"]), s["settings"]["seed"]
mat, fd, noise = ("silicon", "vacuum"), "inlens", s["inspection"]["noise_relative"]


def simulate(est, i):  # as workflow._reconstruct's simulate
    p = G.draw_parameters(est, 1, vz, seed + 500 + i, spread=False)[0]
    return G.calibration_image(p, (int(min(real.shape[0], 32)), 96, 96), vz, energy, materials=mat,
                               translation="auto", detector=fd, seed=seed + i,
                               rng=np.random.default_rng((seed, 99, i)), noise_relative=noise)


raw = E.estimate_structure(E.first_pass(E._crop(real), classes=2), vz, seed=seed)
fp = raw["quantities"]["solid_fraction"]["value"]
est = E.calibrate(raw, simulate, vz, seed=seed, scale=E.CALIBRATION_SCALE, iterations=n_it, simulations=1, classes=2)
print(run, "first pass", round(fp, 4), "estimate after each iteration",
      [round(fp - b["solid_fraction"], 3) for b in est["calibration"]["bias"]])
