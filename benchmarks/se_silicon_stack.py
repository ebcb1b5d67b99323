"""Test stack for the SE translator's effect on reconstruct (issue 17 item 5): an in-lens Monte Carlo stack of
silicon with open pores at 2 keV (5 nm voxels, 38 deg as the translator), from the test generator's band-pass
structure (benchmarks/realistic_stack.py, not fibsynth's leveled wave), 8-bit, with the Monte Carlo's own noise at
20 e/px; its truth beside it.
Usage (session 9: seeds 301 and 302, one core, 66-113 s each), then two reconstructs per stack:
    python benchmarks/se_silicon_stack.py SEED OUT
    fibsynth reconstruct OUT/si_SEED_stack.tif R_auto --truth OUT/si_SEED_truth.tif --solid silicon --pore vacuum \
        --detector inlens --energy-kev 2 --translation auto          # the shipped SE translator (the default)
    ... the same with --translation projection                      # the SE projection alone
MDS against the truth is in R_*/summary.json ("evaluation"). Results: docs/reconstruct.md, section se9b."""
import sys
import time
from pathlib import Path

import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))
from realistic_stack import grf_structure
from fibsynth.config import VoxelSize
from fibsynth.io.metadata import VolumeMeta
from fibsynth.io.volume import write_volume
from fibsynth.physics.montecarlo.detectors import SignalDetector
from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
from fibsynth.physics.montecarlo.stack import simulate_stack

seed, out = int(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
n, side, behind = 32, 96, 40
vol = grf_structure((n + behind, side, side), (5.0, 5.0, 5.0), solid_fraction=0.4, length_nm=90.0, seed=seed).astype(np.uint8)
st = StackSettings(beam=Beam(energy_kev=2.0, incidence_deg=38.0), electrons_per_pixel=20, seed=seed,
                   geometry=StackGeometry(solid="silicon", pore="vacuum", backing="repeat"),
                   signal=SignalDetector(kind="inlens"))
t0 = time.time()
res = simulate_stack(vol, VoxelSize(x=5, y=5, z=5), st, slices=(0, n), progress=False)
eta = np.asarray(res["eta"], np.float32)
lo, hi = np.percentile(eta, [0.5, 99.5])
img = np.clip((eta - lo) / (hi - lo) * 255 + 0.5, 0, 255).astype(np.uint8)
vs = VoxelSize(x=5, y=5, z=5)
write_volume(out / f"si_{seed}_stack.tif", img, VolumeMeta(kind="image", voxel_size_nm=vs, energy_kev=2.0,
             materials={"solid": "silicon", "pore": "vacuum"}, seed=seed, generator="benchmarks/se_silicon_stack.py"))
write_volume(out / f"si_{seed}_truth.tif", vol[:n], VolumeMeta(kind="structure", voxel_size_nm=vs, seed=seed,
             generator="realistic_stack.grf_structure"))
print("seconds", round(time.time() - t0, 1), "solid fraction", float(vol[:n].mean()))
