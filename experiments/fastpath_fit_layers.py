"""Fit the depth-layer projection's weights (``fibsynth.fastsim.projection``, method="depth_layers") to the Monte Carlo images of the
*training* structures of experiments/fastpath_sets.py (101-106, 1/2/3/4 keV; never the held-out test set), by
least squares per energy, and write ``src/fibsynth/fastsim/data/depth_layers.json``.

    nice -n 10 python experiments/fastpath_fit_layers.py          # needs the cached MC data (fastpath_sets.py)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastpath_sets as sets  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "src" / "fibsynth" / "fastsim" / "data" / "depth_layers.json"


def main() -> None:
    from fibsynth.fastsim import projection as L
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM, pearson
    from fibsynth.fastsim.projection import DEPTH_BINS_NM

    rows, corr = [], {}
    for e in sets.TRAIN_ENERGIES:
        xs, ys, parts = [], [], []
        for seed, sf, lig in sets.TRAIN:
            s = sets.train_structure(seed, sf, lig)
            f = L.layer_features(s, (VOXEL_NM,) * 3, e, INCIDENCE_DEG, 0, sets.SLICES, solid="gold", pore="epoxy")
            y = sets.train_mc(seed, sf, lig, e, run=False)["eta"]
            xs.append(np.concatenate([np.ones((1, f[0].size)), f.reshape(len(f), -1)]).T)
            ys.append(y.ravel())
            parts.append((xs[-1], ys[-1]))
        w, *_ = np.linalg.lstsq(np.concatenate(xs), np.concatenate(ys), rcond=None)
        rows.append(w.tolist())
        corr[str(e)] = [pearson(x @ w, y) for x, y in parts]
        print(f"{e:g} keV: weights {np.round(w, 4).tolist()}, training corr {np.mean(corr[str(e)]):.4f}")
    table = {"format": L.LAYERS_FORMAT, "materials": ["gold", "epoxy"], "energies_kev": list(sets.TRAIN_ENERGIES),
             "spread_nm": L.LAYERS_SPREAD_NM, "depth_bins_nm": list(DEPTH_BINS_NM),
             "weights_order": ["intercept (pore)", "thin-solid window projection (group-normalised)"]
             + [f"solid fraction {DEPTH_BINS_NM[j]:g}-{DEPTH_BINS_NM[j + 1]:g} nm"
                for j in range(1, len(DEPTH_BINS_NM) - 1)],
             "weights": rows,
             "fitted_on": {"structures": [list(t) for t in sets.TRAIN], "slices": sets.SLICES, "size": sets.SIZE,
                           "voxel_nm": VOXEL_NM, "incidence_deg": INCIDENCE_DEG,
                           "electrons_per_pixel": sets.ELECTRONS, "training_corr": corr,
                           "script": "experiments/fastpath_fit_layers.py"}}
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    tmp.replace(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
