"""Fit the depth-layer projection's weights (``fibsynth.fastsim.projection``, method="depth_layers") to the Monte Carlo images of the
*training* structures of experiments/fastpath_sets.py (101-106 and, with --more, structures of TRAIN_MORE; 1/2/3/4
keV; never the held-out test set), by least squares per energy, and write ``src/fibsynth/fastsim/data/depth_layers.json``
(or --out).

    nice -n 10 python experiments/fastpath_fit_layers.py [--spreads 0,5,25 --projection-spreads 5,25]
        [--more 501 502 ...] [--out PATH]                # needs the cached MC data (fastpath_sets.py)

The fast10 table: one spread of 5 nm per bin, no blurred projection (``--spreads 5 --projection-spreads ""``), fitted
on 101-106. Since the fast11 round: spreads 0, 5, 25 nm per bin and the projection blurred at 5 and 25 nm, chosen by
leave-one-structure-out correlation on training structures only (docs/fastsim.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastpath_sets as sets  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "src" / "fibsynth" / "fastsim" / "data" / "depth_layers.json"
#: anchor configurations (fast11): laterally uniform gold/epoxy, (first, last + 1) gold slices of a 80 x 16 x 16
#: structure (5 nm voxels); "pore" = all epoxy, "bulk" = all gold. Their Monte Carlo yields (slice 0, 400 e/px) enter
#: the least squares as pseudo-observations so that the fitted linear model stays physical outside the training
#: structures' range (without them the multi-spread fit gave bulk gold 0.38 and a buried layer 0.59 at 4 keV, where
#: the Monte Carlo gives 0.51 and 0.47).
ANCHORS = {"pore": None, "bulk": "all", "0-10 nm": (0, 2), "5-15 nm": (1, 3), "15-35 nm": (3, 7),
           "40-80 nm": (8, 16), "100-200 nm": (20, 40)}
ANCHOR_ELECTRONS = 400
ANCHOR_SEED = 3


def anchor_volumes():
    out = {}
    for name, r in ANCHORS.items():
        v = np.zeros((80, 16, 16), np.uint8)
        if r == "all":
            v[:] = 1
        elif r:
            v[r[0]:r[1]] = 1
        out[name] = v
    return out


def _floats(text):
    return tuple(float(v) for v in text.split(",") if v.strip())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spreads", default="0,5,25", help="lateral spreads (nm) of every depth bin, comma separated")
    ap.add_argument("--projection-spreads", default="5,25",
                    help="extra copies of the projection blurred at these spreads (nm); empty: none")
    ap.add_argument("--more", type=int, nargs="*", default=[], help="also fit on these structures of TRAIN_MORE")
    ap.add_argument("--anchor-weight", type=float, default=0.03,
                    help="weight of each anchor configuration's pseudo-observation, as a fraction of the number of "
                         "training pixels (0: none, the fast10 fit)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    from fibsynth.fastsim import projection as L
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM, mc_images, pearson
    from fibsynth.fastsim.projection import DEPTH_BINS_NM

    spreads, pspreads = _floats(a.spreads), _floats(a.projection_spreads)
    more = {t[0]: t for t in sets.TRAIN_MORE}
    structures = tuple(sets.TRAIN) + tuple(more[v] for v in a.more)
    rows, corr, anchors = [], {}, {}
    for e in sets.TRAIN_ENERGIES:
        xs, ys, parts = [], [], []
        for seed, sf, lig in structures:
            s = sets.train_structure(seed, sf, lig)
            f = L.layer_features(s, (VOXEL_NM,) * 3, e, INCIDENCE_DEG, 0, sets.SLICES, solid="gold", pore="epoxy",
                                 spreads_nm=spreads, projection_spreads_nm=pspreads)
            y = sets.train_mc(seed, sf, lig, e, run=False)["eta"]
            xs.append(np.concatenate([np.ones((1, f[0].size)), f.reshape(len(f), -1)]).T)
            ys.append(y.ravel())
            parts.append((xs[-1], ys[-1]))
        a_rows, a_eta = [], []
        if a.anchor_weight > 0:
            for name, v in anchor_volumes().items():
                f = L.layer_features(v, (VOXEL_NM,) * 3, e, INCIDENCE_DEG, 0, 1, solid="gold", pore="epoxy",
                                     spreads_nm=spreads, projection_spreads_nm=pspreads)
                a_rows.append(np.r_[1.0, f.reshape(len(f), -1).mean(1)])
                a_eta.append(float(mc_images(v, e, slices=1, electrons_per_pixel=ANCHOR_ELECTRONS, seed=ANCHOR_SEED,
                                             cache=sets.CACHE)["eta"].mean()))
        A, b = np.concatenate(xs), np.concatenate(ys)
        G, r = A.T @ A, A.T @ b
        if a_rows:
            W = a.anchor_weight * len(b)
            an = np.asarray(a_rows)
            G, r = G + W * an.T @ an, r + W * an.T @ np.asarray(a_eta)
        w = np.linalg.solve(G, r)
        rows.append(w.tolist())
        corr[str(e)] = [pearson(x @ w, y) for x, y in parts]
        anchors[str(e)] = {n: {"monte_carlo": t, "model": float(row @ w)} for n, row, t in zip(ANCHORS, a_rows, a_eta)}
        print(f"{e:g} keV: weights {np.round(w, 4).tolist()}, training corr {np.mean(corr[str(e)]):.4f}; anchors "
              + ", ".join(f"{n} {v['model']:.3f}/{v['monte_carlo']:.3f}" for n, v in anchors[str(e)].items()))
    table = {"format": L.LAYERS_FORMAT, "materials": ["gold", "epoxy"], "energies_kev": list(sets.TRAIN_ENERGIES),
             "spreads_nm": list(spreads), "projection_spreads_nm": list(pspreads),
             "depth_bins_nm": list(DEPTH_BINS_NM),
             "weights_order": ["intercept (pore)", "thin-solid window projection (group-normalised)"]
             + [f"the projection blurred at {t:g} nm" for t in pspreads]
             + [f"solid fraction {DEPTH_BINS_NM[j]:g}-{DEPTH_BINS_NM[j + 1]:g} nm, blurred at {sp:g} nm"
                for j in range(1, len(DEPTH_BINS_NM) - 1) for sp in spreads],
             "weights": rows,
             "fitted_on": {"structures": [list(t) for t in structures], "slices": sets.SLICES, "size": sets.SIZE,
                           "voxel_nm": VOXEL_NM, "incidence_deg": INCIDENCE_DEG,
                           "electrons_per_pixel": sets.ELECTRONS, "training_corr": corr,
                           "anchor_weight": a.anchor_weight,
                           "anchors": {"configurations": {n: (list(r) if isinstance(r, tuple) else r)
                                                          for n, r in ANCHORS.items()},
                                       "shape": [80, 16, 16], "electrons_per_pixel": ANCHOR_ELECTRONS,
                                       "seed": ANCHOR_SEED, "yields": anchors},
                           "script": "experiments/fastpath_fit_layers.py"}}
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    tmp.replace(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
