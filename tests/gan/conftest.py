"""Fixtures of the GAN tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def smooth_image():
    y, x = np.mgrid[0:200, 0:264].astype(np.float32)
    return (0.8 * np.sin(x / 23.0) * np.cos(y / 31.0) + 0.1 * (x / 264 - y / 200)).astype(np.float32)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run far faster on one thread than on two oversubscribed shared cores (measured: ~0.03 s vs
    ~0.6 s per CycleGAN step under load); restored afterwards so other test folders are unaffected."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
