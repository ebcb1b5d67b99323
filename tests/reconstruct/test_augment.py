"""Augmentation of reconstruct's training images by the microscope stage's randomised forward model."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.microscope import noise_sigma
from fibsynth.reconstruct.generate import augment


def _structure(seed=0):
    from scipy.ndimage import gaussian_filter

    lab = (gaussian_filter(np.random.default_rng(seed).standard_normal((12, 96, 96)), 3) > 0).astype(np.uint8)
    return lab, 0.3 + 0.4 * lab.astype(np.float64)


def test_augment_is_seeded_and_recorded():
    lab, img = _structure()
    a, la, ra = augment(img, np.random.default_rng(5), 0.05, labels=lab)
    b, lb, rb = augment(img, np.random.default_rng(5), 0.05, labels=lab)
    c, _, rc = augment(img, np.random.default_rng(6), 0.05, labels=lab)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and ra == rb
    assert not np.array_equal(a, c) and ra["microscope"]["seed"] != rc["microscope"]["seed"]
    assert a.dtype == np.float32 and la.dtype == np.uint8 and a.shape == la.shape == lab.shape
    assert ra["model"].startswith("fibsynth.microscope") and ra["strength"] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augment_moves_labels_with_image_and_matches_noise(seed):
    from skimage.filters import threshold_otsu

    lab, img = _structure(seed)
    out, moved, rec = augment(img, np.random.default_rng(seed), 0.05, labels=lab)
    seg = out > threshold_otsu(out)
    agree_moved, agree_orig = (seg == moved.astype(bool)).mean(), (seg == lab.astype(bool)).mean()
    assert agree_moved > 0.9 and agree_moved >= agree_orig - 1e-3
    if rec["max_shift_px"] > 0.5:  # seeds 1 and 2 drift by ~1 px
        assert agree_moved > agree_orig + 0.01
    lo, hi = np.percentile(out, [1, 99])
    # the dose is set for the drawn noise level at mid-gray; the detector response and blur change it somewhat
    assert 0.4 < noise_sigma(out) / (hi - lo) / rec["noise_relative"] < 1.6
