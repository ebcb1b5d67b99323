"""Fixtures of the GAN tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def smooth_image():
    y, x = np.mgrid[0:200, 0:264].astype(np.float32)
    return (0.8 * np.sin(x / 23.0) * np.cos(y / 31.0) + 0.1 * (x / 264 - y / 200)).astype(np.float32)


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every GAN test on one torch thread (tests/conftest.py's ``one_torch_thread``)."""
    yield
