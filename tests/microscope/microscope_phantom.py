"""A cheap two-phase test stack (gold network in epoxy) and its ideal image, independent of fibsynth's generators:
a thresholded Gaussian random field (cut from a larger box, so it is not periodic) and a slightly blurred yield."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

ETA_EPOXY, ETA_GOLD = 0.1, 0.5


def phantom(shape=(8, 96, 96), seed=0, corr_px=3.0, solid_fraction=0.35, pad=12):
    """(labels uint8, eta float64) of ``shape``."""
    rng = np.random.default_rng(seed)
    big = tuple(s + 2 * pad for s in shape)
    f = ndimage.gaussian_filter(rng.standard_normal(big), corr_px)[pad:-pad, pad:-pad, pad:-pad]
    labels = (f > np.quantile(f, 1 - solid_fraction)).astype(np.uint8)
    eta = ETA_EPOXY + (ETA_GOLD - ETA_EPOXY) * ndimage.gaussian_filter(labels.astype(float), (0, 0.6, 0.6))
    return labels, eta
