"""shading_profile (correct_shading's default "model" method) reads the stack one slice at a time (shade14): the same
numbers as the former whole-array code, written out here as the reference, with a fraction of its memory."""

from __future__ import annotations


import numpy as np
import pytest
from scipy import ndimage
from skimage.filters import threshold_otsu

from fibsynth.microscope.measure import _ExactSum, shading_profile
from test_lazy_slices import _traced_peak


# the former whole-array code (measure.py before shade14): float64 stack, 3D smoothing, Otsu and erosion

def _ref_classes(x, bands, axis):
    sm = ndimage.gaussian_filter(x, (0, 1.0, 1.0))
    e = np.linspace(0, x.shape[axis], bands + 1).astype(int)
    bright = np.zeros(x.shape, bool)
    for i in range(bands):
        sl = [slice(None)] * 3
        sl[axis] = slice(e[i], e[i + 1])
        smo = sm[tuple(sl)]
        if smo.size and smo.max() > smo.min():
            bright[tuple(sl)] = smo > threshold_otsu(smo)
    return bright


def _ref_levels(x, bright, bands, axis):
    edges = np.linspace(0, x.shape[axis], bands + 1).astype(int)
    st = np.zeros((3, 3, 3), bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    core_hi, core_lo = ndimage.binary_erosion(bright, st), ndimage.binary_erosion(~bright, st)
    dark, light = np.full(bands, np.nan), np.full(bands, np.nan)
    for i in range(bands):
        sl = [slice(None)] * 3
        sl[axis] = slice(edges[i], edges[i + 1])
        raw, hi, lo = x[tuple(sl)], core_hi[tuple(sl)], core_lo[tuple(sl)]
        if hi.sum() >= 20 and lo.sum() >= 20:
            dark[i], light[i] = raw[lo].mean(), raw[hi].mean()
    sm = ndimage.gaussian_filter(x, (0, 1.0, 1.0))
    glob = sm > threshold_otsu(sm)
    g_hi, g_lo = ndimage.binary_erosion(glob, st), ndimage.binary_erosion(~glob, st)
    if g_hi.any() and g_lo.any():
        bad = ~(light - dark > 0.4 * (x[g_hi].mean() - x[g_lo].mean()))
        dark[bad], light[bad] = np.nan, np.nan
    return dark, light


def _ref_profile(stack, bands=12, power=None):
    x = np.asarray(stack).astype(np.float64)
    ny, nx = x.shape[1:]
    dark, light = _ref_levels(x, _ref_classes(x, bands, 1), bands, 1)
    ok = np.isfinite(dark)
    centres = (np.linspace(0, ny, bands + 1)[:-1] + np.diff(np.linspace(0, ny, bands + 1)) / 2 - 0.5) / max(ny - 1, 1)
    yc, ys, yd = centres[ok], (light - dark)[ok], dark[ok]
    best = None
    for p in ([power] if power is not None else np.arange(0.5, 4.01, 0.25)):
        A = np.stack([np.ones_like(yc), yc ** p], 1)
        coef, *_ = np.linalg.lstsq(A, ys, rcond=None)
        r = float(((A @ coef - ys) ** 2).sum())
        if best is None or r < best[0]:
            best = (r, float(p), coef)
    _, p, (c0, c1) = best
    offset = None
    if np.ptp(ys) > 0.02 * abs(ys.mean()):
        (offset, _slope), *_ = np.linalg.lstsq(np.stack([np.ones_like(ys), ys], 1), yd, rcond=None)
        offset = float(offset)
    rel = np.maximum((c0 + c1 * np.linspace(0, 1, ny) ** p) / c0, 1e-3)[None, :, None]
    off = 0.0 if offset is None else offset
    flat = (x - off) / rel + off
    cdark, clight = _ref_levels(flat, _ref_classes(flat, bands, 2), bands, 2)
    okc = np.isfinite(cdark)
    xc = (np.linspace(0, nx, bands + 1)[:-1] + np.diff(np.linspace(0, nx, bands + 1)) / 2 - 0.5) / max(nx - 1, 1)
    (d0, d1), *_ = np.linalg.lstsq(np.stack([np.ones(okc.sum()), xc[okc] - 0.5], 1), (clight - cdark)[okc],
                                   rcond=None)
    return {"depth": float(-c1 / max(c0, 1e-12)), "power": p, "tilt": float(d1 / max(d0, 1e-12)), "offset": offset}


def _shaded_two_phase(nz=32, ny=96, nx=96, seed=0):
    """Two phases (gray 0.15 / 0.45 above a black level of 0.04) under a trench shadow (depth 0.4) and a tilt."""
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.standard_normal((nz, ny, nx)), 2.0)
    ideal = np.where(f > 0, 0.45, 0.15)
    yy, xx = np.mgrid[:ny, :nx]
    shade = (1 - 0.4 * (yy / (ny - 1)) ** 2) * (1 + 0.2 * (xx / (nx - 1) - 0.5))
    return (0.04 + ideal * shade + 0.01 * rng.standard_normal((nz, ny, nx))).astype(np.float32)


