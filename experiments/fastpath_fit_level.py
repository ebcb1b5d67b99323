"""Fit the paired translator's level correction (issue 15, fast13): the per-structure mean-level error of the
translator's calibrated mean image, predicted from the structure itself (no Monte Carlo at inference).

fast12 found that the histogram gap left at 2 and 4 keV is mostly each structure's mean level (4 keV: stack-mean
bias sd 0.0017 yield over the 27 held-out structures, half of it present even on the training structures). This
fits, per energy, a ridge regression of that bias (Monte Carlo mean yield minus the calibrated translator's, over
slices 0-3 of each structure) on the mean gold fractions of the translator's own depth bins (the features the
network sees, averaged over the slices), on training-side structures the translator was NOT trained on (their
errors are what a new structure gets), and stores it in the translator's JSON (``level_correction``); at
inference ``PairedTranslator`` adds c(E) + G_sigma * sum_b w_b(E) F_b to the calibrated mean image
(``translator.level_correction_shift``: the depth fractions blurred by a periodic Gaussian, so the shift varies only
on the scale sigma and its mean over a periodic slice is exactly the fitted level).

The ridge parameter is chosen by leave-one-structure-out cross-validation (the rms of the held-out bias printed
before and after for every candidate value); the held-out test structures (fastpath_sets.TEST_SEEDS) are refused.

    nice -n 10 python experiments/fastpath_fit_level.py --weights /tmp/x/paired_translator.pt \\
        --seeds 501 502 ... --level-seeds 601 602 ...
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


def collect(tr, structures, energies, cache, interface_slices=0):
    """(depth means (n, B), biases (n,), energies (n,), seeds (n,)) of every cached (structure, energy)."""
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM
    from fibsynth.fastsim.translator import features, level_features

    f, y, en, sd = [], [], [], []
    nb = len(tr.bins_nm) - 1
    for seed, sf, lig in structures:
        s = sets.train_structure(seed, sf, lig)
        for e in energies:
            try:
                ref = sets.train_mc(seed, sf, lig, e, cache, run=False)["eta"]
            except FileNotFoundError:
                continue
            x = features(s, (VOXEL_NM,) * 3, e, incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES),
                         bins_nm=tr.bins_nm)
            m = tr.calibrate(tr.mean(x), e)
            f.append(level_features(x, nb, {"interface_slices": interface_slices}, s, (0, sets.SLICES)).mean((0, 2, 3)))
            y.append(float(ref.mean() - m.mean()))
            en.append(float(e))
            sd.append(seed)
    return np.asarray(f), np.asarray(y), np.asarray(en), np.asarray(sd)


def loo_rms(f, y, ridge):
    """Leave-one-out rms of the bias after the correction fitted on the others (one energy)."""
    from fibsynth.fastsim.translator import fit_level_correction

    res = []
    for i in range(len(y)):
        k = np.arange(len(y)) != i
        lc = fit_level_correction(f[k], y[k], np.zeros(k.sum()), ridge, 0.0)
        res.append(y[i] - (lc["intercept"][0] + np.dot(lc["weights"][0], f[i])))
    return float(np.sqrt(np.mean(np.square(res)))), np.asarray(res)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, required=True,
                    help="the translator (.pt with its .json) whose .json gets the level correction")
    ap.add_argument("--seeds", type=int, nargs="*", default=[], help="structures of fastpath_sets.TRAIN_MORE")
    ap.add_argument("--level-seeds", type=int, nargs="*", default=[], help="structures of fastpath_sets.TRAIN_LEVEL")
    ap.add_argument("--energies", default="1,2,3,4")
    ap.add_argument("--ridge", default="1,3,10,30,100", help="candidate ridge parameters (chosen by LOO, per energy)")
    ap.add_argument("--sigma-px", type=float, default=16.0, help="the shift's periodic Gaussian blur, pixels")
    ap.add_argument("--interface-slices", type=int, default=0,
                    help="also the face's interface density over this many slices as a feature (0: depth bins only)")
    ap.add_argument("--cache", type=Path, default=sets.CACHE)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from fibsynth.fastsim.translator import PairedTranslator, fit_level_correction

    params = {t[0]: t for t in sets.TRAIN_MORE + sets.TRAIN_LEVEL}
    seeds = list(a.seeds) + list(a.level_seeds)
    bad = sorted(set(seeds) & set(sets.TEST_SEEDS))
    if bad:
        print(f"structures {bad} are held-out test structures: not read here", file=sys.stderr)
        return 2
    unknown = [s for s in seeds if s not in params]
    if unknown:
        print(f"structures {unknown} are in neither TRAIN_MORE nor TRAIN_LEVEL", file=sys.stderr)
        return 2
    tr = PairedTranslator(a.weights)
    tr.config.pop("level_correction", None)  # the bias of the translator without one
    trained = set(tr.config["training"]["data"].get("train_structures", []))
    if trained & set(seeds):
        print(f"note: structures {sorted(trained & set(seeds))} were trained on (their error is partly fitted)",
              file=sys.stderr)
    t0 = time.perf_counter()
    f, y, en, sd = collect(tr, [params[s] for s in seeds], [float(v) for v in a.energies.split(",")], a.cache,
                        a.interface_slices)
    ridges = [float(v) for v in a.ridge.split(",")]
    fits, report = [], {}
    for e in sorted(set(en.tolist())):
        k = en == e
        # feature sets: the depth bins, and (with --interface-slices) the depth bins + the interface density; the
        # set and the ridge with the lowest leave-one-out rms are kept (per energy)
        sets_ = {"depth bins": f.shape[1] - (1 if a.interface_slices else 0)}
        if a.interface_slices:
            sets_["depth bins + interface"] = f.shape[1]
        rows = {(fs, r): loo_rms(f[k][:, :nf], y[k], r)[0] for fs, nf in sets_.items() for r in ridges}
        fs_best, best = min(rows, key=rows.get)
        nf = sets_[fs_best]
        std = np.array([params[v][1:] == (0.3, 40.0) for v in sd[k]])  # the test set's parameters
        if std.sum() >= 2:
            _, res_best = loo_rms(f[k][:, :nf], y[k], best)
            _, res_const = loo_rms(f[k], y[k], 1e12)
            print(f"  {e:g} keV, the {int(std.sum())} structures with the test set's parameters (0.3, 40 nm): "
                  f"leave-one-out rms {np.sqrt(np.mean(res_const[std] ** 2)):.5f} (mean bias only) -> "
                  f"{np.sqrt(np.mean(res_best[std] ** 2)):.5f} ({fs_best}, ridge {best:g})", flush=True)
        rms0 = float(np.sqrt(np.mean(y[k] ** 2)))
        rmsc = float(np.sqrt(np.mean((y[k] - y[k].mean()) ** 2)))
        print(f"{e:g} keV: {int(k.sum())} structures; bias rms {rms0:.5f} (about its mean {rmsc:.5f}); "
              "leave-one-out rms after the correction: " + "; ".join(
                  f"{fs}: " + ", ".join(f"ridge {r:g} {v:.5f}" for (fs_, r), v in rows.items() if fs_ == fs)
                  for fs in sets_) + f" -> {fs_best}, ridge {best:g}", flush=True)
        report[str(e)] = {"structures": int(k.sum()), "bias_rms": rms0, "bias_sd_about_mean": rmsc,
                          "loo_rms": {f"{fs}, ridge {r:g}": v for (fs, r), v in rows.items()}, "ridge": best,
                          "features": fs_best}
        ft = fit_level_correction(f[k][:, :nf], y[k], en[k], best, a.sigma_px, a.interface_slices)
        ft["weights"][0] += [0.0] * (f.shape[1] - nf)  # the interface density unused at this energy
        fits.append(ft)
    cfg_path = a.weights.with_suffix(".json")
    cfg = json.loads(cfg_path.read_text())
    cfg["level_correction"] = {
        "by": "experiments/fastpath_fit_level.py", "sigma_px": a.sigma_px, "interface_slices": a.interface_slices,
        "data": f"structures {seeds} (training side, not trained on), slices 0-{sets.SLICES - 1}, {sets.ELECTRONS} "
                "e/px, one Monte Carlo realisation each",
        "model": "bias = MC mean yield - calibrated translator's, per energy: c + sum_b w_b mean gold fraction of depth "
                 "bin b (the translator's depth features) [+ w_i x the face's interface density]; ridge chosen by leave-one-structure-out; applied as "
                 "c + G_sigma * sum_b w_b F_b after the histogram calibration",
        "energies_kev": [ft["energies_kev"][0] for ft in fits], "intercept": [ft["intercept"][0] for ft in fits],
        "weights": [ft["weights"][0] for ft in fits], "ridge": [ft["ridge"] for ft in fits],
        "cross_validation": report, "seconds": time.perf_counter() - t0}
    tmp = cfg_path.with_name(cfg_path.name + ".tmp")
    tmp.write_text(json.dumps(cfg, indent=1))
    tmp.replace(cfg_path)
    print("written", cfg_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
