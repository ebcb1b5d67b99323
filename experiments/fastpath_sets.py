"""The paired data sets of issue 15 (fast path vs Monte Carlo), shared by benchmarks/bench_fastsim.py,
benchmarks/bench_gan.py and experiments/fastpath_train_translator.py. Monte Carlo images are cached (default
/tmp/fastpath/mc); run this file to generate them all:

    nice -n 10 python experiments/fastpath_sets.py [--cache DIR] [--part test|train|all]
"""
from __future__ import annotations

import argparse
from pathlib import Path

CACHE = Path("/tmp/fastpath/mc")
ELECTRONS = 100
SLICES = 4
SIZE = 64
#: held-out test structures (never used for training or for choosing anything): the benchmark's parameters.
#: 201-203 since issue 15's first round; 204-210 and 214-230 added in the fast10 round (same generator and
#: settings) so that the histogram distance's gap to the Monte Carlo can be resolved. 211-213 are skipped: they are
#: the SE translator's test structures (experiments/se_fastpath_sets.py); 101-106 train the translator, 301-303 and
#: 401-403 belong to benchmarks/bench_fastpath_unet.py.
FIRST_TEST_SEEDS = (201, 202, 203)
TEST_SEEDS = FIRST_TEST_SEEDS + (204, 205, 206, 207, 208, 209, 210) + tuple(range(214, 231))
TEST_ENERGIES = (1.0, 2.0, 4.0)
#: two Monte Carlo realisations of every test slice (the MC-vs-MC ceiling)
TEST_MC_SEEDS = (1000, 2000)
#: training structures: (seed, solid fraction, ligament nm), a spread of the benchmark's parameters
TRAIN = ((101, 0.3, 40.0), (102, 0.25, 30.0), (103, 0.35, 50.0), (104, 0.3, 40.0), (105, 0.3, 30.0),
         (106, 0.35, 40.0))
TRAIN_ENERGIES = (1.0, 2.0, 3.0, 4.0)
#: more training structures (fast11 round; same generator and settings as TRAIN, seeds disjoint from every other
#: set: 101-106 TRAIN, 111-120 the SE translator's, 201-230 test, 301-303 / 401-403 the U-Net benchmark's)
TRAIN_MORE = ((501, 0.3, 40.0), (502, 0.25, 40.0), (503, 0.35, 30.0), (504, 0.3, 50.0), (505, 0.25, 50.0),
              (506, 0.35, 40.0), (507, 0.3, 30.0), (508, 0.3, 40.0), (509, 0.25, 30.0), (510, 0.35, 50.0),
              (511, 0.3, 40.0), (512, 0.3, 50.0), (513, 0.25, 40.0), (514, 0.35, 40.0), (515, 0.3, 40.0),
              (516, 0.3, 30.0))

#: structures for fitting the translator's level correction (fast13; experiments/fastpath_fit_level.py): never
#: trained on; even seeds at the test set's parameters, odd ones spread like TRAIN_MORE
TRAIN_LEVEL = tuple((s, 0.3, 40.0) if (s - 601) % 2 == 0 else
                    (s, (0.25, 0.3, 0.35)[((s - 601) // 2) % 3], (30.0, 40.0, 50.0)[((s - 601) // 6) % 3])
                    for s in range(601, 633))


def test_structure(seed):
    from fibsynth.fastsim.fidelity import make_structure

    return make_structure(seed, SIZE, SLICES, 0.3, 40.0)


def train_structure(seed, sf, lig):
    from fibsynth.fastsim.fidelity import make_structure

    return make_structure(seed, SIZE, SLICES, sf, lig)


def test_mc(seed, energy, realisation, cache=CACHE, run=True):
    from fibsynth.fastsim.fidelity import mc_images

    return mc_images(test_structure(seed), energy, slices=SLICES, electrons_per_pixel=ELECTRONS,
                     seed=TEST_MC_SEEDS[realisation] + seed, cache=cache, run=run)


def train_mc(seed, sf, lig, energy, cache=CACHE, run=True):
    from fibsynth.fastsim.fidelity import mc_images

    return mc_images(train_structure(seed, sf, lig), energy, slices=SLICES, electrons_per_pixel=ELECTRONS,
                     seed=seed, cache=cache, run=run)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--part", choices=("test", "train", "all", "train-more", "train-level"), default="all")
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="with --part test / train-more: only these structures (default: all of TEST_SEEDS / "
                         "TRAIN_MORE)")
    a = ap.parse_args()
    if a.part in ("test", "all"):
        for e in sorted(TEST_ENERGIES, reverse=True):
            for s in a.seeds or TEST_SEEDS:
                for r in (0, 1):
                    m = test_mc(s, e, r, a.cache)
                    print(f"test seed {s} E {e} realisation {r}: {m['seconds']:.1f} s", flush=True)
    if a.part in ("train", "all"):
        for e in sorted(TRAIN_ENERGIES, reverse=True):
            for s, sf, lig in TRAIN:
                m = train_mc(s, sf, lig, e, a.cache)
                print(f"train seed {s} E {e}: {m['seconds']:.1f} s", flush=True)
    if a.part == "train-level":  # structure by structure (fast13: the level correction's fit, 1/2/4 keV)
        for s, sf, lig in TRAIN_LEVEL:
            if a.seeds and s not in a.seeds:
                continue
            for e in (4.0, 2.0, 1.0):
                m = train_mc(s, sf, lig, e, a.cache)
                print(f"train-level seed {s} E {e}: {m['seconds']:.1f} s", flush=True)
    if a.part == "train-more":  # structure by structure, so that a stopped run leaves whole structures
        for s, sf, lig in TRAIN_MORE:
            if a.seeds and s not in a.seeds:
                continue
            for e in sorted(TRAIN_ENERGIES, reverse=True):
                m = train_mc(s, sf, lig, e, a.cache)
                print(f"train-more seed {s} E {e}: {m['seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
