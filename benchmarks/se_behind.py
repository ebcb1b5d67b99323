"""How much sample behind the last slice a simulated SE image of open pores needs (docs/reconstruct.md, "se16";
generate.SE_BEHIND_NM). The paired SE translator images the test generator's structure of an in-lens silicon stack
(benchmarks/se_silicon_stack.py, 32 slices of 5 nm) with 0, 40, 80 and 200 nm of the same structure behind it; prints
the 2-class first pass of the last two slices and of the stack, and how far the last slice's image lies from the one
with 200 nm behind (mean absolute difference over the 1-99 % gray range).
Usage: python benchmarks/se_behind.py [SEED]   (seconds on one core)"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realistic_stack import grf_structure  # noqa: E402
from fibsynth.reconstruct import estimate as E  # noqa: E402
from fibsynth.reconstruct import generate as G  # noqa: E402

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 302
vz, n = (5.0, 5.0, 5.0), 32
vol = grf_structure((n + 40, 96, 96), vz, solid_fraction=0.4, length_nm=90.0, seed=seed).astype(np.uint8)
out = {}
for b in (0, 8, 16, 40):
    img, _ = G.image_structure(vol[:n + b], vz, 2.0, materials=("silicon", "vacuum"), detector="inlens",
                               translation="paired")
    out[b] = img[:n]
    fp = E.first_pass(img[:n], classes=2)["otsu"]
    print(f"{b * 5:4d} nm behind: first pass of the last two slices {np.round(fp.mean(axis=(1, 2))[-2:], 3)}, "
          f"of the stack {fp.mean():.3f}")
span = float(np.percentile(out[40], 99) - np.percentile(out[40], 1))
for b in (0, 8, 16):
    print(f"{b * 5:4d} nm behind: mean |last slice - last slice with 200 nm behind| / gray range "
          f"{np.abs(out[b][-1] - out[40][-1]).mean() / span:.3f}")
