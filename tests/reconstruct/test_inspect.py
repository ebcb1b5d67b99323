"""Inspection of reconstruct (the microscope stage's estimators and corrections) against known truth, and the reader's one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.microscope import noise_sigma, register_slices
from fibsynth.reconstruct.inspect import apply_corrections, inspect_stack, read_stack, stripe_power


def _smooth_stack(nz=6, n=96, seed=0):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    return np.stack([100 + 60 * gaussian_filter(rng.standard_normal((n, n)), 4) / 0.07 for _ in range(nz)])


def test_noise_sigma_recovers_added_noise():
    clean = _smooth_stack()
    rng = np.random.default_rng(1)
    for sigma in (2.0, 8.0):
        est = noise_sigma(clean + rng.normal(0, sigma, clean.shape))
        assert est == pytest.approx(sigma, rel=0.15)


def test_drift_recovers_known_shifts_and_align_undoes_them():
    base = _smooth_stack(nz=1, n=96)[0]
    shifts = [(0, 0), (2, -1), (3, 1), (1, 4)]
    stack = np.stack([np.roll(base, (-dy, -dx), axis=(0, 1)) for dy, dx in shifts])
    cum = register_slices(stack)
    assert np.allclose(cum, shifts, atol=0.3)
    rec = inspect_stack(stack)
    assert np.allclose(rec["drift_shifts_px"], shifts, atol=0.3)
    assert rec["drift_total_px"] == pytest.approx(np.hypot(1, 4), abs=0.3)
    aligned, rec = apply_corrections(stack, ("align",))
    assert rec["applied"] == ["align"]
    # sub-pixel registration: compare the interior (the shift repeats the edges it uncovers, np.roll wrapped them)
    inner = (slice(8, -8), slice(8, -8))
    before = np.abs(stack[3][inner] - stack[0][inner]).mean()
    after = np.abs(aligned[3][inner] - aligned[0][inner]).mean()
    assert after < 0.05 * before


def test_stripe_power_sees_curtains_and_destripe_removes_them():
    from scipy.ndimage import gaussian_filter

    # fine structure (correlation ~1.5 px) as in a FIB-SEM slice: rows far apart are independent
    rng = np.random.default_rng(2)
    f = np.stack([gaussian_filter(rng.standard_normal((96, 96)), 1.5) for _ in range(4)])
    clean = 100 + 20 * f / f.std() + rng.normal(0, 3, (4, 96, 96))
    stripes = np.zeros(96)
    stripes[::7] = 25.0
    striped = clean + stripes[None, None, :]
    p0, p1 = stripe_power(clean), stripe_power(striped)
    truth = np.mean(stripes.var() / striped.reshape(4, -1).var(axis=1))  # stripe variance / slice variance
    assert p1 == pytest.approx(truth, rel=0.25) and p0 < 0.1 * p1
    fixed, _ = apply_corrections(striped, ("destripe",))
    assert stripe_power(fixed) < 0.2 * p1


def test_read_stack_errors_are_one_line(tmp_path):
    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume

    with pytest.raises(FibsynthError) as e:
        read_stack(tmp_path / "nope.tif")
    assert "not found" in str(e.value) and "\n" not in str(e.value)
    seg = (np.random.default_rng(0).random((4, 32, 32)) > 0.5).astype(np.uint8)
    write_volume(tmp_path / "seg.tif", seg, VolumeMeta(kind="label", voxel_size_nm=VoxelSize.from_xy_z(4, 8)))
    with pytest.raises(FibsynthError, match="segmentation, not a microscope image"):
        read_stack(tmp_path / "seg.tif")
    img = (np.random.default_rng(0).random((4, 32, 32)) * 200).astype(np.uint8)
    write_volume(tmp_path / "img.tif", img, VolumeMeta(kind="image"))
    with pytest.raises(FibsynthError) as e:
        read_stack(tmp_path / "img.tif")
    assert e.value.param == "voxel_nm"
    with pytest.raises(FibsynthError, match="unknown correction"):
        apply_corrections(img.astype(np.float32), ("sharpen",))
    data, vox, energy, desc = read_stack(tmp_path / "img.tif", voxel_nm=5, slice_nm=10, energy_kev=3)
    assert data.dtype == np.float32 and vox.zyx() == (10.0, 5.0, 5.0) and energy == 3


def _aligned_with_fill(rng, shape=(9, 40, 50), shifts=((0, 0), (2, -3), (4, 1), (-1, 5), (3, 3), (0, 0), (1, -2),
                                                          (2, 2), (0, 4)), fill=0):
    """Slices moved by integer shifts with the uncovered pixels set to ``fill``: what an aligned stack looks like."""
    a = rng.integers(1, 250, shape).astype(np.uint8)
    out = np.full_like(a, fill)
    ny, nx = shape[1:]
    for k, (dy, dx) in enumerate(shifts):
        out[k, max(dy, 0):ny + min(dy, 0), max(dx, 0):nx + min(dx, 0)] = \
            a[k, max(-dy, 0):ny + min(-dy, 0), max(-dx, 0):nx + min(-dx, 0)]
    return a, out


def test_fill_borders_finds_the_alignment_fill_and_nothing_else():
    from fibsynth.reconstruct.inspect import FILL_MARGIN_PX, crop_fill, fill_borders

    rng = np.random.default_rng(0)
    clean, aligned = _aligned_with_fill(rng)
    assert fill_borders(clean) is None  # no fill: nothing left out
    blank = np.concatenate([np.zeros((1, 40, 50), np.uint8), aligned, np.full((2, 40, 50), 255, np.uint8)])
    rec = fill_borders(blank, block=4)  # several blocks along z
    m = FILL_MARGIN_PX
    assert rec["box"] == [[1, 10], [4 + m, 40 - 1 - m], [5 + m, 50 - 3 - m]]  # largest shifts: 4 down, 1 up, ...
    assert rec["removed"]["slices_at_start"] == 1 and rec["removed"]["slices_at_end"] == 2
    assert rec["fill_values"] == [0.0, 255.0] and rec["blank_slices"] == []
    view, rec2 = crop_fill(blank)
    assert rec2["input_shape"] == [12, 40, 50]
    assert view.shape == (9, 40 - 5 - 2 * m, 50 - 8 - 2 * m) and view.min() > 0  # no fill pixel left
    # a dark pore touching the edge is not a fill: only whole rows/columns of one value are
    pores = clean.copy()
    pores[:, :6, :20] = 0
    assert fill_borders(pores) is None
    narrow = np.zeros_like(clean)
    narrow[:, 10:20] = clean[:, 10:20]
    with pytest.raises(FibsynthError, match=f"only 9 slices of {8 - 2 * m + 2}x50 pixels"):
        crop_fill(narrow)
    with pytest.raises(FibsynthError, match="every slice is blank"):
        crop_fill(np.zeros((4, 20, 20), np.uint8))


def test_inspection_of_a_stack_with_fill_measures_the_image_only(tmp_path):
    from fibsynth.reconstruct.inspect import crop_fill, inspect_to_npy

    rng = np.random.default_rng(1)
    _, aligned = _aligned_with_fill(rng)
    view, fill = crop_fill(aligned)
    for max_bytes in (10**9, 1):  # in memory, and block by block (the lazy path)
        rec = inspect_to_npy(view, tmp_path / "real.npy", fill=fill, max_bytes=max_bytes, block=4)
        stored = np.load(tmp_path / "real.npy")
        assert stored.shape == view.shape and rec["min"] >= 1  # the fill's 0 is not in the histogram
        assert rec["alignment_fill"]["box"] == fill["box"] and rec["input_shape"] == [9, 40, 50]


def test_cached_rerun_does_not_read_the_stack_for_its_fill(tmp_path, monkeypatch):
    """The inspect step finds the alignment fill once per file: a rerun takes the fill record from the cache
    (``fill_borders`` not called again), a changed file is read again, the inspect key of a stack without fill is
    the one it always had, an older inspect cache of the uncropped stack is not reused for a stack with fill, and a
    stack refused for its fill leaves nothing in the cache."""
    import os

    from fibsynth.experiment.cache import step_key
    from fibsynth.io import VolumeMeta, write_volume
    from fibsynth.reconstruct import inspect as I
    from fibsynth.reconstruct.workflow import _Console, _file_id, _Steps, inspect_step

    reads = []
    real_borders = I.fill_borders
    monkeypatch.setattr(I, "fill_borders", lambda stack, **kw: reads.append(1) or real_borders(stack, **kw))
    rng = np.random.default_rng(2)
    clean, aligned = _aligned_with_fill(rng)
    meta = VolumeMeta(kind="image", voxel_size_nm=4.0)
    for name, arr in (("clean.tif", clean), ("aligned.tif", aligned)):
        write_volume(tmp_path / name, arr, meta)

    def run(name, steps):
        raw, voxel, _, _ = read_stack(tmp_path / name, lazy=True)
        return inspect_step(steps, raw, tmp_path / name, voxel.zyx(), ())

    # an inspect cache of the uncropped aligned stack under the key it had before fill was left out
    old = _Steps(tmp_path / "work", _Console(True))
    vz = read_stack(tmp_path / "aligned.tif")[1].zyx()
    old_params = {"file": _file_id(tmp_path / "aligned.tif"), "voxel": list(vz), "correct": [],
                  "estimators": "fibsynth.microscope"}
    with old.cache.writing(step_key("reconstruct.inspect", old_params, {}), {"step": "inspect"}) as d:
        np.save(d / "real.npy", aligned.astype(np.float32))
        (d / "inspect.json").write_text("{}")

    for name in ("clean.tif", "aligned.tif"):
        first = _Steps(tmp_path / "work", _Console(True))
        k1, _, real1, insp1 = run(name, first)
        n = len(reads)
        again = _Steps(tmp_path / "work", _Console(True))
        k2, _, real2, insp2 = run(name, again)
        assert len(reads) == n, "the cached rerun read the stack again to find its fill"
        assert [r["status"] for r in first.log] == ["ran"] and [r["status"] for r in again.log] == ["cached"]
        assert k1 == k2 and insp1 == insp2 and np.array_equal(real1, real2)
    assert real2.shape == (9, 40 - 5 - 2 * I.FILL_MARGIN_PX, 50 - 8 - 2 * I.FILL_MARGIN_PX)  # cropped, not the old one
    assert insp2["alignment_fill"]["box"] == real_borders(aligned)["box"]
    # a stack without fill keeps the inspect key it had before the fill was cached
    vz = read_stack(tmp_path / "clean.tif")[1].zyx()
    k_clean, *_ = run("clean.tif", _Steps(tmp_path / "work", _Console(True)))
    assert k_clean == step_key("reconstruct.inspect", {"file": _file_id(tmp_path / "clean.tif"), "voxel": list(vz),
                                                       "correct": [], "estimators": "fibsynth.microscope"}, {})
    # the file changed: its fill is found again
    n = len(reads)
    os.utime(tmp_path / "aligned.tif", ns=(1, 1))
    run("aligned.tif", _Steps(tmp_path / "work", _Console(True)))
    assert len(reads) == n + 1
    # refused for its fill: one line, and no entry cached
    blank = np.zeros((4, 20, 20), np.uint8)
    blank[:, 5:15, 5:15] = rng.integers(1, 250, (4, 10, 10))
    write_volume(tmp_path / "narrow.tif", blank, meta)
    work = tmp_path / "w2"
    with pytest.raises(FibsynthError, match="only 4 slices"):
        run("narrow.tif", _Steps(work, _Console(True)))
    assert not (work / "cache").exists() or not any((work / "cache").iterdir())