def test_exact_sum_is_numpys_sum_fed_in_pieces():
    rng = np.random.default_rng(3)
    for n in (1, 7, 129, 1000, 4099, 70001):
        a = rng.standard_normal(n) * 1e4 + 3.0
        s = _ExactSum(n, leaf=128)
        for part in np.array_split(a, 7):
            s.add(part)
        assert s.total() == np.add.reduce(a)  # bit for bit, not within a tolerance


def test_shading_profile_lazy_same_numbers_and_small_peak():
    st = _shaded_two_phase(8, 48, 64)
    for kw in ({}, {"bands": 7, "power": 2.0}):
        ref = _ref_profile(st, **kw)
        assert shading_profile(st, **kw) == ref  # the same floats, offset included
    assert ref["offset"] is not None
    u16 = np.round(st / st.max() * 60000).astype(np.uint16)
    assert shading_profile(u16) == _ref_profile(u16)
    st = _shaded_two_phase(32, 64, 64, seed=1)
    peak = _traced_peak(shading_profile, st)
    # the whole-array code peaked at ~4.7x the stack's float64 size; now a few slices, the cores' bits (1/16) and
    # the partial sums (26 runs of at most 512 values): ~0.45 here, a smaller share of a larger stack
    assert peak < 0.6 * st.size * 8, peak / (st.size * 8)


def _ref_midlevel_dark(x, bright, bands=12):
    """The former _midlevel_dark: the whole stack smoothed, _levels on each slice held as a 1-slice stack."""
    from fibsynth.microscope.measure import _band_rows

    nz, ny, _ = x.shape
    sm = ndimage.gaussian_filter(x, (0, 1.0, 1.0))
    dark, contrast = ~bright, np.full((nz, ny), np.nan)
    for k in range(nz):
        lo, hi = _ref_levels(x[k:k + 1], bright[k:k + 1], bands, 1)
        lo_r, hi_r = _band_rows(lo, ny), _band_rows(hi, ny)
        if lo_r is not None and hi_r is not None:
            dark[k], contrast[k] = sm[k] <= 0.5 * (lo_r + hi_r)[:, None], hi_r - lo_r
    good = np.isfinite(contrast) & (contrast > 0)
    rel = np.ones((nz, ny))
    rel[good] = contrast[good] / contrast[good].mean()
    return dark, rel


def test_charging_and_blur_phase_maps_are_the_band_levels_of_the_whole_stack():
    # micro15: one implementation of the band classes and levels; the charging's epoxy (remove_columns on and
    # off) and the blur's deblurred phase maps equal the former whole-array code's, bit for bit
    from fibsynth.microscope.measure import _charging_epoxy, _deblurred_phases, _epoxy_column_profile

    x = _shaded_two_phase(6, 48, 64, seed=2).astype(np.float64)
    x[:, :, 20:23] += 0.03  # a curtain: the column profile is not flat
    bright = _ref_classes(x, 12, 1)
    for got, ref in ((_charging_epoxy(x, 3, False), _ref_midlevel_dark(x, bright)),):
        assert all(np.array_equal(g, r) for g, r in zip(got, ref))
    xc = x - _epoxy_column_profile(x, ndimage.binary_erosion(~bright, np.ones((1, 1, 7), bool)))[:, None, :]
    got, ref = _charging_epoxy(x, 3, True), _ref_midlevel_dark(xc, _ref_classes(xc, 12, 1))
    assert all(np.array_equal(g, r) for g, r in zip(got, ref))
    sig = np.linspace(0.0, 1.5, 6)
    deb = x.copy()
    for k in range(6):
        for _ in range(4 if sig[k] > 0 else 0):
            deb[k] = deb[k] + (x[k] - ndimage.gaussian_filter(deb[k], sig[k]))
    ref = _ref_classes(deb, 12, 1).astype(np.float64)[[0, 1, 3, 5]]  # the 4 slices the blur's reference uses
    assert np.array_equal(np.stack(_deblurred_phases(x, sig)), ref)


