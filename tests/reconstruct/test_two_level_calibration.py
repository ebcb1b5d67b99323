"""A calibrated two-level estimate draws training structures at its corrected solid fraction (estimate.calibrate,
estimate.two_level_fractions; recon11)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fibsynth.reconstruct import estimate as E
from fibsynth.reconstruct import generate as G

VZ = (8.0, 4.0, 4.0)
SHAPE = (24, 80, 80)
UPPER_NM, LOWER_NM = 140.0, 22.0


def _image(upper: float, lower: float, seed: int) -> np.ndarray:
    """A stack whose first pass sees the fine network denser than it is (its odds x e^0.9, as blur and
    shine-through fatten fine ligaments) and the coarse one as it is: three gray levels (filler, a ring round
    what is seen, what is seen), so the brightest of three classes is what is seen."""
    from scipy import ndimage as ndi

    from fibsynth.structure import hierarchical

    seen_lower = 1.0 / (1.0 + math.exp(-(math.log(lower / (1.0 - lower)) + 0.9)))
    seen = hierarchical(SHAPE, VZ, UPPER_NM, LOWER_NM, upper, seen_lower, seed=seed)
    ring = ndi.binary_dilation(seen, iterations=2) & ~seen
    rng = np.random.default_rng(seed)
    return (0.1 + 0.4 * ring + 0.8 * seen + rng.normal(0.0, 0.03, SHAPE)).astype(np.float32)


def test_two_level_training_structures_are_drawn_at_the_corrected_solid_fraction():
    """Corrected key by key on the odds scale, the fine network's own correction and the total's disagree (here
    lower 0.569 -> 0.29 while phi 0.312 -> 0.213 and upper stays 0.56: structures at 0.16 solid, as on the
    full-size hier stack in recon10: 0.19 for an estimate of 0.276); the networks now follow the total."""
    raw = E.estimate_structure(E.first_pass(_image(0.55, 0.35, 2)), VZ)
    assert raw["hierarchical"] and "lower_solid_fraction" in raw["quantities"]

    def simulate(est, i):
        p = G.draw_parameters(est, 1, VZ, 7, spread=False)[0]
        solid = G.make_structure(p, SHAPE, VZ).astype(np.uint8)
        return solid, _image(p["upper_solid_fraction"], p["lower_solid_fraction"], p["seed"] % 1000)

    cal = E.calibrate(raw, simulate, VZ, iterations=1)
    q = cal["quantities"]
    phi = q["solid_fraction"]["value"]
    assert cal["hierarchical"] and phi < raw["quantities"]["solid_fraction"]["value"] - 0.05  # a real correction
    # the coarse network's estimate is kept, the fine one follows phi = upper x lower
    assert q["upper_solid_fraction"]["value"] * q["lower_solid_fraction"]["value"] == pytest.approx(phi, rel=1e-6)
    assert cal["calibration"]["bias"][0]["lower_solid_fraction"] == pytest.approx(
        raw["quantities"]["lower_solid_fraction"]["value"] - q["lower_solid_fraction"]["value"])
    # what training draws at the estimate (no spread) has the estimate's solid fraction (the old code: 0.161 for 0.213)
    p = G.draw_parameters(cal, 1, VZ, 3, spread=False)[0]
    generated = float(G.make_structure(p, SHAPE, VZ).mean())
    assert abs(generated - phi) < 0.015


def test_two_level_fractions_keep_the_product_within_the_drawn_range():
    lo, hi = G.PHI_RANGE
    assert E.two_level_fractions(0.276, 0.434) == pytest.approx((0.434, 0.276 / 0.434))
    # a fine fraction above what is drawn: the coarse network takes the rest
    up, low = E.two_level_fractions(0.6, 0.5)
    assert low == hi and up * low == pytest.approx(0.6)
    up, low = E.two_level_fractions(0.05, 0.8)
    assert low == lo and up * low == pytest.approx(0.05)
    for phi in np.linspace(0.02, 0.9, 12):
        for upper in np.linspace(0.05, 0.95, 7):
            up, low = E.two_level_fractions(phi, upper)
            assert lo <= up <= hi and lo <= low <= hi
            assert up * low == pytest.approx(float(np.clip(phi, lo * lo, hi * hi)))
