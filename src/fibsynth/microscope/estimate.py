"""Estimators for a real stack: noise (Poisson-Gaussian), curtain-stripe power, shading, drift; and
:func:`fit_model`, which turns them into a :class:`~fibsynth.microscope.config.MicroscopeModel` for simulated stacks.

All quantities are measured in the stack's own units (use :func:`fibsynth.microscope.as_full_scale` for integer
stacks). To express them in backscatter-yield units, give the yields of the two phases (``eta_levels``): the
estimators then find the two phases' gray levels and map them onto those yields (gain and black level).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from fibsynth.errors import FibsynthError
from fibsynth.microscope.config import Curtaining, Detector, Drift, MicroscopeModel, Shading
from fibsynth.microscope.forward import _stack

_MEDIAN_CHI2_1 = 0.454936423119572  # median of chi-square with one degree of freedom


def noise_sigma(stack: Any) -> float:
    """Gaussian noise std by Donoho's wavelet MAD (as scikit-image ``estimate_sigma``, which needs PyWavelets):
    ``median(|d|) / 0.6745`` of the diagonal Haar details ``d`` of each slice; median over the slices."""
    x = _stack(stack, "stack")
    nz, ny, nx = x.shape
    x = x[:, : ny - ny % 2, : nx - nx % 2]
    d = (x[:, 0::2, 0::2] - x[:, 0::2, 1::2] - x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 2
    return float(np.median(np.median(np.abs(d), axis=(1, 2)) / 0.6744897501960817))


def poisson_gaussian(stack: Any, *, bins: int = 24) -> dict[str, float]:
    """Fit the signal-dependent noise ``var = a * mean + b`` (Foi et al., IEEE TIP 17 (2008) 1737, simplified).

    Each 2x2 block gives a local mean and the square of its diagonal Haar detail ``(p00 - p01 - p10 + p11) / 2``,
    whose expectation is the noise variance for white noise (it cancels gradients and per-line offsets). Blocks are
    binned by mean; a bin's variance is the median of the details' squares divided by the median of chi-square(1),
    which ignores the minority of blocks on edges. ``a`` and ``b`` are a weighted least-squares line through the
    bins
    (weights: flat blocks in the bin / variance). Blocks on edges are left out by their gradient (see the code). For the detector of :class:`~fibsynth.microscope.config.Detector`: ``a = gain / (electrons_per_pixel *
    efficiency)`` and ``b = read_noise**2 - a * dark_offset`` (+ ``q**2/12`` for a quantisation step q)."""
    x = _stack(stack, "stack")
    nz, ny, nx = x.shape
    x = x[:, : ny - ny % 2, : nx - nx % 2]
    p00, p01, p10, p11 = x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]
    mean = ((p00 + p01 + p10 + p11) / 4).ravel()
    d2 = (((p00 - p01 - p10 + p11) / 2) ** 2).ravel()
    g2 = (((p00 + p01 - p10 - p11) / 2) ** 2 + ((p00 - p01 + p10 - p11) / 2) ** 2).ravel()  # gradient details
    lo, hi = np.percentile(mean, [0.5, 99.5])
    if not hi > lo:
        raise FibsynthError("the stack is constant; no noise can be estimated", param="stack")
    edges = np.linspace(lo, hi, bins + 1)
    idx = np.clip(np.digitize(mean, edges) - 1, 0, bins - 1)
    ms, vs, ws = [], [], []
    for i in range(bins):
        sel = idx == i
        n = int(sel.sum())
        if n < 50:
            continue
        var = float(np.median(d2[sel]) / _MEDIAN_CHI2_1)
        # flat blocks only: the two gradient details are, for white noise, independent of the diagonal one and
        # chi-square(2) * var; a block whose gradient exceeds its 90 % quantile sits on an edge
        nflat = n
        for _ in range(3):
            flat = sel & (g2 <= 4.605 * var)
            if flat.sum() < 30:
                break
            nflat = int(flat.sum())
            var = float(np.median(d2[flat]) / _MEDIAN_CHI2_1)
        if not var > 0:
            continue
        ms.append(float(mean[sel].mean()))
        vs.append(var)
        ws.append(np.sqrt(nflat) / var)  # a median variance of n blocks has a std ~ var / sqrt(n)
    if len(ms) < 2:
        return {"a": 0.0, "b": float(np.median(d2) / _MEDIAN_CHI2_1), "bins": len(ms)}
    m, v, w = np.array(ms), np.array(vs), np.array(ws, float)
    A = np.stack([m, np.ones_like(m)], 1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(A, v * w, rcond=None)
    return {"a": float(a), "b": float(b), "bins": len(ms)}


def stripe_profile_power(stack: Any, *, min_gap_px: int | None = None) -> np.ndarray:
    """Variance of the vertical-stripe profile of each slice (in the stack's units squared; may come out slightly
    negative for a stripe-free slice, as an unbiased estimate does).

    Stripes are constant along y, while the structure and the noise of two rows far apart are independent: so the
    covariance over x of two rows (each with its linear trend in x removed) estimates the stripe variance without
    the bias that structure and noise give a column-mean profile. Averaged over all pairs of rows more than
    ``min_gap_px`` apart (default: an eighth of the height)."""
    x = _stack(stack, "stack")
    nz, ny, nx = x.shape
    gap = max(1, ny // 8) if min_gap_px is None else int(min_gap_px)
    if ny <= gap + 1 or nx < 4:
        raise FibsynthError(f"too small for a stripe measurement ({ny} rows, gap {gap})", param="stack")
    t = np.linspace(-1, 1, nx)
    A = np.stack([np.ones(nx), t], 1)
    far = np.abs(np.subtract.outer(np.arange(ny), np.arange(ny))) > gap
    out = np.empty(nz)
    for k in range(nz):
        coef, *_ = np.linalg.lstsq(A, x[k].T, rcond=None)
        r = x[k] - (A @ coef).T
        gram = r @ r.T / nx
        out[k] = float(gram[far].mean())
    return out


def phase_levels(img: Any) -> tuple[float, float]:
    """Mean gray levels (dark, bright) of a two-phase image: Otsu on a smoothed copy, class means of the original
    away from the phase boundaries (classes eroded by one pixel)."""
    from skimage.filters import threshold_otsu

    a = np.asarray(img, np.float64)
    sm = ndimage.gaussian_filter(a, 1.0)
    t = threshold_otsu(sm)
    bright = sm > t
    core_b = ndimage.binary_erosion(bright)
    core_d = ndimage.binary_erosion(~bright)
    if core_b.sum() < 10 or core_d.sum() < 10:
        core_b, core_d = bright, ~bright
    if core_b.sum() == 0 or core_d.sum() == 0:
        raise FibsynthError("cannot find two phases in a slice", param="stack")
    return float(a[core_d].mean()), float(a[core_b].mean())


def drift_series(stack: Any) -> dict[str, list[float]]:
    """Per-slice phase levels, relative contrast ``(bright - dark) / mean`` and black-level change
    ``dark - mean(dark)`` (scaled by the relative contrast, see :func:`fit_model`)."""
    x = _stack(stack, "stack")
    lv = np.array([phase_levels(s) for s in x])
    span = lv[:, 1] - lv[:, 0]
    if not (span > 0).all():
        raise FibsynthError("a slice has no contrast between its phases", param="stack")
    return {"dark": lv[:, 0].tolist(), "bright": lv[:, 1].tolist(), "contrast": (span / span.mean()).tolist()}


def _band_classes(x: np.ndarray, bands: int, axis: int) -> np.ndarray:
    """Bright-phase mask: an Otsu threshold for each band of rows (``axis`` 1) or columns (2), on a smoothed copy,
    so that a gray-level trend across the bands does not mix the phases (the threshold follows it)."""
    from skimage.filters import threshold_otsu

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


def _levels(x: np.ndarray, bright: np.ndarray, bands: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Dark and bright phase levels (interiors of the phases) in ``bands`` bands along ``axis`` (1 rows, 2 columns);
    NaN without both."""
    edges = np.linspace(0, x.shape[axis], bands + 1).astype(int)
    # phase interiors only: pixels on a boundary are partial-volume mixtures whose share varies with the structure
    st = np.zeros((3, 3, 3), bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    core_hi = ndimage.binary_erosion(bright, st)
    core_lo = ndimage.binary_erosion(~bright, st)
    dark, light = np.full(bands, np.nan), np.full(bands, np.nan)
    for i in range(bands):
        sl = [slice(None)] * 3
        sl[axis] = slice(edges[i], edges[i + 1])
        raw, hi, lo = x[tuple(sl)], core_hi[tuple(sl)], core_lo[tuple(sl)]
        if hi.sum() >= 20 and lo.sum() >= 20:
            dark[i], light[i] = raw[lo].mean(), raw[hi].mean()
    # a band that holds one phase only is split by Otsu into two halves of its noise: its "contrast" is a fraction
    # of the whole stack's; such bands are dropped
    if x.size:
        from skimage.filters import threshold_otsu

        sm = ndimage.gaussian_filter(x, (0, 1.0, 1.0))
        glob = sm > threshold_otsu(sm)
        g_hi, g_lo = ndimage.binary_erosion(glob, st), ndimage.binary_erosion(~glob, st)
        if g_hi.any() and g_lo.any():
            whole = x[g_hi].mean() - x[g_lo].mean()
            bad = ~(light - dark > 0.4 * whole)
            dark[bad], light[bad] = np.nan, np.nan
    return dark, light


def shading_profile(stack: Any, *, bands: int = 12, power: float | None = None) -> dict[str, float]:
    """Trench shadow, tilt and black level of a stack, from the two phases' gray levels in ``bands`` bands of rows
    and of columns. Shading multiplies the signal above the black level, so the contrast (bright minus dark level)
    follows it whatever the local solid fraction.

    Rows: contrast ``c0 + c1 * (y/(H-1))**p`` (``p`` given, or the best of 0.5...4), ``depth = -c1 / c0``; the
    dark level is linear in the contrast across the bands and its intercept is the black level (``offset``). The
    rows are then flattened (signal above the black level divided by the shadow), classified again per band of
    columns, and the columns' contrast fitted by
    ``c0 + c1 * (x/(W-1) - 1/2)``, ``tilt = c1 / c0``."""
    x = _stack(stack, "stack")
    ny, nx = x.shape[1:]
    bright = _band_classes(x, bands, 1)
    dark, light = _levels(x, bright, bands, 1)
    ok = np.isfinite(dark)
    if ok.sum() < 3:
        raise FibsynthError("cannot find two phases in enough places to measure the shading", param="stack")
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
    depth = float(-c1 / max(c0, 1e-12))
    offset = None
    if np.ptp(ys) > 0.02 * abs(ys.mean()):  # enough shading to separate the black level from the signal
        (offset, _slope), *_ = np.linalg.lstsq(np.stack([np.ones_like(ys), ys], 1), yd, rcond=None)
        offset = float(offset)
    yy = np.linspace(0, 1, ny)
    rel = np.maximum((c0 + c1 * yy ** p) / c0, 1e-3)[None, :, None]
    off = 0.0 if offset is None else offset
    flat = (x - off) / rel + off
    cdark, clight = _levels(flat, _band_classes(flat, bands, 2), bands, 2)
    okc = np.isfinite(cdark)
    if okc.sum() < 3:
        raise FibsynthError("cannot find two phases in enough places to measure the shading", param="stack")
    xc = (np.linspace(0, nx, bands + 1)[:-1] + np.diff(np.linspace(0, nx, bands + 1)) / 2 - 0.5) / max(nx - 1, 1)
    (d0, d1), *_ = np.linalg.lstsq(np.stack([np.ones(okc.sum()), xc[okc] - 0.5], 1), (clight - cdark)[okc],
                                   rcond=None)
    return {"depth": depth, "power": p, "tilt": float(d1 / max(d0, 1e-12)), "offset": offset}


def fit_model(stack: Any, *, eta_levels: tuple[float, float] | None = None, align: bool = True,
              seed: int = 0) -> tuple[MicroscopeModel, dict[str, Any]]:
    """A forward model matched to a real stack, and the measurements it came from.

    ``eta_levels`` = (epoxy, gold) backscatter yields of the simulation to match (e.g. from the fast path's eta
    curves at the user's energy); the stack's mean phase levels define gain and black level. Without it the stack's
    units are taken as yield units (gain 1, black level 0). Estimated: detector dose (from the Poisson slope) and read
    noise, stripe amplitude, trench-shadow depth and tilt, contrast / brightness drift and the xy step of the slice
    drift (by registration when ``align``). Not estimated (left at the defaults): focus drift, scan-line jitter and
    offsets, charging, non-linear response (the fit assumes a linear detector)."""
    from fibsynth.microscope.inverse import destripe, register_slices, shift_slices

    x = _stack(stack, "stack")
    rec: dict[str, Any] = {}
    # noise on the stack as it is (interpolation during alignment would smooth it)
    pg = poisson_gaussian(x)
    rec["noise"] = {**pg, "sigma_wavelet": noise_sigma(x)}
    # slice drift first: the other measurements are made on the aligned stack
    xy_step = 0.0
    if align and x.shape[0] > 1:
        shifts = register_slices(x)
        steps = np.diff(shifts, axis=0)
        xy_step = float(np.sqrt((steps ** 2).mean() / 2))
        rec["shifts_px"] = np.round(shifts, 3).tolist()
        x = shift_slices(x, shifts)
    ds = drift_series(x)
    dark, bright = float(np.mean(ds["dark"])), float(np.mean(ds["bright"]))
    if eta_levels is not None:
        e0, e1 = (float(v) for v in eta_levels)
        if not e1 > e0:
            raise FibsynthError(f"expected (epoxy, gold) with gold > epoxy (got {eta_levels})", param="eta_levels")
        gain = (bright - dark) / (e1 - e0)
        offset = dark - gain * e0
    else:
        gain, offset = 1.0, 0.0
    if not gain > 0:
        raise FibsynthError("the bright phase is not brighter than the dark one", param="stack")
    # shading on a copy without drift (each slice's phase levels mapped to 0 and 1) and without curtains (destriped:
    # strong stripes tip the phase classification of a band); shading is multiplicative, so both leave it unchanged
    span = (np.asarray(ds["bright"]) - np.asarray(ds["dark"]))[:, None, None]
    flat = destripe((x - np.asarray(ds["dark"])[:, None, None]) / span + 1.0)
    try:
        sh = shading_profile(flat)
        sh["offset"] = None if sh["offset"] is None else float((sh["offset"] - 1.0) * span.mean() + dark)
    except FibsynthError as exc:  # e.g. one phase confined to a few columns: no shading measured
        sh = {"depth": 0.0, "power": 2.0, "tilt": 0.0, "offset": None, "not_measured": exc.message}
    rec["shading"] = sh
    # the phase levels were measured under the shading: the detector's gain is that of the unshaded face
    mean_shade = 1.0 - max(sh["depth"], 0.0) / (sh["power"] + 1.0)
    gain_face = gain / mean_shade if eta_levels is not None else gain
    a, b = pg["a"], pg["b"]
    dose = gain_face / a if a > 1e-12 else None
    read = float(np.sqrt(max(b + a * offset, 0.0)))
    stripe_var = stripe_profile_power(x)
    stripe_rms = float(np.sqrt(max(stripe_var.mean(), 0.0)))
    rec["stripe_rms"] = stripe_rms
    rec["stripe_var_per_slice"] = stripe_var.round(8).tolist()
    contrast = np.asarray(ds["contrast"])
    black = np.asarray(ds["dark"]) - contrast * (dark - offset) - offset  # black-level drift (output units)
    rec["drift"] = {"contrast": contrast.round(5).tolist(), "brightness": (black - black.mean()).round(6).tolist()}
    det = Detector(electrons_per_pixel=None if dose is None else float(np.clip(dose, 1e-6, 1e9)), efficiency=1.0,
                   gain=float(np.clip(gain_face, 1e-6, 1e3)), dark_offset=float(np.clip(offset, -10, 10)),
                   read_noise=float(min(read, 10.0)))
    model = MicroscopeModel(
        detector=det,
        # stripes are added to eta before the shading: divide by the gain measured under the shading
        curtaining=Curtaining(amplitude=float(min(stripe_rms / gain, 1.0))),
        shading=Shading(depth=float(np.clip(sh["depth"], 0, 0.99)), power=sh["power"],
                        tilt=float(np.clip(sh["tilt"], -1.9, 1.9))),
        drift=Drift(contrast_rms=float(min(contrast.std(), 1.0)), brightness_rms=float(min(black.std(), 1.0)),
                    xy_step_px=float(min(xy_step, 50.0))),
        seed=seed,
    )
    return model, rec
