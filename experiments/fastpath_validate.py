"""Score paired translators on TRAINING-side structures that none of them was fitted on (issue 15, fast11 round), so
that a candidate can be chosen without reading the held-out test set (fastpath_sets.TEST_SEEDS).

    nice -n 10 python experiments/fastpath_validate.py --seeds 513 514 515 516 \
        --translator shipped=src/fibsynth/fastsim/data/paired_translator.pt --translator G=/tmp/x/paired_translator.pt

Structures: fastpath_sets.TRAIN + TRAIN_MORE by seed (one Monte Carlo realisation each, 100 e/px, slices 0-3, cached
by experiments/fastpath_sets.py). Per structure and energy: the mean image's bias (stack mean minus the Monte Carlo's,
and per slice), its error sd against the true mean (the binomial noise part removed) and the histogram distance of
the noisy output (4 noise draws) from the Monte Carlo image (``fidelity.hist_distance``; there is no second
realisation here, so this includes the Monte Carlo's own noise: compare translators with each other, paired per
structure). Candidates are also given minus the first translator, as paired 95 % t-intervals over the structures.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastpath_sets as sets  # noqa: E402

NOISE_SEEDS = (11, 12, 13, 14)


def score(tr, seeds, energies, cache):
    from fibsynth.fastsim import fidelity as F
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM
    from fibsynth.fastsim.translator import shot_noise

    params = {s: (sf, lig) for s, sf, lig in sets.TRAIN + sets.TRAIN_MORE}
    out = {}
    for e in energies:
        rows = {"bias": [], "slice_bias": [], "error_sd": [], "hist": []}
        for seed in seeds:
            sf, lig = params[seed]
            s = sets.train_structure(seed, sf, lig)
            ref = sets.train_mc(seed, sf, lig, e, cache, run=False)["eta"]
            _, m = tr(s, (VOXEL_NM,) * 3, e, electrons_per_pixel=0, incidence_deg=INCIDENCE_DEG,
                      slices=(0, sets.SLICES), calibrated=True)
            rows["bias"].append(float(m.mean() - ref.mean()))
            rows["slice_bias"].append((m.mean((-2, -1)) - ref.mean((-2, -1))).tolist())
            binom = float(np.mean(m * (1 - m) / sets.ELECTRONS))
            rows["error_sd"].append(float(np.sqrt(max(float(np.mean((m - ref) ** 2)) - binom, 0.0))))
            # noise seeds per structure and energy (as benchmarks/fastpath_eval.structure_seeds, fast12): the same
            # for every translator, independent between structures
            seeds_se = [sd * 10**7 + seed * 100 + int(round(e * 10)) for sd in NOISE_SEEDS]
            rows["hist"].append(float(np.mean([F.hist_distance(shot_noise(m, sets.ELECTRONS, sd), ref)
                                               for sd in seeds_se])))
        out[e] = rows
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--energies", default="1,2,3,4")
    ap.add_argument("--translator", action="append", required=True, metavar="NAME=WEIGHTS")
    ap.add_argument("--cache", type=Path, default=sets.CACHE)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from fibsynth.fastsim.fidelity import t_interval
    from fibsynth.fastsim.translator import PairedTranslator

    bad = sorted(set(a.seeds) & set(sets.TEST_SEEDS))
    if bad:
        print(f"structures {bad} are held-out test structures: not read here", file=sys.stderr)
        return 2
    energies = [float(v) for v in a.energies.split(",")]
    res = {}
    for spec in a.translator:
        name, path = spec.split("=", 1)
        res[name] = score(PairedTranslator(path), a.seeds, energies, a.cache)
    first = next(iter(res))
    for e in energies:
        print(f"--- {e:g} keV, structures {a.seeds}")
        for name, r in res.items():
            sb = np.asarray(r[e]["slice_bias"])
            line = (f"{name:>12}: bias rms {np.sqrt(np.mean(np.square(r[e]['bias']))):.5f}  slice-bias rms "
                    f"{np.sqrt(np.mean(sb ** 2)):.5f}  error sd {np.mean(r[e]['error_sd']):.5f}  "
                    f"hist {np.mean(r[e]['hist']):.5f}")
            if name != first:
                d = {k: t_interval(np.asarray(r[e][k] if k != "abs_bias" else np.abs(r[e]["bias"]))
                                   - np.asarray(res[first][e][k] if k != "abs_bias" else np.abs(res[first][e]["bias"])))
                     for k in ("abs_bias", "error_sd", "hist")}
                line += "  | minus " + first + ": " + "  ".join(
                    f"{k} {v['mean']:+.5f} [{v['lo']:+.5f}, {v['hi']:+.5f}]" for k, v in d.items())
            print(line, flush=True)
    if a.json:
        a.json.write_text(json.dumps({"seeds": a.seeds, "results": {n: {str(e): v for e, v in r.items()}
                                                                     for n, r in res.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
