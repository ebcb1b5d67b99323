"""Memory of ``fibsynth reconstruct``'s steps on a large (memory-mapped) stack (big12): the steps read samples or
blocks of the stack, never a whole-stack copy."""

from __future__ import annotations

import tracemalloc

import numpy as np

from fibsynth.reconstruct.adapt import _unit


def _traced_peak(fn):
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


def test_histogram_distance_samples_the_real_stack_without_copying_it(tmp_path):
    # the translate step compares every training stack with the real stack (histogram_distance -> _unit): it used to
    # convert the whole memory-mapped stack to float64 first (2 GB at 256 x 1024 x 1024) before sampling 2 M values
    shape = (32, 256, 256)  # 2 M voxels, 8 MB as float32
    mm = np.lib.format.open_memmap(tmp_path / "real.npy", mode="w+", dtype=np.float32, shape=shape)
    mm[:] = np.random.default_rng(0).gamma(2.0, 20.0, shape).astype(np.float32)
    mm.flush()
    del mm
    real = np.load(tmp_path / "real.npy", mmap_mode="r")
    got, peak = _traced_peak(lambda: _unit(real, max_values=20_000, seed=3))
    assert peak < 0.25 * real.nbytes, (peak, real.nbytes)
    # the same values as choosing from the values themselves (the former code), so the distances do not change
    v = np.asarray(real, np.float64).ravel()
    v = np.random.default_rng(3).choice(v, 20_000, replace=False)
    lo, hi = np.percentile(v, [0.5, 99.5])
    assert np.array_equal(got, np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1))
