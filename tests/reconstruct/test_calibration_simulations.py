"""The first pass's bias is averaged over several simulated structures (estimate.calibrate(simulations=n); recon12):
one simulated structure's bias scatters with the structure drawn, and the calibrated solid fraction moved with the
workflow seed (full-size hier 0.267 / 0.323 for a truth of 0.248)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.reconstruct import estimate as E
from fibsynth.structure import leveled_wave

VZ = (8.0, 4.0, 4.0)
SHAPE = (16, 48, 48)


def _image(solid: np.ndarray, fatten: int, seed: int) -> np.ndarray:
    """Three gray levels (filler, a ring round what is seen, what is seen): the brightest of three classes is what
    is seen, the solid dilated ``fatten`` times in-plane (blur and shine-through fatten ligaments)."""
    from scipy import ndimage as ndi

    st = np.zeros((3, 3, 3), bool)
    st[1] = ndi.generate_binary_structure(2, 1)
    seen = ndi.binary_dilation(solid, st, iterations=fatten) if fatten else solid.astype(bool)
    ring = ndi.binary_dilation(seen, iterations=2) & ~seen
    rng = np.random.default_rng(seed)
    return (0.1 + 0.4 * ring + 0.8 * seen + rng.normal(0.0, 0.03, SHAPE)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _truth(seed: int) -> np.ndarray:
    return leveled_wave(SHAPE, VZ, 0.3, 32.0, waves=200, seed=seed).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _raw() -> dict:
    return E.estimate_structure(E.first_pass(_image(_truth(1), 1, 1)), VZ)


def test_biases_of_several_simulations_are_averaged_on_the_odds_scale():
    raw = _raw()
    calls: list[int] = []
    fatten = {0: 0, 1000: 1, 2000: 2}  # three simulated structures whose first pass is biased differently
    made: dict[int, tuple] = {}

    def simulate(est, i):
        calls.append(i)
        if i not in made:
            solid = _truth(50 + i % 997)
            made[i] = solid, _image(solid, fatten[i], i)
        return made[i]

    cal = E.calibrate(raw, simulate, VZ, iterations=1, simulations=3)
    assert calls == [0, 1000, 2000]  # j = 0 is the single simulation of before; the others have their own seeds
    per = cal["calibration"]["bias_per_simulation"][0]["solid_fraction"]
    assert len(per) == 3 and per[0] < per[1] < per[2]  # more fattening, more bias: they do differ
    phi0 = raw["quantities"]["solid_fraction"]["value"]
    want = 1.0 / (1.0 + math.exp(-(math.log(phi0 / (1 - phi0)) - float(np.mean(per)))))
    assert cal["quantities"]["solid_fraction"]["value"] == pytest.approx(want, rel=1e-9)
    assert cal["calibration"]["simulations"] == 3

    # one simulation is the calibration of before: the bias of simulation 0 alone
    one = E.calibrate(raw, lambda est, i: simulate(est, i), VZ, iterations=1, simulations=1)
    want1 = 1.0 / (1.0 + math.exp(-(math.log(phi0 / (1 - phi0)) - per[0])))
    assert one["quantities"]["solid_fraction"]["value"] == pytest.approx(want1, rel=1e-9)
    # the mean lies between the extremes: no single structure decides it
    lo = 1.0 / (1.0 + math.exp(-(math.log(phi0 / (1 - phi0)) - per[2])))
    assert lo < cal["quantities"]["solid_fraction"]["value"] < want1


def test_simulations_must_be_positive():
    raw = _raw()
    with pytest.raises(FibsynthError, match="simulations"):
        E.calibrate(raw, lambda est, i: (_truth(2), _image(_truth(2), 1, 2)), VZ, simulations=0)
