"""Does an aligned stack's fill hurt reconstruct? (lead, session 10)

``make SRC OUT SEED``: the stack SRC as an aligned stack: each slice loses the edge strips its acquisition drift
uncovered (an integer random walk, steps -2..2 px per slice), filled with 0 as Fiji's alignment does; the structure
itself is not moved, so the ground truth of SRC stays the truth.

``score TRUTH RUN [RUN ...]``: MDS against TRUTH of each run's segmentation, Otsu and k-means, all on the same
region: the one the newest run in the list left after taking the fill out (its ``summary.json`` ``region``); runs
that reconstructed the whole stack are cropped to it.

    python benchmarks/alignment_fill.py make example_stack.tif aligned.tif 2
    fibsynth reconstruct aligned.tif out_new --threads 1
    PYTHONPATH=<checkout before the change>/src fibsynth reconstruct aligned.tif out_old --threads 1
    python benchmarks/alignment_fill.py score example_truth.tif out_old out_new
"""

from __future__ import annotations

import json
import sys

import numpy as np

from fibsynth.io import read_volume, write_volume
from fibsynth.metrics import evaluate_segmentation


def make(src: str, out: str, seed: int) -> None:
    v = read_volume(src)
    a = np.asarray(v.data).copy()
    rng = np.random.default_rng(seed)
    steps = rng.integers(-2, 3, (a.shape[0], 2))
    drift = np.cumsum(steps, axis=0) - steps[0]
    ny, nx = a.shape[1:]
    for k, (dy, dx) in enumerate(drift):
        if dy > 0:
            a[k, :dy] = 0
        if dy < 0:
            a[k, ny + dy:] = 0
        if dx > 0:
            a[k, :, :dx] = 0
        if dx < 0:
            a[k, :, nx + dx:] = 0
    write_volume(out, a, v.meta)
    print(f"drift y {drift[:, 0].min()}..{drift[:, 0].max()} px, x {drift[:, 1].min()}..{drift[:, 1].max()} px; "
          f"fill {100 * float((a == 0).mean()):.1f} % of the voxels")


def score(truth_path: str, runs: list[str]) -> None:
    truth = np.asarray(read_volume(truth_path).data).astype(np.uint8)
    region = json.load(open(f"{runs[-1]}/summary.json"))["region"]
    (z0, y0, x0), (nz, ny, nx) = region["offset_zyx"], region["shape_zyx"]
    box = (slice(z0, z0 + nz), slice(y0, y0 + ny), slice(x0, x0 + nx))
    t = truth[box]
    for run in runs:
        row = []
        for name in ("segmentation", "otsu", "kmeans"):
            seg = np.asarray(read_volume(f"{run}/{name}.tif").data).astype(np.uint8)
            seg = seg if seg.shape == t.shape else seg[box]
            row.append(f"{name} MDS {evaluate_segmentation(seg, t)['MDS']:.3f} (solid {seg.mean():.3f})")
        s = json.load(open(f"{run}/summary.json"))
        print(f"{run}: " + ", ".join(row) + f"; truth solid {t.mean():.3f}; {s['seconds_total']:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "make" and len(sys.argv) == 5:
        make(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
