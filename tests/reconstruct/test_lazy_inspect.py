"""Lazy reading for reconstruct: a Zarr stack (and an uncompressed TIFF) is inspected block by block without being
read into memory, with the same drift, range and stored stack as the in-memory inspection."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, write_volume
from fibsynth.reconstruct.inspect import inspect_stack, inspect_to_npy, read_stack


def _stack(nz=96, n=32, seed=0):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.standard_normal((n + 16, n + 16)), 3)
    walk = np.cumsum(rng.integers(-1, 2, (nz, 2)), axis=0)  # a drifting stage
    sl = [np.roll(base, tuple(w), axis=(0, 1))[8:-8, 8:-8] for w in walk]
    img = 2000 + 20000 * np.stack(sl) + rng.normal(0, 300, (nz, n, n))
    return np.clip(img, 0, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def zarr_stack(tmp_path_factory):
    d = tmp_path_factory.mktemp("lazy")
    data = _stack()
    write_volume(d / "s.zarr", data, VolumeMeta(kind="image", voxel_size_nm=VoxelSize.from_xy_z(4, 8), energy_kev=2.0),
                 chunks=(8, 32, 32))
    return d / "s.zarr", data


def test_zarr_is_read_lazily_and_inspected_like_the_whole_stack(zarr_stack, tmp_path):
    path, data = zarr_stack
    lazy, vox, energy, _ = read_stack(path, lazy=True)
    assert not isinstance(lazy, np.ndarray) and lazy.shape == data.shape  # a dask array, nothing read yet
    assert vox.zyx() == (8.0, 4.0, 4.0) and energy == 2.0
    whole = inspect_stack(data.astype(np.float32))
    rec = inspect_to_npy(lazy, tmp_path / "real.npy", block=8, max_bytes=0)
    assert len(rec["sampled_slices"]) == 32
    np.testing.assert_array_equal(np.load(tmp_path / "real.npy"), data.astype(np.float32))
    # drift: the same pair registrations across the block borders
    np.testing.assert_allclose(rec["drift_shifts_px"], whole["drift_shifts_px"], atol=1e-9)
    for k in ("min", "max", "clipped_fraction", "drift_total_px"):
        assert rec[k] == pytest.approx(whole[k]), k
    # sampled: noise and percentiles close to the whole stack's
    assert rec["noise_sigma"] == pytest.approx(whole["noise_sigma"], rel=0.05)
    assert rec["noise_relative"] == pytest.approx(whole["noise_relative"], rel=0.1)
    assert rec["median"] == pytest.approx(whole["median"], rel=0.05)


def test_lazy_inspection_never_holds_the_stack(tmp_path):
    data = _stack(nz=400, seed=1)  # long enough that the stack outweighs one registration's buffers
    write_volume(tmp_path / "l.zarr", data, VolumeMeta(kind="image", voxel_size_nm=VoxelSize.from_xy_z(4, 8)),
                 chunks=(8, 32, 32))
    lazy, *_ = read_stack(tmp_path / "l.zarr", lazy=True)
    full = data.size * 4  # the stack as float32
    # first use outside the trace: run alone, the test traced the imports (dask, scikit-image; ~32 MB) and failed
    inspect_to_npy(lazy[:16], tmp_path / "warm.npy", block=8, max_bytes=0, sample_slices=8)
    tracemalloc.start()
    try:
        inspect_to_npy(lazy, tmp_path / "real.npy", block=8, max_bytes=0, sample_slices=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * full, (peak, full)
    # the in-memory path (small stacks) holds it at least once
    tracemalloc.start()
    try:
        inspect_to_npy(lazy, tmp_path / "real2.npy")
        _, peak_mem = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_mem > full


def test_uncompressed_tiff_is_memory_mapped(tmp_path):
    data = _stack(nz=12, n=32)
    write_volume(tmp_path / "s.tif", data, VolumeMeta(kind="image", voxel_size_nm=VoxelSize.from_xy_z(4, 8)))
    lazy, vox, _, _ = read_stack(tmp_path / "s.tif", lazy=True)
    eager, *_ = read_stack(tmp_path / "s.tif")
    assert isinstance(lazy, np.memmap) and lazy.dtype == np.uint16 and vox.zyx() == (8.0, 4.0, 4.0)
    np.testing.assert_array_equal(np.asarray(lazy, np.float32), eager)
