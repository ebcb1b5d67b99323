"""The corrections that used to hold the whole stack -- correct_shading, correct_drift, correct() and the template
registration -- read it one slice at a time and write one float64 output (micro14): the same numbers as the former
whole-array code (written out here as the reference), with a fraction of its memory."""

from __future__ import annotations


import numpy as np
import pytest
from scipy import ndimage

import fibsynth.microscope as M
from fibsynth.errors import FibsynthError
from fibsynth.microscope import CorrectConfig
from fibsynth.microscope.inverse import _pcc, _poly_design, _prepare_for_registration, auto_levels, check_region
from test_lazy_slices import _drifting, _example, _ref_chain
from test_lazy_slices import _traced_peak as _peak


# the former whole-array code: the stack converted to float64 at once, then the same steps

def _ref_template(stack, half_width=3, region=None, max_shift_px=None):
    x = np.asarray(stack).astype(np.float64)
    total = _ref_chain(stack, max_shift_px=max_shift_px, region=region)
    crop = None if region is None else check_region(region, x.shape)
    search = None if crop is None else min(crop[0].stop - crop[0].start, crop[1].stop - crop[1].start) / 3.0
    nz = len(x)
    for _ in range(2):
        aligned = np.stack([ndimage.shift(s, c, order=3, mode="nearest") if c.any() else s for s, c in zip(x, total)])
        if crop is not None:
            aligned = aligned[(slice(None),) + crop]
        new = total.copy()
        for k in range(nz):
            idx = [j for j in range(max(0, k - half_width), min(nz, k + half_width + 1)) if j != k]
            r = _pcc(_prepare_for_registration(np.median(aligned[idx], axis=0)),
                     _prepare_for_registration(aligned[k]), 20, search)
            if max_shift_px is None or np.hypot(*r) <= max_shift_px:
                new[k] = total[k] + r
        total = new - new[0]
    return total


def _ref_shading(x, off=0.0, degree=3, sigma_px=None):
    m = (x - off).mean(0)
    if sigma_px is not None:
        bg = ndimage.gaussian_filter(m, sigma_px, mode="nearest")
    else:
        A = _poly_design(*m.shape, degree)
        bg = (A @ np.linalg.lstsq(A, m.ravel(), rcond=None)[0]).reshape(m.shape)
    field = np.maximum(bg / bg.mean(), 1e-3)
    return (x - off) / field[None] + off, field


def _ref_drift(x):
    m, s = x.mean((1, 2)), x.std((1, 2))
    g = float(np.median(s)) / s
    o = float(np.median(m)) - g * m
    return x * g[:, None, None] + o[:, None, None], g, o


@pytest.mark.parametrize("which", ["example", "drifting"])
def test_lazy_corrections_give_the_whole_array_numbers_exactly(which):
    stack = (_example() if which == "example" else _drifting())[:6]
    x = np.asarray(stack).astype(np.float64)
    ny, nx = x.shape[1:]
    region = (0, ny // 3, 0, nx)
    tp = _ref_template(stack)
    assert np.abs(tp).max() > 0.5  # a real registration
    assert np.array_equal(M.register_slices(stack, method="template"), tp)
    assert np.array_equal(M.register_slices(stack[:5], method="template", region=region, template_half_width=2,
                                            max_shift_px=3.0),
                          _ref_template(stack[:5], half_width=2, region=region, max_shift_px=3.0))
    for kw in ({}, {"dark_offset": 0.05}):
        y, f, _ = M.correct_shading(stack, method="polynomial", **kw)
        ry, rf = _ref_shading(x, kw.get("dark_offset", 0.0))
        assert np.array_equal(y, ry) and np.array_equal(f, rf)
    y, f, _ = M.correct_shading(stack, method="gaussian")
    assert np.array_equal(y, _ref_shading(x, sigma_px=max(ny, nx) / 4.0)[0])
    y, rec = M.correct_drift(stack)
    ry, g, o = _ref_drift(x)
    assert np.array_equal(y, ry) and rec["gain"] == g.round(6).tolist() and rec["offset"] == o.round(6).tolist()
    # correct(): align, destripe, shading, drift, denoise, each written over the one before
    cfg = CorrectConfig(align=True, destripe=True, destripe_method="wavelet", shading=True,
                        shading_method="polynomial", drift=True, denoise="gaussian")
    got, rec = M.correct(stack, cfg)
    chain = _ref_chain(stack)
    a = np.stack([ndimage.shift(s, c, order=3, mode="nearest") if c.any() else s for s, c in zip(x, chain)])
    a = np.stack([M.destripe_slice(s, levels=auto_levels(ny, nx)) for s in a])
    a = _ref_drift(_ref_shading(a)[0])[0]
    assert np.array_equal(got, np.stack([ndimage.gaussian_filter(s, 1.0) for s in a]))
    assert rec["applied"] == ["align", "destripe", "shading", "drift", "denoise:gaussian"]
    assert np.array_equal(M.correct(stack, CorrectConfig(drift=True))[0], ry)
    assert np.array_equal(M.correct(stack)[0], x)


def _traced_peak(fn, stack):
    fn(np.asarray(stack[:4]))  # first-use imports and caches outside the trace
    return _peak(fn, stack)


def test_corrections_hold_one_float64_stack(tmp_path):
    shape = (48, 48, 48)
    mm = np.lib.format.open_memmap(tmp_path / "s.npy", mode="w+", dtype=np.float32, shape=shape)
    mm[:] = _drifting(nz=48, n=48)
    mm.flush()
    del mm
    stack = np.load(tmp_path / "s.npy", mmap_mode="r")
    full64 = stack.size * 8
    # registration: a window of slices, not an aligned copy (the former code: > 2 stacks)
    assert _traced_peak(lambda s: M.register_slices(s, method="template"), stack) < 0.75 * full64
    # the output is the only whole-stack array (the former code: a float64 copy of the input besides, >= 2 stacks)
    for fn in (M.correct_drift, lambda s: M.correct_shading(s, method="polynomial")):
        assert _traced_peak(fn, stack) < 1.3 * full64, fn
    # (destriping is left out here: its per-slice scratch, four times a slice's area several times over, is most of
    # this small stack; it writes in place like the others)
    cfg = CorrectConfig(align=True, shading=True, shading_method="gaussian", drift=True, denoise="gaussian")
    assert _traced_peak(lambda s: M.correct(s, cfg), stack) < 1.3 * full64  # (former: >= 2 stacks at once)


def test_out_is_checked():
    x = np.random.default_rng(0).random((3, 16, 16))
    with pytest.raises(FibsynthError, match="float64") as e:
        M.correct_drift(x, out=np.empty((3, 16, 16), np.float32))
    assert e.value.param == "out"
    y = x.copy()
    assert np.array_equal(M.correct_drift(y, out=y)[0], M.correct_drift(x)[0])  # in place: each slice read first
