"""Paired data of the SE open-pore translator (issue 17, item 4): porous silicon with open (vacuum) pores, 2 keV,
38 degrees, in-lens detector (``mc stack --detector inlens --pore vacuum --backing repeat``). Shared by
experiments/se_train_translator.py and benchmarks/se_translator_eval.py. Monte Carlo images are cached (default
/tmp/se_fastpath/mc); run this file to generate them all (~12 CPU min on one core of the 2-core machine):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 nice -n 10 python experiments/se_fastpath_sets.py [--part test|train|all]

Why silicon: of the five elements whose SE parameters the Monte Carlo has (C, Al, Si, Cu, Au; a compound takes
those of its heaviest-by-mass element), silicon's yield is checked against Joy's database (docs/montecarlo.md) and
it is a conductor (no charging, which the Monte Carlo does not model); porous silicon and silicon anodes are
imaged open-pore. A ceramic (e.g. alumina) would take aluminium's metal parameters: an insulator's SE yield is
several times a metal's, so such a translator would learn physics the Monte Carlo does not have. Silicon's
2 keV range (Kanaya-Okayama ~100 nm) is five times gold's, so the translator is not a gold special case.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

CACHE = Path("/tmp/se_fastpath/mc")
SOLID = "silicon"
ENERGY_KEV = 2.0
INCIDENCE_DEG = 38.0
DETECTOR = "inlens"
VOXEL_NM = 5.0
ELECTRONS = 100
SIZE = 64
BEHIND = 64  # slices behind the imaged ones (320 nm; silicon's 2 keV range ~100 nm), then the last slice repeated
TRAIN_SLICES = 6
TEST_SLICES = 4
#: held-out test structures (never used for training or for choosing anything)
TEST = ((211, 0.4, 50.0), (212, 0.4, 50.0), (213, 0.4, 50.0))
#: two Monte Carlo realisations of every test slice (the MC-vs-MC ceiling)
TEST_MC_SEEDS = (1000, 2000)
#: training structures (seed, solid fraction, ligament nm); the last one is the monitor for early stopping
TRAIN = ((111, 0.35, 40.0), (112, 0.4, 50.0), (113, 0.45, 60.0), (114, 0.5, 70.0), (115, 0.35, 60.0),
         (116, 0.45, 40.0), (117, 0.5, 50.0), (118, 0.4, 70.0), (119, 0.4, 40.0), (120, 0.45, 50.0))


def structure(seed, solid_fraction, ligament_nm, slices):
    from fibsynth.structure import leveled_wave

    return leveled_wave((slices + BEHIND, SIZE, SIZE), voxel_size=VOXEL_NM, solid_fraction=solid_fraction,
                        ligament_nm=ligament_nm, seed=seed).astype(np.uint8)


def settings(seed, electrons=ELECTRONS):
    from fibsynth.physics.montecarlo.detectors import SignalDetector
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings

    return StackSettings(beam=Beam(energy_kev=ENERGY_KEV, incidence_deg=INCIDENCE_DEG), electrons_per_pixel=electrons,
                         seed=seed, geometry=StackGeometry(solid=SOLID, pore="vacuum", backing="repeat"),
                         signal=SignalDetector(kind=DETECTOR))


def mc_images(vol, slices, seed, cache=CACHE, run=True):
    """In-lens Monte Carlo images (``eta``: signal per primary), standard errors (``std``) and seconds of slices
    0..slices-1, cached by the structure's content and the settings (:func:`fibsynth.fastsim.fidelity.cached_images`)."""
    from fibsynth.fastsim.fidelity import cached_images, structure_key

    def simulate():
        from fibsynth.config import VoxelSize
        from fibsynth.physics.montecarlo.stack import simulate_stack

        t0 = time.process_time()
        res = simulate_stack(vol, VoxelSize(x=VOXEL_NM, y=VOXEL_NM, z=VOXEL_NM), settings(seed), slices=(0, slices),
                             progress=False)
        return {"eta": np.asarray(res["eta"], np.float32), "std": np.asarray(res["std"], np.float32),
                "seconds": time.process_time() - t0}

    name = f"se_{SOLID}_{structure_key(vol)}_E{ENERGY_KEV:g}_{DETECTOR}_n{slices}_e{ELECTRONS}_s{seed}.npz"
    return cached_images(cache, name, simulate, run=run)


def train_structure(seed, sf, lig):
    return structure(seed, sf, lig, TRAIN_SLICES)


def test_structure(seed, sf, lig):
    return structure(seed, sf, lig, TEST_SLICES)


def train_mc(seed, sf, lig, cache=CACHE, run=True):
    return mc_images(train_structure(seed, sf, lig), TRAIN_SLICES, seed, cache, run)


def test_mc(seed, sf, lig, realisation, cache=CACHE, run=True):
    return mc_images(test_structure(seed, sf, lig), TEST_SLICES, TEST_MC_SEEDS[realisation] + seed, cache, run)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--part", choices=("test", "train", "all"), default="all")
    a = ap.parse_args()
    if a.part in ("test", "all"):
        for s, sf, lig in TEST:
            for r in (0, 1):
                m = test_mc(s, sf, lig, r, a.cache)
                print(f"test {s} realisation {r}: {m['seconds']:.1f} CPU s, mean {m['eta'].mean():.3f}", flush=True)
    if a.part in ("train", "all"):
        for s, sf, lig in TRAIN:
            m = train_mc(s, sf, lig, a.cache)
            print(f"train {s}: {m['seconds']:.1f} CPU s, mean {m['eta'].mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
