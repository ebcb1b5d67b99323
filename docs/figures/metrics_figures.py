"""Make docs/figures/metrics_directional.png: TPCF and lineal path along x, y, z for an isotropic structure and
for the same structure stretched 1.5x along z (scipy.ndimage.zoom, order 0).

Run: .venv/bin/python docs/figures/metrics_figures.py   (about a minute on 2 cores)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from fibsynth.metrics import isotropy_report
from fibsynth.metrics.plotting import plot_directional

N, SIGMA, SEED, VOXEL_NM = 160, 4.0, 0, 5.0


def main() -> None:
    g = ndi.gaussian_filter(np.random.default_rng(SEED).standard_normal((N, N, N)), SIGMA, mode="wrap")
    iso = g > 0.2 * g.std()  # isotropic filter -> statistically isotropic structure, phi ~ 0.42
    stretched = ndi.zoom(iso, (1.5, 1.0, 1.0), order=0)[:N]
    reps = []
    for title, a in (("isotropic", iso), ("stretched 1.5x along z", stretched)):
        r = isotropy_report(a, VOXEL_NM, return_functions=True)
        print(title, {k: round(v, 4) for k, v in r.items() if isinstance(v, float)})
        reps.append((title, r))
    out = Path(__file__).with_name("metrics_directional.png")
    plot_directional(reps, out)
    print("wrote", out)


if __name__ == "__main__":
    main()
