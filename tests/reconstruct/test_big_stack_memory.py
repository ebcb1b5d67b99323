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


def test_baseline_outputs_are_written_from_memory_maps(tmp_path):
    # otsu.tif / kmeans.tif used to be written from np.load(...) of the whole uint8 segmentations (4 GB each at
    # 1000 x 2048 x 2048)
    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, read_volume
    from fibsynth.reconstruct.workflow import write_baselines

    shape = (64, 512, 512)  # 16 MB each; the TIFF writer's own buffers are ~4 MB
    rng = np.random.default_rng(1)
    for fn in ("otsu", "kmeans"):
        np.save(tmp_path / f"{fn}.npy", (rng.random(shape) > 0.5).astype(np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    meta = VolumeMeta(kind="label", voxel_size_nm=VoxelSize.from_xy_z(4, 8), materials={"0": "epoxy", "1": "gold"})
    _, peak = _traced_peak(lambda: write_baselines(out, tmp_path, meta, tmp_path / "stack.tif"))
    assert peak < 0.5 * np.prod(shape), peak
    for fn in ("otsu", "kmeans"):
        assert np.array_equal(np.asarray(read_volume(out / f"{fn}.tif").data), np.load(tmp_path / f"{fn}.npy"))


def test_lazy_inspection_measures_one_slice_at_a_time_with_the_same_numbers(tmp_path):
    # the lazy inspection's noise, stripe power and drift held float64 copies of the 32 sampled slices and of each
    # 32-slice block (~0.9 GB traced on a 256 x 1024 x 1024 stack); now one slice at a time, same numbers
    from fibsynth.microscope import noise_sigma, register_slices, stripe_profile_power
    from fibsynth.reconstruct.inspect import inspect_to_npy

    rng = np.random.default_rng(2)
    nz, n = 12, 192
    yy, xx = np.mgrid[:n, :n]
    stack = np.empty((nz, n, n), np.float32)
    for k in range(nz):  # a drifting pattern with noise and a curtain
        stack[k] = (np.sin((xx + 0.7 * k) / 5.0) * np.cos((yy - 0.4 * k) / 7.0) + 0.3 * rng.standard_normal((n, n))
                    + 0.2 * (np.abs(xx - 100) < 2))
    sample_bytes = stack.nbytes  # every slice is sampled (sample_slices >= nz)
    rec, peak = _traced_peak(lambda: inspect_to_npy(stack, tmp_path / "r.npy", block=8, max_bytes=0, sample_slices=32))
    assert peak < 2.5 * sample_bytes, (peak, sample_bytes)
    assert rec["noise_sigma"] == noise_sigma(stack)
    var = stack.reshape(nz, -1).var(axis=1) + 1e-12
    assert rec["stripe_power"] == float(np.mean(np.clip(stripe_profile_power(stack), 0, None) / var))
    assert np.array_equal(np.asarray(rec["drift_shifts_px"]), register_slices(stack))  # whole-stack chain, exactly


def test_inspection_of_the_example_stack_is_the_microscope_estimators_on_the_whole_array(tmp_path):
    # health13: the inspection's own chain and noise loop are gone; it calls fibsynth.microscope (which reads one
    # slice at a time) and must give the former whole-array numbers, in memory and block by block
    from pathlib import Path

    import fibsynth
    from fibsynth.io import read_volume
    from fibsynth.microscope import register_slices, shift_slices
    from fibsynth.reconstruct.inspect import inspect_stack, inspect_to_npy

    stack = np.asarray(read_volume(Path(fibsynth.__file__).parent / "reconstruct/data/example_stack.tif").data)
    img = stack.astype(np.float32)
    rec = inspect_stack(img)
    x = img.astype(np.float64)  # the former code: the whole stack as float64
    d = (x[:, 0::2, 0::2] - x[:, 0::2, 1::2] - x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 2
    assert rec["noise_sigma"] == float(np.median(np.median(np.abs(d), axis=(1, 2)) / 0.6744897501960817))
    assert np.array_equal(np.asarray(rec["drift_shifts_px"]), register_slices(x))
    assert rec["drift_total_px"] > 1.0
    lazy = inspect_to_npy(stack, tmp_path / "r.npy", block=5, max_bytes=0)  # five blocks, the chain carried across
    assert lazy["drift_shifts_px"] == rec["drift_shifts_px"]
    # --align-region: the inspection registers on the band, in memory and block by block, and aligns by it
    band = (0, 32, 0, 96)
    ref = register_slices(x, region=band)
    assert not np.array_equal(ref, np.asarray(rec["drift_shifts_px"]))
    for kw in ({}, {"max_bytes": 0, "block": 5}):
        r = inspect_to_npy(stack, tmp_path / "b.npy", ("align",), align_region=band, **kw)
        assert np.array_equal(np.asarray(r["drift_shifts_px"]), ref)
        assert np.array_equal(np.load(tmp_path / "b.npy"), shift_slices(x, ref).astype(np.float32))


def test_corrections_block_by_block_are_the_in_memory_ones(tmp_path):
    # --correct on a large stack: corrected block by block into a memory map (health13), the same float32 stack as
    # the in-memory path, and inspect_to_npy takes that path above max_bytes
    from pathlib import Path

    import fibsynth
    from fibsynth.io import read_volume
    from fibsynth.reconstruct.inspect import apply_corrections, correct_blocks, inspect_stack, inspect_to_npy

    stack = np.asarray(read_volume(Path(fibsynth.__file__).parent / "reconstruct/data/example_stack.tif").data)
    img = stack.astype(np.float32)
    shifts = inspect_stack(img)["drift_shifts_px"]
    assert correct_blocks(img, np.empty_like(img), ("destripe",)) == {"applied": ["destripe"],
                                                                     "by": "fibsynth.microscope"}
    for corr in (("align", "flatten"), ("align", "destripe", "flatten")):  # flatten recomputes / keeps the input
        ref, ref_rec = apply_corrections(img, corr, shifts)
        out = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.float32, shape=img.shape)
        assert correct_blocks(img, out, corr, shifts, block=5) == ref_rec
        assert np.array_equal(out, ref), corr
        del out
        assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npy"]  # the destriped scratch copy is gone
    lazy = inspect_to_npy(stack, tmp_path / "l.npy", corr, max_bytes=0, block=7)
    assert np.array_equal(np.load(tmp_path / "l.npy"), ref) and lazy["corrections"] == ref_rec
    assert lazy["drift_shifts_px"] == shifts and "after_correction" in lazy
    assert not (tmp_path / "l.raw.npy").exists()


def test_corrections_block_by_block_hold_a_few_slices(tmp_path):
    from fibsynth.reconstruct.inspect import apply_corrections, correct_blocks

    shape = (64, 64, 64)
    rng = np.random.default_rng(5)
    x = (1 + rng.random(shape, np.float32)).astype(np.float32)
    shifts = np.cumsum(rng.normal(0, 0.3, (shape[0], 2)), 0)
    corr = ("align", "destripe", "flatten")
    correct_blocks(x[:2], np.empty((2, 64, 64), np.float32), corr, shifts[:2], block=1)  # imports outside the trace
    ref, peak_mem = _traced_peak(lambda: apply_corrections(x, corr, shifts)[0])
    out = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.float32, shape=shape)
    _, peak = _traced_peak(lambda: correct_blocks(x, out, corr, shifts, block=4))
    assert np.array_equal(out, ref)
    # a fixed working set of a 4-slice block (~1.5 x the float32 stack here, the same at 96 slices); in memory 8 x
    assert peak < 2.5 * x.nbytes and peak < 0.3 * peak_mem, (peak, peak_mem, x.nbytes)


def test_a_run_that_will_not_fit_on_the_disk_is_warned_about(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from fibsynth.reconstruct.settings import ReconstructSettings
    from fibsynth.reconstruct.workflow import disk_need_bytes, disk_warning

    s = ReconstructSettings(seg_combine="choose")
    shape = (1000, 2048, 2048)
    assert 150e9 < disk_need_bytes(shape, s) < 170e9  # 38 bytes per voxel with one network kept per round
    # the default ensemble (seg_combine="mean") adds one float32 map per round
    assert disk_need_bytes(shape, ReconstructSettings()) - disk_need_bytes(shape, s) == 8 * 1000 * 2048 * 2048
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 9 * 10**11, 10**11))
    w = disk_warning(tmp_path, tmp_path / "work", shape, s)
    assert w is not None and "159.4 GB" in w and "100.0 GB free" in w
    assert disk_warning(tmp_path, tmp_path / "work", (256, 1024, 1024), s) is None
    # what a previous run cached counts as available (a rerun reuses it)
    (tmp_path / "work").mkdir()
    with open(tmp_path / "work" / "real.npy", "wb") as fh:
        fh.truncate(60 * 10**9)  # sparse: no disk used
    assert disk_warning(tmp_path, tmp_path / "work", shape, s) is None


def test_prediction_blocks_shrink_for_large_slices():
    from fibsynth.reconstruct.workflow import PREDICT_BLOCK_VOXELS, predict_block_slices

    assert predict_block_slices(32, (256, 1024, 1024)) == 32  # up to 1024 x 1024: the --block setting
    assert predict_block_slices(32, (64, 192, 192)) == 32 and predict_block_slices(4, (64, 1024, 1024)) == 4
    assert predict_block_slices(32, (1000, 2048, 2048)) == 8
    assert predict_block_slices(32, (10, 8192, 8192)) == 1
    for shape in ((1000, 2048, 2048), (300, 1536, 2048), (50, 4096, 4096)):
        assert predict_block_slices(32, shape) * shape[1] * shape[2] <= PREDICT_BLOCK_VOXELS