def test_model_shading_reads_a_lazy_stack_once(monkeypatch):
    # micro15: shading_profile passes over the stack eight times; a lazy (dask, Zarr) stack is read once into
    # memory in its own dtype (forward.read_once), in blocks of whole chunks, with the same numbers
    import fibsynth.microscope as M
    import fibsynth.microscope.forward as fw
    from test_lazy_slices import _Recording

    st = np.round(_shaded_two_phase(8, 48, 64, seed=3) * 6e4).astype(np.uint16)
    rec = _Recording(st)
    assert shading_profile(rec) == shading_profile(st)
    assert sum(len(range(*k.indices(8))) if isinstance(k, slice) else 1 for k in rec.reads) == 8
    rec = _Recording(st)
    rec.chunks = (3, 48, 64)  # a Zarr array's chunks: blocks of whole chunks
    out, field, info = M.correct_shading(rec)
    ref = M.correct_shading(st)
    assert np.array_equal(out, ref[0]) and np.array_equal(field, ref[1]) and info == ref[2]
    assert rec.reads == [slice(0, 8)]  # blocks of ~4 MB: one read here
    monkeypatch.setattr(fw, "READ_ONCE_BYTES", st.nbytes - 1)  # too large to hold: read lazily on every pass
    rec = _Recording(st)
    assert shading_profile(rec) == shading_profile(st) and len(rec.reads) == 8 * 8


def test_read_once_limit_is_a_parameter():
    # micro16: the size up to which a lazy stack is held was only the module constant forward.READ_ONCE_BYTES;
    # shading_profile, correct_shading and CorrectConfig take it as read_once_bytes (0: never hold the stack)
    import fibsynth.microscope as M
    from fibsynth.errors import FibsynthError
    from fibsynth.microscope.config import CorrectConfig
    from test_lazy_slices import _Recording

    st = np.round(_shaded_two_phase(8, 48, 64, seed=3) * 6e4).astype(np.uint16)
    ref = shading_profile(st)
    for limit, reads in ((st.nbytes, 1), (st.nbytes - 1, 64), (0, 64)):
        rec = _Recording(st)
        assert shading_profile(rec, read_once_bytes=limit) == ref
        assert len(rec.reads) == reads, (limit, len(rec.reads))
    whole = M.correct_shading(st)
    for limit, reads in ((None, 1), (0, 72)):  # 8 passes of the measurement + the division
        rec = _Recording(st)
        out, field, info = M.correct_shading(rec, read_once_bytes=limit)
        assert np.array_equal(out, whole[0]) and np.array_equal(field, whole[1]) and len(rec.reads) == reads
        rec = _Recording(st)
        y, _ = M.correct(rec, CorrectConfig(shading=True, read_once_bytes=limit))
        assert np.array_equal(y, whole[0]) and len(rec.reads) == reads
    for bad in (-1, 1.5, "2G", True):
        with pytest.raises(FibsynthError) as e:
            shading_profile(st, read_once_bytes=bad)
        assert e.value.param == "read_once_bytes"
        with pytest.raises(FibsynthError) as e:
            M.correct_shading(_Recording(st), read_once_bytes=bad)
        assert e.value.param == "read_once_bytes"
    with pytest.raises(Exception, match="read_once_bytes"):
        CorrectConfig(shading=True, read_once_bytes=-1)
