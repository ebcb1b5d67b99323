"""Fit the paired translator's histogram calibration (issue 15, gray-value histogram target) on its training pairs.

The translator regresses the Monte Carlo's mean image; a regression to the mean is slightly too narrow in the tails
of the gray-value distribution, so Binomial(N, m) / N misses the Monte Carlo's histogram by more than a second Monte
Carlo run does. Per training energy this fits a monotone offset m -> m + offset(m) (piecewise linear at
``translator.HIST_KNOTS``) such that the expected count histogram of the noisy output matches that of the Monte
Carlo images of the same slices (``translator.fit_histogram_offsets``), on the translator's own training data
(fastpath_sets.TRAIN, structures 101-106, slices 0-3, 100 e/px; the held-out test structures 201-203 are never
read), and stores it in the translator's JSON (``histogram_calibration``).

    nice -n 10 python experiments/fastpath_fit_histogram.py [--smooth 3] [--ship]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastpath_sets as sets  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=sets.CACHE)
    ap.add_argument("--smooth", type=float, default=3.0, help="weight of the offsets' squared second differences")
    ap.add_argument("--out", type=Path, default=Path("/tmp/fastpath/paired_translator.json"),
                    help="the translator JSON with the calibration (a copy of the shipped one)")
    ap.add_argument("--ship", action="store_true", help="write it into the shipped JSON instead")
    ap.add_argument("--weights", type=Path, default=None,
                    help="calibrate this translator (.pt with its .json; written into that .json) instead of the shipped")
    ap.add_argument("--extra-unet-test", action="store_true",
                    help="also fit on the extra training pairs of fastpath_train_translator.py --extra-unet-test "
                         "(the U-Net benchmark's MC stacks 401-403 at 1/2/4 keV)")
    ap.add_argument("--more", type=int, nargs="*", default=[],
                    help="also fit on these structures of fastpath_sets.TRAIN_MORE (as fastpath_train_translator.py --more)")
    ap.add_argument("--more-level", type=int, nargs="*", default=[],
                    help="also fit on these structures of fastpath_sets.TRAIN_LEVEL (as fastpath_train_translator.py "
                         "--more-level); --more and --more-level structures: the energies whose Monte Carlo is cached")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from fibsynth.fastsim import translator as T
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM

    tr = T.load_paired(a.weights)
    extra = []
    if a.extra_unet_test:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
        import bench_fastpath_unet as U

        extra = [(seed, U.structure(seed, U.TEST_SLICES)) for seed in U.TEST_SEEDS]
    more = {t[0]: t for t in sets.TRAIN_MORE}
    level = {t[0]: t for t in sets.TRAIN_LEVEL}
    structures = tuple(sets.TRAIN) + tuple(more[v] for v in a.more) + tuple(level[v] for v in a.more_level)
    n_base = len(sets.TRAIN)
    fits = []
    t0 = time.perf_counter()
    for e in sets.TRAIN_ENERGIES:
        means, mcs = [], []
        for i, (seed, sf, lig) in enumerate(structures):
            try:
                mc = sets.train_mc(seed, sf, lig, e, a.cache, run=False)["eta"]
            except FileNotFoundError:
                if i < n_base:
                    raise
                continue  # an extra structure without this energy
            s = sets.train_structure(seed, sf, lig)
            _, m = tr(s, (VOXEL_NM,) * 3, e, electrons_per_pixel=0, incidence_deg=INCIDENCE_DEG,
                      slices=(0, sets.SLICES), calibrated=False)
            means.append(m)
            mcs.append(mc)
        for seed, s in extra:
            try:
                mc = U.mc(seed, U.TEST_SLICES, e, run=False)["eta"]
            except FileNotFoundError:  # 3 keV: not in that cache
                continue
            _, m = tr(s, (VOXEL_NM,) * 3, e, electrons_per_pixel=0, incidence_deg=INCIDENCE_DEG,
                      slices=(0, U.TEST_SLICES), calibrated=False)
            means.append(m)
            mcs.append(mc)
        f = T.fit_histogram_offsets(means, mcs, sets.ELECTRONS, smooth=a.smooth)
        f["images"] = len(means)
        if not f["monotone"]:
            print(f"{e:g} keV: the fitted map is not monotone", file=sys.stderr)
            return 1
        fits.append(f)
        print(f"{e:g} keV: expected-histogram distance on the training pairs {f['distance_before']:.5f} -> "
              f"{f['distance_after']:.5f} (yield units); offsets {np.round(f['offsets'], 4).tolist()}", flush=True)
    cfg_path = T.DEFAULT_CONFIG if a.weights is None else a.weights.with_suffix(".json")
    cfg = json.loads(cfg_path.read_text())
    cfg["histogram_calibration"] = {
        "by": "experiments/fastpath_fit_histogram.py", "smooth": a.smooth,
        "data": "training structures " + ", ".join(str(t[0]) for t in structures) + f", slices 0-{sets.SLICES - 1}, "
                f"{sets.ELECTRONS} e/px (the translator's training pairs)"
                + (", and the U-Net benchmark's MC stacks " + ", ".join(str(t[0]) for t in extra)
                   + " (12 slices, 1/2/4 keV)" if extra else ""),
        "objective": "Wasserstein distance (yield units) of the expected count histogram of Binomial(N, m + offset(m))"
                     " from the Monte Carlo's, + smooth x sum of squared second differences of the offsets",
        "knots": list(fits[0]["knots"]), "energies_kev": [float(e) for e in sets.TRAIN_ENERGIES],
        "offsets": [[round(float(v), 6) for v in f["offsets"]] for f in fits],
        "distance_before": [f["distance_before"] for f in fits], "distance_after": [f["distance_after"] for f in fits],
        "images_per_energy": [f["images"] for f in fits],
        "seconds": time.perf_counter() - t0}
    out = T.DEFAULT_CONFIG if a.ship else (cfg_path if a.weights is not None else a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(cfg, indent=1))
    tmp.replace(out)
    print("written", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
