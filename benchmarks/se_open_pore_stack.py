"""A Monte Carlo in-lens SE test stack of open pores (gold, vacuum pores, 2 keV), degraded by the test artifact
model of benchmarks/realistic_stack.py, and its truth: the stack behind docs/reconstruct.md's `--detector inlens`
measurement.

    PYTHONPATH=src python benchmarks/se_open_pore_stack.py OUT_STACK.tif OUT_TRUTH.tif --shape 16 64 64 --epp 10
    fibsynth reconstruct OUT_STACK.tif OUT/ --pore vacuum --detector inlens --truth OUT_TRUTH.tif
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume
    from fibsynth.physics.montecarlo.detectors import SignalDetector
    from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("truth")
    ap.add_argument("--shape", type=int, nargs=3, default=(16, 64, 64))
    ap.add_argument("--epp", type=int, default=10, help="electrons per pixel")
    ap.add_argument("--detector", default="inlens", choices=("se", "inlens", "et"))
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args(argv)
    spec = importlib.util.spec_from_file_location("realistic_stack", Path(__file__).with_name("realistic_stack.py"))
    R = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(R)
    vz = (8.0, 4.0, 4.0)
    truth = R.grf_structure(tuple(a.shape), vz, 0.35, 60.0, seed=a.seed).astype(np.uint8)
    t0 = time.time()
    st = StackSettings(energy_kev=2.0, electrons_per_pixel=a.epp, solid="gold", pore="vacuum", backing="repeat", seed=5,
                       signal=SignalDetector(kind=a.detector))
    img = np.asarray(simulate_stack(truth, VoxelSize(z=8, y=4, x=4), st, progress=False)["eta"], np.float32)
    u8, tr, _ = R.degrade(img, truth, seed=4)
    vox = VoxelSize.from_xy_z(4, 8)
    write_volume(a.out, u8, VolumeMeta(kind="image", voxel_size_nm=vox, energy_kev=2.0, materials={"0": "vacuum", "1": "gold"},
                                       generator=f"benchmarks/se_open_pore_stack.py (Monte Carlo {a.detector} SE, open pores)",
                                       parameters={"shape": list(a.shape), "electrons_per_pixel": a.epp, "seed": a.seed,
                                                   "detector": a.detector}))
    write_volume(a.truth, tr, VolumeMeta(kind="label", voxel_size_nm=vox))
    print(f"wrote {a.out}: Monte Carlo {time.time() - t0:.0f} s, truth solid fraction {float(tr.mean()):.3f}")


if __name__ == "__main__":
    main()
