"""How large may the paired translator's mean-image error be before the issue-15 histogram distance notices it?

A synthetic check on one held-out structure (experiments/fastpath_sets.py, seed 201, 2 keV): the translator's mean
image m stands for the true mean; the "Monte Carlo" is Binomial(100, m) / 100 and the "translator" is
Binomial(100, m + b + sigma * white noise) / 100, so the histogram distance (``fibsynth.fastsim.fidelity``) is
measured against a known pixel error sigma and bias b; 6 noise draws each, mean +- sd.

    nice -n 10 python benchmarks/fastpath_hist_sensitivity.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import fastpath_sets as sets  # noqa: E402


def main() -> None:
    from fibsynth.fastsim import fidelity as F
    from fibsynth.fastsim.translator import load_paired, shot_noise

    s = sets.test_structure(201)
    _, m = load_paired()(s, (F.VOXEL_NM,) * 3, 2.0, electrons_per_pixel=sets.ELECTRONS, seed=11,
                         incidence_deg=F.INCIDENCE_DEG, slices=(0, sets.SLICES))
    rng = np.random.default_rng(0)
    print("pixel error sd, bias -> histogram distance (mean +- sd of 6 draws)")
    for sig in (0.0, 0.005, 0.01, 0.015, 0.02, 0.03):
        for b in (0.0, 0.001, 0.002):
            d = []
            for t in range(6):
                ref = shot_noise(m, sets.ELECTRONS, 1000 + t)
                mm = np.clip(m + b + sig * rng.standard_normal(m.shape), 0, 1)
                d.append(F.hist_distance(shot_noise(mm, sets.ELECTRONS, 2000 + t), ref))
            print(f"  sigma {sig:.3f}, bias {b:.3f}: {np.mean(d):.4f} +- {np.std(d, ddof=1):.4f}", flush=True)


if __name__ == "__main__":
    main()
