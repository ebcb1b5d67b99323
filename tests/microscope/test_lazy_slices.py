"""The microscope's estimators and corrections read a stack one slice at a time (health13): the same numbers as the
former whole-array code (written out here as the reference), without a float64 copy of the whole stack, and the
chain continued block by block (SliceChain) gives the shifts of registering the stack at once."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import fibsynth
import fibsynth.microscope as M
from fibsynth.errors import FibsynthError
from fibsynth.microscope.inverse import auto_levels, _pcc, _poly_design, _prepare_for_registration, _window, check_region
from microscope_phantom import phantom

EXAMPLE = Path(fibsynth.__file__).parent / "reconstruct" / "data" / "example_stack.tif"


def _example() -> np.ndarray:
    from fibsynth.io import read_volume

    return np.asarray(read_volume(EXAMPLE).data)  # 24 x 96 x 96 uint8


def _drifting(nz=10, n=96, seed=2) -> np.ndarray:
    labels, eta = phantom((nz, n, n), seed=seed)
    rng = np.random.default_rng(seed)
    out = np.empty((nz, n, n), np.float32)
    for k in range(nz):  # stage drift, shot noise and a curtain
        out[k] = ndimage.shift(eta[k], (0.6 * k, -0.9 * k), order=1, mode="nearest")
    out += 0.03 * rng.standard_normal(out.shape).astype(np.float32) + 0.02 * (np.abs(np.arange(n) - 40) < 2)
    return out


# the former whole-array code: the stack converted to float64 at once, then the same steps

def _ref_chain(stack, upsample=20, max_shift_px=None, region=None, search_px=None):
    x = np.asarray(stack).astype(np.float64)
    crop = None if region is None else check_region(region, x.shape)
    if search_px is None and crop is not None:
        search_px = min(crop[0].stop - crop[0].start, crop[1].stop - crop[1].start) / 3.0
    total = np.zeros((x.shape[0], 2))
    for k in range(1, x.shape[0]):
        if crop is None:
            prev, cur = _prepare_for_registration(x[k - 1]), _prepare_for_registration(x[k])
        else:
            win = _window(crop, total[k - 1], x.shape)
            prev, cur = _prepare_for_registration(x[k - 1][win]), _prepare_for_registration(x[k][win])
        step = _pcc(prev, cur, upsample, search_px)
        if max_shift_px is not None and np.hypot(*step) > max_shift_px:
            step = np.zeros(2)
        total[k] = total[k - 1] + step
    return total


def _ref_noise_sigma(stack):
    x = np.asarray(stack).astype(np.float64)
    nz, ny, nx = x.shape
    x = x[:, : ny - ny % 2, : nx - nx % 2]
    d = (x[:, 0::2, 0::2] - x[:, 0::2, 1::2] - x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 2
    return float(np.median(np.median(np.abs(d), axis=(1, 2)) / 0.6744897501960817))


def _ref_stripe_power(stack):
    x = np.asarray(stack).astype(np.float64)
    nz, ny, nx = x.shape
    gap = max(1, ny // 8)
    A = np.stack([np.ones(nx), np.linspace(-1, 1, nx)], 1)
    far = np.abs(np.subtract.outer(np.arange(ny), np.arange(ny))) > gap
    out = np.empty(nz)
    for k in range(nz):
        coef, *_ = np.linalg.lstsq(A, x[k].T, rcond=None)
        r = x[k] - (A @ coef).T
        out[k] = float((r @ r.T / nx)[far].mean())
    return out


@pytest.mark.parametrize("which", ["example", "drifting"])
def test_lazy_estimators_give_the_whole_array_numbers_exactly(which):
    stack = _example() if which == "example" else _drifting()
    ny, nx = stack.shape[1:]
    chain = _ref_chain(stack)
    assert np.abs(chain).max() > 0.5  # a real registration, not zeros
    assert np.array_equal(M.register_slices(stack), chain)
    assert np.array_equal(M.register_slices(stack, max_shift_px=0.7), _ref_chain(stack, max_shift_px=0.7))
    region = (0, ny // 3, 0, nx)
    assert np.array_equal(M.register_slices(stack, region=region), _ref_chain(stack, region=region))
    assert M.noise_sigma(stack) == _ref_noise_sigma(stack)
    assert np.array_equal(M.stripe_profile_power(stack), _ref_stripe_power(stack))
    x = np.asarray(stack).astype(np.float64)
    assert np.array_equal(M.shift_slices(stack, chain), np.stack(
        [ndimage.shift(s, c, order=3, mode="nearest") if c.any() else s for s, c in zip(x, chain)]))
    levels = auto_levels(ny, nx)
    assert np.array_equal(M.destripe(stack[:3], method="wavelet"),
                          np.stack([M.destripe_slice(s, levels=levels) for s in x[:3]]))
    m = x.mean(0)  # the shading background of the former code: a polynomial fit to the whole stack's mean
    A = _poly_design(ny, nx, 3)
    bg = (A @ np.linalg.lstsq(A, m.ravel(), rcond=None)[0]).reshape(m.shape)
    field = M.shading_background(stack)
    assert np.array_equal(field, np.maximum(bg / bg.mean(), 1e-3))
    y, f, _ = M.correct_shading(stack, method="polynomial")  # a field measured before, applied to a block
    assert np.array_equal(M.correct_shading(stack[2:5], method="polynomial", field=f)[0], y[2:5])
    assert np.array_equal(M.denoise(stack[:3], "gaussian"), np.stack([ndimage.gaussian_filter(s, 1.0) for s in x[:3]]))
    assert M.destripe_method(stack) == "wavelet" and M.destripe_method(stack, method="phase") == "phase"
    # a chain fed in uneven blocks (the continuation carries the last slice and the running shift)
    for kw in ({}, {"region": region}):
        c = M.SliceChain(**kw)
        got = np.concatenate([c.add(stack[z0:z1]) for z0, z1 in ((0, 1), (1, 4), (4, 5), (5, len(stack)))])
        assert np.array_equal(got, _ref_chain(stack, **kw)) and c.count == len(stack)


class _Recording:
    """A read-only array-like that hands out copies of single slices and records every read."""

    def __init__(self, a):
        self._a, self.shape, self.dtype, self.reads = a, a.shape, a.dtype, []

    def __getitem__(self, key):
        self.reads.append(key)
        return np.array(self._a[key])


def _traced_peak(fn, *args):
    """The peak of the memory Python traces while ``fn(*args)`` runs (also used by test_lazy_correct.py and
    test_lazy_shading_profile.py)."""
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_no_whole_stack_float64_copy(tmp_path):
    # 64 slices: a fixed working set of a few slices is a small part of the stack, a float64 copy of the whole
    # stack (the former code) is more than all of it
    shape = (64, 64, 64)
    mm = np.lib.format.open_memmap(tmp_path / "s.npy", mode="w+", dtype=np.float32, shape=shape)
    mm[:] = np.random.default_rng(4).random(shape, np.float32)
    mm.flush()
    del mm
    stack = np.load(tmp_path / "s.npy", mmap_mode="r")
    full64 = stack.size * 8
    M.register_slices(stack[:2])  # imports (scikit-image) outside the trace
    rec = _Recording(stack)  # a memory map behind an array-like without __array__: read it slice by slice
    assert _traced_peak(lambda: M.register_slices(rec)) < 0.5 * full64
    assert rec.reads == list(range(shape[0]))  # each slice read once, alone
    for fn in (M.noise_sigma, M.stripe_profile_power):
        assert _traced_peak(lambda: fn(stack)) < 0.5 * full64, fn


def test_chain_checks_what_it_is_given():
    with pytest.raises(FibsynthError, match="upsample"):
        M.SliceChain(upsample=0)
    c = M.SliceChain(region=(0, 40, 0, 96))
    with pytest.raises(FibsynthError, match="region"):
        M.SliceChain(region=(0, 200, 0, 96)).add(np.zeros((2, 96, 96)))
    c.add(np.random.default_rng(0).random((2, 96, 96)))
    with pytest.raises(FibsynthError, match="do not continue"):
        c.add(np.zeros((2, 64, 96)))
    with pytest.raises(FibsynthError, match="field"):
        M.correct_shading(np.ones((2, 32, 32)), method="polynomial", field=np.ones((32, 31)))
    bad = np.random.default_rng(1).random((3, 32, 32))
    bad[2, 1, 1] = np.nan  # found when slice 2 is read
    with pytest.raises(FibsynthError, match="NaN"):
        M.register_slices(bad)
    with pytest.raises(FibsynthError, match="NaN"):
        M.noise_sigma(bad)
