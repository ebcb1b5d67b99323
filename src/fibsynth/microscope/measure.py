"""Single measurements of a real or simulated stack: noise (Poisson-Gaussian), stripe power, phase levels,
brightness drift and shading. :mod:`fibsynth.microscope.estimate` combines them into a fitted forward model;
:mod:`fibsynth.microscope.inverse` uses some of them to correct a stack (kept apart so neither imports the other).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from fibsynth.errors import FibsynthError
from fibsynth.microscope.forward import _Slices, _stack, read_once

_MEDIAN_CHI2_1 = 0.454936423119572  # median of chi-square with one degree of freedom


def noise_sigma(stack: Any) -> float:
    """Gaussian noise std by Donoho's wavelet MAD (as scikit-image ``estimate_sigma``, which needs PyWavelets):
    ``median(|d|) / 0.6745`` of the diagonal Haar details ``d`` of each slice; median over the slices. Reads
    ``stack`` (any array-like: memory map, dask array) one slice at a time: no float64 copy of the whole stack."""
    x = _Slices(stack, "stack")
    nz, ny, nx = x.shape
    mad = np.empty(nz)
    for k in range(nz):
        s = x[k][: ny - ny % 2, : nx - nx % 2]
        d = (s[0::2, 0::2] - s[0::2, 1::2] - s[1::2, 0::2] + s[1::2, 1::2]) / 2
        mad[k] = np.median(np.abs(d))
    return float(np.median(mad / 0.6744897501960817))


def _slice_offsets(key: np.ndarray, grid: int = 512, max_shift: float = 0.25) -> np.ndarray:
    """Per slice, the gray-level shift that best aligns its histogram of ``key`` (z, ...) with the whole stack's
    (cross-correlation of the smoothed histograms, parabolic sub-bin peak), within ``max_shift`` of the gray range
    (a black-level drift moves every level of a slice alike; a larger shift would align one phase with another);
    relative to the median slice."""
    lo, hi = np.percentile(key, [0.5, 99.5])
    if not hi > lo:
        return np.zeros(key.shape[0])
    step = (hi - lo) / grid
    edges = lo + step * np.arange(-grid // 2, grid + grid // 2 + 1)
    hist = lambda v: ndimage.gaussian_filter1d(np.histogram(v, edges)[0].astype(float), 2.0)
    ref = hist(key)
    ref = ref - ref.mean()
    lags = np.arange(-int(max_shift * grid), int(max_shift * grid) + 1)
    off = np.zeros(key.shape[0])
    for k in range(key.shape[0]):
        h = hist(key[k])
        h = h - h.mean()
        cc = np.array([np.dot(np.roll(h, -lag), ref) for lag in lags])
        i = int(np.argmax(cc))
        frac = 0.0
        if 0 < i < len(lags) - 1:
            den = cc[i - 1] - 2 * cc[i] + cc[i + 1]
            frac = 0.5 * (cc[i - 1] - cc[i + 1]) / den if den < 0 else 0.0
        off[k] = (lags[i] + frac) * step
    return off - np.median(off)


def poisson_gaussian(stack: Any, *, bins: int = 24, per_slice: bool = True) -> dict[str, Any]:
    """Fit the signal-dependent noise ``var = a * mean + b`` (Foi et al., IEEE TIP 17 (2008) 1737, simplified).

    Each 2x2 block gives a local mean and the square of its diagonal Haar detail ``(p00 - p01 - p10 + p11) / 2``,
    whose expectation is the noise variance for white noise (it cancels gradients, column profiles and per-line
    offsets). Three things would bias the slope, and are kept out (docs/microscope.md):

    - *regression to the mean*: blocks binned by their own noisy mean put the tails of each phase's gray-level
      cluster at the wrong mean; they are binned by the mean of their 8 neighbouring blocks instead (independent
      of their own noise), and a bin's mean is the average of its blocks' own means (unbiased);
    - *edges*: a block is used only when its own gradient details (independent of its diagonal one for white
      noise) and its neighbours' are within the noise, judged against the fitted line (3 passes), and bins in
      which under half of the blocks are flat (the partial-volume gray levels between the phases, all on edges)
      are left out; a bin's variance is then the mean of its blocks' squared details;
    - *black-level drift*: with ``per_slice`` (default) each slice gets its own intercept ``b_k`` and all share
      ``a`` (a drifting black level moves a slice's means, not its variances: pooled, it flattened the slope by
      ~10 %); ``b`` is their mean. With ``per_slice=False`` (one line for the stack) each slice's gray levels are
      first shifted by its black-level offset, the shift that best aligns its histogram of block means with the
      stack's (:func:`_slice_offsets`; without it the pooled slope was 20-100 % low under a drift of 0.03).
      When the slices are too small for a line each, wider bins are tried (down to 4) before the pooled line.

    Weights: blocks per bin over the fitted variance (iterated). For the detector of
    :class:`~fibsynth.microscope.config.Detector`: ``a = gain / (electrons_per_pixel * efficiency)`` and
    ``b = read_noise**2 - a * dark_offset`` (+ ``q**2/12`` for a quantisation step q)."""
    x = _stack(stack, "stack")
    nz, ny, nx = x.shape
    if ny < 8 or nx < 8:
        raise FibsynthError(f"too small for a noise measurement ({ny} x {nx})", param="stack")
    x = x[:, : ny - ny % 2, : nx - nx % 2]
    p00, p01, p10, p11 = x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]
    mean = (p00 + p01 + p10 + p11) / 4
    d2 = ((p00 - p01 - p10 + p11) / 2) ** 2
    g2 = (((p00 + p01 - p10 - p11) / 2) ** 2 + ((p00 - p01 + p10 - p11) / 2) ** 2) / 2  # per detail
    ring = np.ones((1, 3, 3))
    ring[0, 1, 1] = 0.0
    key = ndimage.convolve(mean, ring / 8.0, mode="reflect")  # the neighbours' mean
    g2n = ndimage.convolve(g2, ring / 8.0, mode="reflect")  # the neighbours' gradient energy
    inner = (slice(None), slice(1, -1), slice(1, -1))
    if not per_slice and nz > 1:  # one line for the stack: take each slice's black-level offset out first
        off = _slice_offsets(key[inner])[:, None, None]
        mean, key = mean - off, key - off
    mean, d2, g2, key, g2n = (v[inner].ravel() for v in (mean, d2, g2, key, g2n))
    lo, hi = np.percentile(key, [0.5, 99.5])
    if not hi > lo:
        raise FibsynthError("the stack is constant; no noise can be estimated", param="stack")
    inr = (key >= lo) & (key <= hi)
    idx = np.clip(np.digitize(key, np.linspace(lo, hi, bins + 1)) - 1, 0, bins - 1)
    group = (np.repeat(np.arange(nz), mean.size // nz) if per_slice else np.zeros(mean.size, int))
    ng = int(group.max()) + 1
    cell = group * bins + idx
    total = np.bincount(cell[inr], minlength=ng * bins)
    # first pass: each cell's own robust noise level (median of its squared diagonal details; edges are a minority
    # in a phase's bins). One level for all blocks (as before) took the bright phase's noise, 2-3x the dark one's,
    # for edges, dropped its bins, and the line then came from the dark phase's bins alone: with a drifting black
    # level pooled over slices (``per_slice=False``) their spread of means is the drift, and the slope came out
    # 0 to -100 % (docs/microscope.md)
    med = np.full(ng * bins, np.median(d2))
    order = np.argsort(cell[inr], kind="stable")
    cs, dsorted = cell[inr][order], d2[inr][order]
    starts = np.searchsorted(cs, np.arange(ng * bins))
    ends = np.searchsorted(cs, np.arange(ng * bins), side="right")
    for c_ in np.nonzero(ends - starts >= 30)[0]:
        med[c_] = np.median(dsorted[starts[c_]:ends[c_]])
    var_blk = med[cell] / _MEDIAN_CHI2_1
    fit = None
    for _ in range(3):
        # own gradient: chi-square(2)/2 of white noise under its 99 % quantile; neighbours' (16 details): 99 %
        flat = inr & (g2 <= 4.61 * var_blk) & (g2n <= 2.0 * var_blk)
        c = cell[flat]
        n = np.bincount(c, minlength=ng * bins)
        sm = np.bincount(c, mean[flat], minlength=ng * bins)
        sv = np.bincount(c, d2[flat], minlength=ng * bins)
        ok = (n >= 30) & (n >= 0.5 * total)
        g = np.nonzero(ok)[0] // bins
        used = np.unique(g)
        if len(used) == 0 or ok.sum() < len(used) + 1:
            break
        m, v, w0 = sm[ok] / n[ok], sv[ok] / n[ok], np.sqrt(n[ok])
        A = np.zeros((len(m), 1 + len(used)))
        A[:, 0] = m
        A[np.arange(len(m)), 1 + np.searchsorted(used, g)] = 1.0
        w = w0 / v.mean()
        for _ in range(3):
            coef, *_ = np.linalg.lstsq(A * w[:, None], v * w, rcond=None)
            w = w0 / np.maximum(A @ coef, 0.2 * v)
        b_g = np.full(ng, float(np.mean(coef[1:])))
        b_g[used] = coef[1:]
        fit = (float(coef[0]), b_g, len(m))
        var_blk = np.maximum(coef[0] * key + b_g[group], 0.05 * np.median(v))
    if fit is None:
        if per_slice and bins > 4:
            # too few blocks per gray-level bin of a slice (small slices): wider bins, still an intercept per slice.
            # The model is linear, so a bin's mean variance is the line at its mean block mean whatever its width.
            # (Falling back to one line for the stack, as before, took any black-level drift into the slope.)
            return poisson_gaussian(x, bins=max(bins // 3, 4), per_slice=True)
        if per_slice:  # still too few: one line for the stack (assumes a constant black level)
            return poisson_gaussian(x, bins=bins, per_slice=False)
        return {"a": 0.0, "b": noise_sigma(x) ** 2, "bins": 0, "b_per_slice": None}
    a, b_g, nb = fit
    return {"a": a, "b": float(b_g.mean()), "bins": nb,
            "b_per_slice": b_g.round(10).tolist() if per_slice else None}


def _noise_bins(x: np.ndarray, bins: int, min_flat: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, noise variance, flat blocks) per gray-level bin of 2x2 blocks (see :func:`poisson_gaussian`); bins
    in which less than ``min_flat`` of the blocks are flat (mostly edges) are left out."""
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
        if not var > 0 or nflat < min_flat * n:
            continue
        ms.append(float(mean[sel].mean()))
        vs.append(var)
        ws.append(float(nflat))
    return np.array(ms), np.array(vs), np.array(ws)


def stripe_profile_power(stack: Any, *, min_gap_px: int | None = None) -> np.ndarray:
    """Variance of the vertical-stripe profile of each slice (in the stack's units squared; may come out slightly
    negative for a stripe-free slice, as an unbiased estimate does).

    Stripes are constant along y, while the structure and the noise of two rows far apart are independent: so the
    covariance over x of two rows (each with its linear trend in x removed) estimates the stripe variance without
    the bias that structure and noise give a column-mean profile. Averaged over all pairs of rows more than
    ``min_gap_px`` apart (default: an eighth of the height). Reads ``stack`` (any array-like: memory map, dask
    array) one slice at a time: no float64 copy of the whole stack."""
    x = _Slices(stack, "stack")
    nz, ny, nx = x.shape
    gap = max(1, ny // 8) if min_gap_px is None else int(min_gap_px)
    if ny <= gap + 1 or nx < 4:
        raise FibsynthError(f"too small for a stripe measurement ({ny} rows, gap {gap})", param="stack")
    t = np.linspace(-1, 1, nx)
    A = np.stack([np.ones(nx), t], 1)
    far = np.abs(np.subtract.outer(np.arange(ny), np.arange(ny))) > gap
    out = np.empty(nz)
    for k in range(nz):
        img = x[k]
        coef, *_ = np.linalg.lstsq(A, img.T, rcond=None)
        r = img - (A @ coef).T
        gram = r @ r.T / nx
        out[k] = float(gram[far].mean())
    return out


def phase_levels(img: Any, *, erode_px: int = 3) -> tuple[float, float]:
    """Mean gray levels (dark, bright) of a two-phase image: Otsu on a smoothed copy, class means of the original
    away from the phase boundaries (classes eroded by ``erode_px`` pixels, fewer when that leaves under 10 pixels
    of a class). With 1 px the probe blur leaks into the levels, so a focus drift reads as contrast drift
    (/tmp check on the benchmark's 4 seeds: contrast drift +0.23 / +0.13 in two of them with 1 px, +0.08 / -0.03
    with 3 px); :func:`drift_series` uses 3 px for the contrast series."""
    from skimage.filters import threshold_otsu

    a = np.asarray(img, np.float64)
    sm = ndimage.gaussian_filter(a, 1.0)
    t = threshold_otsu(sm)
    bright = sm > t
    core_b, core_d = bright, ~bright
    for it in range(max(int(erode_px), 0), 0, -1):
        cb, cd = ndimage.binary_erosion(bright, iterations=it), ndimage.binary_erosion(~bright, iterations=it)
        if cb.sum() >= 10 and cd.sum() >= 10:
            core_b, core_d = cb, cd
            break
    if core_b.sum() == 0 or core_d.sum() == 0:
        raise FibsynthError("cannot find two phases in a slice", param="stack")
    return float(a[core_d].mean()), float(a[core_b].mean())


def drift_series(stack: Any) -> dict[str, list[float]]:
    """Per-slice phase levels ``dark`` / ``bright`` and relative contrast ``(bright - dark) / mean``, all from
    phase cores 3 px from the boundaries (closer ones take in the probe blur: a focus drift read as contrast drift,
    +23 % in one of the benchmark's seeds, and the levels came out ~9 % too close together, i.e. the gain ~9 %
    low); ``dark_1px`` / ``bright_1px``: the same from 1-px cores (the previous levels, kept for comparison). The
    gain used to come from the 1-px levels, whose -9 % cancelled a -10 % bias of the Poisson slope in the dose; both
    are fixed now (docs/microscope.md)."""
    x = _stack(stack, "stack")
    lv = np.array([phase_levels(s, erode_px=1) for s in x])
    deep = np.array([phase_levels(s, erode_px=3) for s in x])
    span, deep_span = lv[:, 1] - lv[:, 0], deep[:, 1] - deep[:, 0]
    if not ((span > 0).all() and (deep_span > 0).all()):
        raise FibsynthError("a slice has no contrast between its phases", param="stack")
    return {"dark": deep[:, 0].tolist(), "bright": deep[:, 1].tolist(),
            "contrast": (deep_span / deep_span.mean()).tolist(),
            "dark_1px": lv[:, 0].tolist(), "bright_1px": lv[:, 1].tolist()}


def _band_edges(n: int, bands: int) -> np.ndarray:
    return np.linspace(0, n, bands + 1).astype(int)


_CROSS = np.zeros((3, 3, 3), bool)
_CROSS[1] = ndimage.generate_binary_structure(2, 1)  # a 2D cross in the middle plane: each slice eroded alone


class _ExactSum:
    """``np.add.reduce`` (so ``.mean()``) of a float64 series of known length ``n`` fed in pieces, with the same
    rounding as on the whole series held at once: numpy sums a contiguous array pairwise, splitting a run of more
    than 128 values at ``n2 = n // 2 - (n // 2) % 8``; the same splits are made here down to runs of at most
    ``leaf`` values, which numpy sums as it would inside the whole array (``np.add.reduce(run, initial=-0.0)``:
    ``-0.0 + s == s`` for every ``s``), and the runs' sums are added up the same tree. Holds under one run of
    values: ``leaf`` (default ``max(512, n // 2048)``, at least 128) bounds both that and the number of runs."""

    def __init__(self, n: int, leaf: int | None = None):
        self.n, self._runs, self._sums = int(n), [], []
        leaf = max(512, self.n // 2048) if leaf is None else leaf
        self._tree = self._split(self.n, max(int(leaf), 128))
        self._buf: list[np.ndarray] = []
        self._held, self._next = 0, 0

    def _split(self, n: int, leaf: int) -> Any:
        if n <= leaf:
            self._runs.append(n)
            return None
        n2 = n // 2
        n2 -= n2 % 8
        return (self._split(n2, leaf), self._split(n - n2, leaf))

    def add(self, values: np.ndarray) -> None:
        if values.size:
            self._buf.append(np.ascontiguousarray(values, np.float64).ravel())
            self._held += values.size
        while self._next < len(self._runs) and self._held >= self._runs[self._next] and self._buf:
            a = self._buf[0] if len(self._buf) == 1 else np.concatenate(self._buf)
            at = 0
            while self._next < len(self._runs) and a.size - at >= self._runs[self._next]:
                m = self._runs[self._next]
                self._sums.append(np.add.reduce(a[at:at + m], initial=-0.0))
                at, self._next = at + m, self._next + 1
            self._buf = [a[at:].copy()] if at < a.size else []  # not a view that keeps all of a
            self._held = a.size - at

    def total(self) -> float:
        if self._next != len(self._runs) or self._held:
            raise RuntimeError("the series was not fed its announced length")  # a bug here, not the caller's
        it = iter(self._sums)

        def up(node: Any) -> float:
            return next(it) if node is None else up(node[0]) + up(node[1])
        return up(self._tree)


def _smoothed(img: np.ndarray) -> np.ndarray:
    """Slice ``img`` smoothed as ``ndimage.gaussian_filter(x, (0, 1, 1))[k]`` smooths it inside a stack."""
    return ndimage.gaussian_filter(img[None], (0, 1.0, 1.0))[0]


def _band_slices(shape: tuple[int, int], bands: int, axis: int) -> list[tuple[slice, slice]]:
    """The slice's bands of rows (``axis`` 1) or columns (2), as index tuples of a 2D slice."""
    e = _band_edges(shape[axis - 1], bands)
    out = []
    for i in range(bands):
        sl = [slice(None)] * 2
        sl[axis - 1] = slice(e[i], e[i + 1])
        out.append(tuple(sl))
    return out


def _otsu_thresholds(smooth: Any, nz: int, bsl: list, whole: bool) -> tuple[list, float | None]:
    """Otsu thresholds of each band ``bsl`` of the smoothed slices ``smooth(k)`` (k < ``nz``), pooled over the
    slices, and with ``whole`` of the whole stack: the numbers ``threshold_otsu`` gives on the band (the stack)
    held at once, from 256-bin histograms summed over the slices (pass 1: each band's range, pass 2: the counts;
    the same counts and bin centres as its image path). None for a band without two values (and without
    ``whole``); a constant stack's threshold is its value, as ``threshold_otsu`` returns.

    ``smooth`` may also be the smoothed stack held as one array (nz, ny, nx): each band's range and counts then
    come from one call over all its slices -- the same numbers (a minimum of minima is the minimum; numpy bins
    each value alone, so counts add), with 1/nz of the calls (micro16)."""
    from skimage.filters import threshold_otsu

    bands = len(bsl)
    if isinstance(smooth, np.ndarray):
        return _otsu_thresholds_held(smooth, bsl, whole)
    lo, hi = np.full(bands, np.inf), np.full(bands, -np.inf)
    glo, ghi = np.inf, -np.inf
    for k in range(nz):
        sm = smooth(k)
        for i, sl in enumerate(bsl):
            if sm[sl].size:
                lo[i], hi[i] = min(lo[i], sm[sl].min()), max(hi[i], sm[sl].max())
        if whole:
            glo, ghi = min(glo, sm.min()), max(ghi, sm.max())
    use = [bool(hi[i] > lo[i]) for i in range(bands)]
    counts = [np.zeros(256, np.intp) for _ in range(bands + 1)]
    edges: list[Any] = [None] * (bands + 1)
    if any(use) or ghi > glo:
        for k in range(nz):
            sm = smooth(k)
            for i, sl in enumerate(bsl):
                if use[i]:
                    c, edges[i] = np.histogram(sm[sl], bins=256, range=(lo[i], hi[i]))
                    counts[i] += c
            if ghi > glo:
                c, edges[bands] = np.histogram(sm, bins=256, range=(glo, ghi))
                counts[bands] += c

    def otsu(i: int) -> float:
        return threshold_otsu(hist=(counts[i], (edges[i][:-1] + edges[i][1:]) / 2.0))
    thr = [otsu(i) if use[i] else None for i in range(bands)]
    gthr = None if not whole else otsu(bands) if ghi > glo else glo
    return thr, gthr


def _otsu_thresholds_held(sm: np.ndarray, bsl: list, whole: bool) -> tuple[list, float | None]:
    """:func:`_otsu_thresholds` of a smoothed stack held as one array: one range and one histogram per band."""
    from skimage.filters import threshold_otsu

    def otsu(v: np.ndarray) -> float | None:
        lo, hi = v.min(), v.max()
        if not hi > lo:
            return None
        c, e = np.histogram(v, bins=256, range=(lo, hi))
        return threshold_otsu(hist=(c, (e[:-1] + e[1:]) / 2.0))

    thr = [otsu(sm[(slice(None),) + sl]) if sm[(slice(None),) + sl].size else None for sl in bsl]
    gthr = None
    if whole:
        gthr = otsu(sm)
        if gthr is None:
            gthr = sm.min()
    return thr, gthr


class _BandClasses:
    """Bright-phase mask of a stack read one slice at a time (``read(k)``, k < ``nz``): an Otsu threshold for each
    band of rows (``axis`` 1) or columns (2) of the smoothed slices (``gaussian_filter(x, (0, 1, 1))``), pooled
    over the stack (:func:`_otsu_thresholds`), so that a gray-level trend across the bands does not mix the phases
    (the threshold follows it). ``mask(sm)``: the mask of a smoothed slice, ``self(k)``: of slice k. ``whole``:
    also the whole stack's threshold (``whole_threshold``, for the one-phase-band test of :func:`_band_levels`).
    ``smooth``: ``smooth(k)``, or the smoothed stack held as one array (then also used by ``self(k)``)."""

    def __init__(self, read: Any, nz: int, shape: tuple[int, int], bands: int, axis: int, whole: bool = False,
                 smooth: Any = None):
        self.read, self.nz, self.bsl = read, nz, _band_slices(shape, bands, axis)
        self.held = smooth if isinstance(smooth, np.ndarray) else None
        smooth = (lambda k: _smoothed(read(k))) if smooth is None else smooth
        self.thr, self.whole_threshold = _otsu_thresholds(smooth, nz, self.bsl, whole)

    def mask(self, sm: np.ndarray) -> np.ndarray:
        bright = np.zeros(sm.shape, bool)
        for t, sl in zip(self.thr, self.bsl):
            if t is not None:
                bright[sl] = sm[sl] > t
        return bright

    def __call__(self, k: int) -> np.ndarray:
        return self.mask(self.held[k] if self.held is not None else _smoothed(self.read(k)))


def _band_levels(read: Any, nz: int, shape: tuple[int, int], bands: int, axis: int, classes: Any = None,
                 smooth: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Dark and bright phase levels (means over the phases' interiors) in ``bands`` bands of rows (``axis`` 1) or
    columns (2) of a stack read one slice at a time (``x[k] = read(k)``, k < ``nz``); NaN without both phases.
    ``classes(k)``: the bright-phase mask of slice k (default: :class:`_BandClasses` of this stack);
    ``smooth(k)``: slice k smoothed (:func:`_smoothed`, the default, when the caller has it already).

    Phase interiors only (each mask eroded by a 2D cross in its slice): pixels on a boundary are partial-volume
    mixtures whose share varies with the structure. A band that holds one phase only is split by Otsu into two
    halves of its noise, its "contrast" a fraction of the whole stack's: bands whose contrast is under 0.4 of the
    whole stack's (its own Otsu class, smoothed, interiors) are dropped.

    The numbers of the whole stack in float64 held at once (shade14, micro15): thresholds from summed histograms
    (:func:`_otsu_thresholds`), the cores' counts (pass 3, kept as packed bits, 4 bits a voxel), then the means
    summed in the order and with the rounding of ``raw[core].mean()`` on the whole stack (pass 4,
    :class:`_ExactSum`). Holds a few slices and the bits."""
    smooth = (lambda k: _smoothed(read(k))) if smooth is None else smooth
    if classes is None:
        classes = _BandClasses(read, nz, shape, bands, axis, whole=True, smooth=smooth)
        gthr = classes.whole_threshold
        bright_of = lambda k, sm: classes.mask(sm)  # noqa: E731
    else:
        gthr = _otsu_thresholds(smooth, nz, [], True)[1]
        bright_of = lambda k, sm: classes(k)  # noqa: E731
    bsl = _band_slices(shape, bands, axis)
    # pass 3: phase cores (per band's class, and of the whole stack's class), their counts, kept as bits
    n_hi, n_lo = np.zeros((bands, nz), np.int64), np.zeros((bands, nz), np.int64)
    g_n = np.zeros(2, np.int64)
    bits = []
    for k in range(nz):
        sm = smooth(k)
        bright = bright_of(k, sm)
        glob = sm > gthr
        cores = [ndimage.binary_erosion(m[None], _CROSS)[0] for m in (bright, ~bright, glob, ~glob)]
        for i, sl in enumerate(bsl):
            n_hi[i, k], n_lo[i, k] = cores[0][sl].sum(), cores[1][sl].sum()
        g_n += (cores[2].sum(), cores[3].sum())
        bits.append(np.packbits(np.stack(cores)))
    ok = (n_hi.sum(1) >= 20) & (n_lo.sum(1) >= 20)
    glob_ok = bool(g_n[0] > 0 and g_n[1] > 0)
    # pass 4: the means, summed as numpy sums the whole stack's selections
    acc = {(i, j): _ExactSum((n_hi if j else n_lo)[i].sum()) for i in range(bands) if ok[i] for j in (0, 1)}
    gacc = [_ExactSum(g_n[0]), _ExactSum(g_n[1])] if glob_ok else []
    for k in range(nz):
        raw = read(k)
        cores = np.unpackbits(bits[k], count=4 * raw.size).reshape((4,) + raw.shape).view(bool)
        bits[k] = None
        for (i, j), s in acc.items():
            s.add(raw[bsl[i]][cores[1 - j][bsl[i]]])
        for j, s in enumerate(gacc):
            s.add(raw[cores[2 + j]])
    dark, light = np.full(bands, np.nan), np.full(bands, np.nan)
    for i in range(bands):
        if ok[i]:
            dark[i] = acc[i, 0].total() / acc[i, 0].n
            light[i] = acc[i, 1].total() / acc[i, 1].n
    if glob_ok:
        whole = gacc[0].total() / gacc[0].n - gacc[1].total() / gacc[1].n
        bad = ~(light - dark > 0.4 * whole)
        dark[bad], light[bad] = np.nan, np.nan
    return dark, light


def shading_profile(stack: Any, *, bands: int = 12, power: float | None = None,
                    read_once_bytes: int | None = None) -> dict[str, float]:
    """Trench shadow, tilt and black level of a stack, from the two phases' gray levels in ``bands`` bands of rows
    and of columns. Shading multiplies the signal above the black level, so the contrast (bright minus dark level)
    follows it whatever the local solid fraction.

    Rows: contrast ``c0 + c1 * (y/(H-1))**p`` (``p`` given, or the best of 0.5...4), ``depth = -c1 / c0``; the
    dark level is linear in the contrast across the bands and its intercept is the black level (``offset``). The
    rows are then flattened (signal above the black level divided by the shadow), classified again per band of
    columns, and the columns' contrast fitted by
    ``c0 + c1 * (x/(W-1) - 1/2)``, ``tilt = c1 / c0``.

    Reads ``stack`` (any array-like: memory map, dask array) one slice at a time, four times for the rows and four
    for the columns (:func:`_band_levels`): the same numbers as on the whole stack in float64 (thresholds,
    phase cores and means alike), holding a few slices and 4 bits a voxel (shade14). A dask or Zarr array (anything
    but a numpy array or memory map) is first read once into memory in its own dtype when that takes at most
    ``read_once_bytes`` (default ``None``: ``forward.READ_ONCE_BYTES``, 2 GiB; 0: never, read it on every pass;
    :func:`~fibsynth.microscope.forward.read_once`; micro15, micro16): one read of each slice instead of eight."""
    x = _Slices(read_once(stack, read_once_bytes, param="read_once_bytes"), "stack")
    nz, ny, nx = x.shape
    dark, light = _band_levels(x.__getitem__, nz, (ny, nx), bands, 1)
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
    rel = np.maximum((c0 + c1 * yy ** p) / c0, 1e-3)[:, None]
    off = 0.0 if offset is None else offset

    def flat(k: int) -> np.ndarray:  # slice k of (x - off) / rel + off, the rows flattened
        return (x[k] - off) / rel + off
    cdark, clight = _band_levels(flat, nz, (ny, nx), bands, 2)
    okc = np.isfinite(cdark)
    if okc.sum() < 3:
        raise FibsynthError("cannot find two phases in enough places to measure the shading", param="stack")
    xc = (np.linspace(0, nx, bands + 1)[:-1] + np.diff(np.linspace(0, nx, bands + 1)) / 2 - 0.5) / max(nx - 1, 1)
    (d0, d1), *_ = np.linalg.lstsq(np.stack([np.ones(okc.sum()), xc[okc] - 0.5], 1), (clight - cdark)[okc],
                                   rcond=None)
    return {"depth": depth, "power": p, "tilt": float(d1 / max(d0, 1e-12)), "offset": offset}


# ------------------------------------------------------------------------------------------------ scan lines, blur,
# detector response (issue 13's second round of estimators; docs/microscope.md gives their measured accuracy)

def _column_blocks(nx: int, blocks: int) -> list[slice]:
    e = np.linspace(0, nx, blocks + 1).astype(int)
    return [slice(int(e[i]), int(e[i + 1])) for i in range(blocks)]


def _cross_block_variance(per_block: np.ndarray) -> float:
    """Mean covariance over pairs of column blocks of per-row series (blocks, z, rows): what the blocks share (a
    per-line artifact) without what differs between them (structure, noise)."""
    p = per_block - per_block.mean(2, keepdims=True)
    nb = p.shape[0]
    c = [float((p[i] * p[j]).mean()) for i in range(nb) for j in range(i + 1, nb)]
    return float(np.mean(c))


def scan_line_artifacts(stack: Any, *, blocks: int = 4, charging: dict[str, Any] | None = None,
                        noise: dict[str, Any] | None = None) -> dict[str, float]:
    """Per-scan-line offset (std, stack units) and x jitter (std, pixels) of a stack.

    A line artifact is the same in every part of the line, while structure and noise differ between distant parts:
    so the covariance, over the lines, of a per-line measurement made separately in ``blocks`` blocks of columns
    estimates the artifact's variance without their bias (as :func:`stripe_profile_power` does for stripes).
    Offsets: the median over a block of the difference of a line and the next (the median ignores the structure's
    edges), whose variance is twice the offset variance. Jitter: the x shift of a line against the next by a
    least-squares (optical-flow) fit in each block, on lines smoothed by 0.7 px along x, after removing each
    block's mean difference (the offsets); its variance is twice the jitter variance. The jitter estimate assumes
    shifts well under the feature size (the forward model's up to ~1 px). The noise in the gradients adds to the
    fit's denominator (sum of squared gradients) and scales every shift down by signal / (signal + noise energy):
    at the benchmark's dose the jitter read 11-14 % low, at a quarter of it 22-25 % (docs/microscope.md).
    ``noise`` (a :func:`poisson_gaussian` result, ``var = a * mean + b``): that energy, ``sum over the block of
    (var_line + var_next) / 4`` times the sum of squares of the smoothing-and-gradient filter, is subtracted
    from each block's denominator (it never removes more than 3/4 of it). Without it the jitter keeps the bias.

    ``charging`` (a :func:`charging_streaks` result): struck lines carry their charge along the line, in every
    block alike, and read as line offsets (benchmark's full microscope, charging strength 0.1 on 30 % of the
    lines: 0.022-0.024 for 0.010, docs/microscope.md); when it is flagged present, the share it adds to the same
    statistic, ``f (1 - f) s^2`` times the mean over lines and block pairs of the product of the blocks' medians
    of the charge state ``c_f`` (:func:`charging_line_variance`), is subtracted."""
    x = _stack(stack, "stack")
    nz, ny, nx = x.shape
    if ny < 8 or nx < 8 * blocks:
        raise FibsynthError(f"too small for a scan-line measurement ({ny} x {nx})", param="stack")
    bl = _column_blocks(nx, blocks)
    d = np.diff(x, axis=1)
    med = np.stack([np.median(d[:, :, b], axis=2) for b in bl])
    off_var = _cross_block_variance(med) / 2.0
    if charging is not None:
        cf = _charge_state(x, charging)
        if cf is not None:
            f, st = float(charging["line_fraction"]), float(charging["strength"])
            m = np.stack([np.median(cf[:, :, b], axis=2) for b in bl])
            pairs = [float((m[i] * m[j]).mean()) for i in range(len(bl)) for j in range(i + 1, len(bl))]
            off_var -= f * (1 - f) * st * st * float(np.mean(pairs))
    off_var = max(off_var, 0.0)
    sm = ndimage.gaussian_filter1d(x, _JITTER_SMOOTH_PX, axis=2)
    a, b = sm[:, :-1], sm[:, 1:]
    g = np.gradient(0.5 * (a + b), axis=2)
    diff = b - a
    pair_var = None
    if noise is not None:  # expected noise variance of each pixel of the line pair's mean, before the filter
        bz = noise.get("b_per_slice") or [noise["b"]] * nz
        var = float(noise["a"]) * np.clip(ndimage.gaussian_filter(x, (0, 1.0, 1.0)), 0, None)
        var = np.clip(var + np.asarray(bz, np.float64)[:, None, None], 0, None)
        pair_var = (var[:, :-1] + var[:, 1:]) / 4.0 * _jitter_filter_energy()
    shifts = []
    for sl in bl:
        dd = diff[:, :, sl] - diff[:, :, sl].mean(2, keepdims=True)
        gg = g[:, :, sl]
        den = (gg * gg).sum(2)
        if pair_var is not None:
            den = np.maximum(den - pair_var[:, :, sl].sum(2), 0.25 * den)
        s = (gg * dd).sum(2) / np.maximum(den, 1e-30)
        shifts.append(np.clip(np.where(den > 0, s, 0.0), -3, 3))
    jit_var = max(_cross_block_variance(np.stack(shifts)) / 2.0, 0.0)
    return {"offset_std": float(np.sqrt(off_var)), "jitter_px": float(np.sqrt(jit_var))}


_JITTER_SMOOTH_PX = 0.7


def _jitter_filter_energy() -> float:
    """Sum of squares of the jitter fit's filter (Gaussian of 0.7 px along x, then the central difference): the
    gradient noise variance per unit pixel noise variance."""
    d = np.zeros(65)
    d[32] = 1.0
    h = np.gradient(ndimage.gaussian_filter1d(d, _JITTER_SMOOTH_PX))
    return float((h * h).sum())


_BLUR_SCALES = (1.0, 2.0)


def _y_gradient_energy(img: np.ndarray, s: float, noise_var: float = 0.0, line_var: float = 0.0) -> float:
    """Mean square of the y derivative of a Gaussian (scale ``s``) of one image, the expected contributions of
    white noise (``noise_var`` per pixel) and of per-line offsets (``line_var``) removed. Only y: vertical
    curtains and x line jitter have no y derivative."""
    g = ndimage.gaussian_filter(img, s, order=(1, 0), mode="reflect")
    c = int(3 * s) + 1
    e = float((g[c:-c, c:-c] ** 2).mean()) if min(img.shape) > 2 * c + 2 else float((g ** 2).mean())
    # sum of squares of the sampled filters: d/dy Gaussian 1/(4 sqrt(pi) s^3), Gaussian 1/(2 sqrt(pi) s)
    return e - noise_var / (8 * np.pi * s ** 4) - line_var / (4 * np.sqrt(np.pi) * s ** 3)


def _blur_ratio(img: np.ndarray, noise_var: float = 0.0, line_var: float = 0.0) -> float:
    s1, s2 = _BLUR_SCALES
    e2 = _y_gradient_energy(img, s2, noise_var, line_var)
    return _y_gradient_energy(img, s1, noise_var, line_var) / e2 if e2 > 0 else float("nan")


def _reference_picks(nz: int) -> np.ndarray:
    """The (up to 4) slices of a reference stack that :func:`_blur_from_reference` uses."""
    return np.linspace(0, nz - 1, min(4, nz)).astype(int)


def _blur_from_reference(ratios: np.ndarray, ref: list[np.ndarray], max_px: float) -> np.ndarray:
    """The sigma that gives the (mean over the slices ``ref``, :func:`_reference_picks` of the) reference the
    measured ratios; NaN where a ratio is NaN (a slice without edges above the noise) or no reference slice has
    edges."""
    grid = np.arange(0.0, max_px + 1e-9, 0.05)
    # a reference slice without edges (one phase only, e.g. an all-epoxy slice of the stack's own phase map) has no
    # ratio: it is left out, else its NaN would take every slice's blur with it
    usable = [r for r in ref if np.isfinite(_blur_ratio(r))]
    if not usable:
        return np.full(np.shape(ratios), np.nan)
    curve = np.array([np.mean([_blur_ratio(ndimage.gaussian_filter(r, b) if b > 0 else r) for r in usable])
                      for b in grid])
    order = np.argsort(-curve)  # the ratio falls with the blur: interpolate on the falling curve
    return np.interp(-ratios, -curve[order], grid[order])


def _deblurred_phases(x: np.ndarray, sigma: np.ndarray, iters: int = 4) -> list[np.ndarray]:
    """The phase map (Otsu per band of rows, :class:`_BandClasses`) of the slices :func:`_reference_picks` of the
    stack after ``iters`` Van Cittert iterations ``f <- f + (x - G_sigma f)`` that undo a Gaussian blur ``sigma``
    (per slice) to first orders; each slice deblurred when it is read (three times), not held."""
    def deblurred(k: int) -> np.ndarray:
        f = x[k].copy()
        if sigma[k] > 0:
            for _ in range(iters):
                f = f + (x[k] - ndimage.gaussian_filter(f, float(sigma[k])))
        return f
    classes = _BandClasses(deblurred, x.shape[0], x.shape[1:], 12, 1)
    return [classes(k).astype(np.float64) for k in _reference_picks(x.shape[0])]


def blur_series(stack: Any, *, reference: Any = None, noise_var: float | None = None,
                line_offset_std: float = 0.0, max_px: float = 6.0, self_iters: int = 2,
                charging: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-slice Gaussian blur (sigma, pixels) of a two-phase stack relative to ``reference``.

    The ratio of the y-gradient energies after Gaussian derivative filters of 1 and 2 px falls as the edges get
    blurrier, independently of contrast, shading and the amount of boundary; curved boundaries change it too, so
    it is compared with the same ratio of a ``reference`` blurred by a known sigma: the blur is the sigma that
    gives the reference the stack's ratio. ``reference``: an ideal image stack of the same kind of structure
    (e.g. the simulation the forward model is matched to; the blur is then the extra blur the model should add).
    Without it, the stack's own phases are the reference and the result is the *total* blur. The phase map of a
    blurred image is not the structure: thresholding a blurred boundary moves it by its curvature (a curvature
    flow), so small features and sharp bends, the high frequencies the ratio measures, are lost, and that map
    read 7-13 % low (with the true labels as reference: within 1.5 %; noise made no difference; docs/microscope.md).
    So the map is redone ``self_iters`` times from the slice deblurred by the current estimate (4 Van Cittert
    iterations) and the blur measured again (bias down to ~1-6 % low). The noise (``noise_var``, default from
    :func:`poisson_gaussian`) and line offsets are subtracted from the gradient energies, and so is, with
    ``charging`` (a :func:`charging_streaks` result flagged present), the charging's line-to-line share
    (:func:`charging_line_variance`): struck and unstruck lines alternate at random, a component white along y
    that the ratio takes for fine detail (on the benchmark's charged stacks the blur read 24-31 % low with the
    true line offsets; docs/microscope.md)."""
    x = _stack(stack, "stack")
    if noise_var is None:
        pg = poisson_gaussian(x)
        noise_var = float(np.mean(np.clip(pg["a"] * x + pg["b"], 0, None)))
    lv = float(line_offset_std) ** 2 + (np.zeros(x.shape[0]) if charging is None
                                         else charging_line_variance(x, charging))
    ratios = np.array([_blur_ratio(s, noise_var, v) for s, v in zip(x, np.broadcast_to(lv, x.shape[:1]))])
    self_ref = reference is None
    if self_ref:
        classes = _BandClasses(x.__getitem__, x.shape[0], x.shape[1:], 12, 1)
        ref = [classes(k).astype(np.float64) for k in _reference_picks(x.shape[0])]
    else:
        r = _stack(reference, "reference")
        ref = [r[k] for k in _reference_picks(r.shape[0])]
    sig = _blur_from_reference(ratios, ref, max_px)
    first = sig
    if self_ref:
        for _ in range(max(int(self_iters), 0)):
            sig = _blur_from_reference(ratios, _deblurred_phases(x, sig), max_px)
    return {"blur_px": sig.round(4).tolist(), "ratio": ratios.round(5).tolist(),
            "relative_to": "total (own phases)" if self_ref else "reference",
            "blur_px_first_map": first.round(4).tolist() if self_ref else None}


IDENTIFIABLE_GAMMA_RATIO = 2.0


def response_gamma(stack: Any, *, bins: int = 24, per_slice: bool = False) -> dict[str, Any]:
    """Exponent of a power-law detector response ``out = u**gamma`` (u: the linear signal with its
    Poisson-Gaussian noise ``var_u = a u + c``), from the noise curve: the variance of each gray-level bin
    (2x2 blocks binned by their own mean; bins made mostly of edge blocks left out) is
    ``(gamma u**(gamma-1))**2 (a u + c)`` at ``u = mean**(1/gamma)``; gamma is the value of a grid (0.4 ... 2.5)
    whose linearised variances lie best on lines with ``a > 0`` (log residuals weighted by the blocks per bin;
    when over 0.1 % of the pixels pile up at the minimum, bins within 3 noise std of it are left out, where the
    output is clipped). ``per_slice=True`` gives each slice its own line (``a``, ``c``) and one gamma for all.

    Identifiability: the curve has three unknowns (gamma, a, c). A two-phase stack whose flat regions sit at two
    gray levels (no shading, drift or curtains spreading them) gives two points, and a line through two points
    exists for every gamma: gamma is then not identifiable (docs/microscope.md shows the flat residual). The
    result says so: ``gamma_interval`` is the range of the grid whose residual is within 4 units of the
    per-degree-of-freedom residual of the best (a ~95 % interval), ``levels`` the spread of the bins' gray levels
    in noise std, and ``identifiable`` is True when the interval spans at most a factor
    ``IDENTIFIABLE_GAMMA_RATIO`` (2; measured: 2.6-3.3 on two-cluster stacks, 1.45-1.8 on the benchmark's full
    microscope but 2.3 in one seed of 9).
    Returns gamma and ``a``, ``c`` (medians over the slices with ``per_slice``)."""
    x = _stack(stack, "stack")
    per = []
    lo = float(x.min())
    clipped = bool(np.mean(x <= lo) > 1e-3)  # a pile-up at the minimum: the detector clipped there
    groups = [x[k:k + 1] for k in range(x.shape[0])] if per_slice else [x]
    for g in groups:
        try:
            m, v, n = _noise_bins(g, bins, min_flat=0.5)
        except FibsynthError:
            continue
        if clipped:  # bins within 3 noise std of the clipping level are distorted by it
            keep = m - lo > 3 * np.sqrt(v)
            m, v, n = m[keep], v[keep], n[keep]
        if len(m) >= 4:
            per.append((m, v, n))
    if not per:
        raise FibsynthError("too few gray levels to measure the detector response", param="stack")
    grid = np.exp(np.linspace(np.log(0.4), np.log(2.5), 121))
    resid = np.full(grid.size, np.nan)
    coefs_at: dict[int, np.ndarray] = {}
    for i, g in enumerate(grid):
        r, coefs, ok = 0.0, [], True
        for m, v, n in per:
            u = m ** (1 / g)
            vu = v / (g * u ** (g - 1)) ** 2
            A = np.stack([u, np.ones_like(u)], 1)
            w = np.sqrt(n) / vu
            coef, *_ = np.linalg.lstsq(A * w[:, None], np.sqrt(n), rcond=None)  # relative residuals
            pred = A @ coef
            if coef[0] <= 0 or (pred <= 0).any():
                ok = False
                break
            r += float((np.log(pred / vu) ** 2 * n).sum())
            coefs.append(coef)
        if ok:
            resid[i] = r
            coefs_at[i] = np.median(np.array(coefs), 0)
    if not np.isfinite(resid).any():
        raise FibsynthError("the noise does not grow with the signal; no response measured", param="stack")
    best = int(np.nanargmin(resid))
    dof = max(sum(len(m) for m, _, _ in per) - 3 * len(per), 1)
    within = np.isfinite(resid) & (resid <= resid[best] + 4.0 * max(resid[best], 1e-12) / dof)
    lo_g, hi_g = float(grid[within].min()), float(grid[within].max())
    gamma = float(grid[best])
    spread = max(float(np.ptp(m) / np.sqrt(np.median(v))) for m, v, _ in per)
    return {"gamma": gamma, "a": float(coefs_at[best][0]), "c": float(coefs_at[best][1]),
            "gamma_interval": [lo_g, hi_g], "levels": round(spread, 2),
            "identifiable": bool(hi_g / lo_g <= IDENTIFIABLE_GAMMA_RATIO)}


def _row_slopes(x: np.ndarray, core: np.ndarray, c: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per-line least-squares slope of ``x`` on ``c`` over the pixels of ``core`` (own intercept per line)."""
    n = core.sum(2)
    sc, sx = (core * c).sum(2), (core * x).sum(2)
    var_c = (core * c * c).sum(2) - sc ** 2 / np.maximum(n, 1)
    cov = (core * c * x).sum(2) - sc * sx / np.maximum(n, 1)
    return cov[ok] / var_c[ok]


def _detrend_lines(a: np.ndarray, core: np.ndarray) -> np.ndarray:
    """``a`` minus, per line, its least-squares straight line in x over the pixels of ``core`` (where a line has
    fewer than 3 such pixels or no spread in x, its mean)."""
    u = np.broadcast_to(np.arange(a.shape[2], dtype=np.float64), a.shape)
    n, su, suu = core.sum(2), (core * u).sum(2), (core * u * u).sum(2)
    sa, sua = (core * a).sum(2), (core * u * a).sum(2)
    det = n * suu - su ** 2
    good = (n >= 3) & (det > 1e-9 * np.maximum(n * suu, 1))
    beta = np.where(good, (n * sua - su * sa) / np.where(good, det, 1), 0.0)
    alpha = (sa - beta * su) / np.maximum(n, 1)
    return a - alpha[..., None] - beta[..., None] * u


def _epoxy_column_profile(x: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Per slice, the mean over the lines of each column's pixels in ``core`` (columns without any: the slice's
    mean), minus its mean: (z, x). Curtains and the tilt are such column profiles, fixed for all lines."""
    w = core.sum(1)
    prof = (x * core).sum(1) / np.maximum(w, 1)
    out = np.zeros_like(prof)
    for k in range(x.shape[0]):
        have = w[k] > 0
        if have.sum() < 2:
            continue
        p = prof[k].copy()
        p[~have] = p[have].mean()
        out[k] = p - p[have].mean()
    return out


def _band_rows(values: np.ndarray, ny: int) -> np.ndarray | None:
    """Per-band values (NaN where unmeasured) interpolated linearly to the ``ny`` rows; None without any."""
    good = np.isfinite(values)
    if not good.any():
        return None
    e = np.linspace(0, ny, len(values) + 1)
    return np.interp(np.arange(ny) + 0.5, ((e[:-1] + e[1:]) / 2)[good], values[good])


def _midlevel_dark(x: np.ndarray, classes: "_BandClasses", bands: int = 12,
                   smoothed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dark-phase mask from a threshold midway between the two phase levels of each band of rows (on the 1-px
    smoothed slice), and the phase contrast per slice and row (z, y) relative to its mean.

    Otsu's threshold on a blurred two-phase image with unequal phase fractions sits off the middle; the midway
    iso-contour is the boundary a blur leaves in place (a straight one), and it is where the forward model puts
    the epoxy for charging. On the benchmark's full microscope it disagrees with the forward model's epoxy on
    5.5 % of the pixels instead of 7.6 %, and the spread of the struck lines' charge slopes falls from 0.15-0.19
    to 0.12-0.14 of the strength (docs/microscope.md). ``smoothed``: the slices smoothed (:func:`_smoothed`)
    when the caller holds them."""
    nz, ny, _ = x.shape
    dark = np.empty(x.shape, bool)
    contrast = np.full((nz, ny), np.nan)
    for k in range(nz):
        sm = _smoothed(x[k]) if smoothed is None else smoothed[k]
        bright = classes.mask(sm)  # ``classes`` pooled over the stack, the one-phase-band test on this slice
        lo, hi = _band_levels(lambda _: x[k], 1, x.shape[1:], bands, 1, classes=lambda _: bright,
                              smooth=lambda _: sm)
        lo_r, hi_r = _band_rows(lo, ny), _band_rows(hi, ny)
        if lo_r is None or hi_r is None:
            dark[k] = ~bright
            continue
        dark[k] = sm <= 0.5 * (lo_r + hi_r)[:, None]
        contrast[k] = hi_r - lo_r
    good = np.isfinite(contrast) & (contrast > 0)
    rel = np.ones((nz, ny))
    if good.any():
        rel[good] = contrast[good] / contrast[good].mean()
    return dark, rel


def _core_noise_var(x: np.ndarray, core: np.ndarray) -> float:
    """White-noise variance inside ``core`` from the diagonal Haar details of 2x2 blocks wholly in it (median /
    median of chi-square(1), as :func:`noise_sigma`)."""
    nz, ny, nx = x.shape
    x, core = x[:, : ny - ny % 2, : nx - nx % 2], core[:, : ny - ny % 2, : nx - nx % 2]
    d = (x[:, 0::2, 0::2] - x[:, 0::2, 1::2] - x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 2
    inside = core[:, 0::2, 0::2] & core[:, 0::2, 1::2] & core[:, 1::2, 0::2] & core[:, 1::2, 1::2]
    if inside.sum() < 50:
        return 0.0
    return float(np.median(d[inside] ** 2) / _MEDIAN_CHI2_1)


def _struck_mixture(k: np.ndarray, noise: np.ndarray, f0: float, s0: float,
                    iters: int = 500) -> dict[str, float]:
    """EM fit of ``k ~ (1 - f) N(mu0, tau2 + noise) + f N(mu0 + s, tau2 + noise)`` over the lines: ``noise`` is
    each line's known slope variance from the pixel noise, ``tau2`` the structure's share (fitted)."""
    from scipy import optimize

    f = float(np.clip(f0, 0.05, 0.95))
    s = float(s0) if s0 > 0 else float(np.percentile(k, 85) - np.median(k))
    s = max(s, 1e-6 * (float(np.std(k)) + 1e-12))
    mu0 = float(k.mean() - f * s)
    var = float(k.var()) + 1e-30
    tau2 = max(var - f * (1 - f) * s * s - float(noise.mean()), 0.05 * var)
    ll_old = -np.inf
    for it in range(iters):
        v = tau2 + noise
        l0 = (1 - f) * np.exp(-0.5 * (k - mu0) ** 2 / v)
        l1 = f * np.exp(-0.5 * (k - mu0 - s) ** 2 / v)
        tot = l0 + l1 + 1e-300
        r = l1 / tot
        ll = float(np.sum(np.log(tot) - 0.5 * np.log(v)))
        f = float(r.mean())
        w = 1.0 / v
        a11, a12, b1, b2 = w.sum(), (w * r).sum(), (w * k).sum(), (w * r * k).sum()
        det = a11 * a12 - a12 * a12
        if not det > 0 or not 0 < f < 1:
            break
        mu0, s = (a12 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det
        e2 = (1 - r) * (k - mu0) ** 2 + r * (k - mu0 - s) ** 2

        def nll(lt: float) -> float:
            vv = np.exp(lt) + noise
            return float(0.5 * np.sum(np.log(vv) + e2 / vv))

        tau2 = float(np.exp(optimize.minimize_scalar(nll, bounds=(np.log(1e-8 * var), np.log(4 * var)),
                                                     method="bounded").x))
        if abs(ll - ll_old) <= 1e-10 * abs(ll):
            break
        ll_old = ll
    return {"f": f, "s": float(s), "mu0": float(mu0), "tau2": tau2, "iterations": it + 1}


def _t_mixture_loglik(k: np.ndarray, v: np.ndarray, f: float, mu0: float, s: float, nu: float) -> float:
    """Log-likelihood of ``k`` under ``(1 - f) t_nu(mu0, v) + f t_nu(mu0 + s, v)`` (``v`` each line's squared scale)."""
    from scipy import special

    c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
    l0 = np.log1p(-f) - (nu + 1) / 2 * np.log1p((k - mu0) ** 2 / (nu * v))
    l1 = np.log(f) - (nu + 1) / 2 * np.log1p((k - mu0 - s) ** 2 / (nu * v))
    return float(np.sum(c - 0.5 * np.log(v) + np.logaddexp(l0, l1)))


def _variance_step(tau2: float, e2: np.ndarray, noise: np.ndarray, var: float, steps: int = 3) -> float:
    """Newton steps in log(tau2) on ``-0.5 sum(log(tau2 + noise) + e2 / (tau2 + noise))`` from the current value,
    each kept only if it raises it (an ECM step: the likelihood never falls), within [1e-8, 4] x ``var``."""
    def q(t: float) -> float:
        vv = t + noise
        return float(-0.5 * np.sum(np.log(vv) + e2 / vv))

    t, qt = tau2, q(tau2)
    for _ in range(steps):
        vv = t + noise
        a, b = 1.0 / vv, e2 / vv ** 2
        g = 0.5 * t * float(np.sum(b - a))  # d/dlog t
        h = g + 0.5 * t * t * float(np.sum(a * a - 2 * b / vv))  # d2/dlog t2
        step = -g / h if h < 0 else float(np.sign(g)) * 0.5
        step = float(np.clip(step, -2.0, 2.0))
        for _ in range(8):
            cand = float(np.clip(t * np.exp(step), 1e-8 * var, 4 * var))
            qc = q(cand)
            if qc >= qt:
                t, qt = cand, qc
                break
            step *= 0.5
        else:
            break
    return t


def _struck_t_mixture(k: np.ndarray, noise: np.ndarray, f0: float, s0: float, nu: float,
                      iters: int = 300) -> dict[str, float]:
    """EM (ECM) fit of ``k ~ (1 - f) t_nu(mu0, tau2 + noise) + f t_nu(mu0 + s, tau2 + noise)``: the mixture of
    :func:`_struck_mixture` with Student-t components of ``nu`` degrees of freedom (each line's latent precision
    weight ``u = (nu + 1) / (nu + d^2)``, the standard EM for t mixtures; Peel & McLachlan 2000). The unstruck
    lines' slopes are heavy-tailed (excess kurtosis 1.5-6 on the benchmark's full microscope: a few lines cross
    much more blurred edge or mask error than the rest); a Gaussian mixture explains that tail by a small struck
    fraction far out, which at weak charging made the fraction read 30-60 % low (docs/microscope.md)."""
    f = float(np.clip(f0, 0.02, 0.9))
    s = float(s0) if s0 > 0 else float(np.percentile(k, 85) - np.median(k))
    s = max(s, 1e-6 * (float(np.std(k)) + 1e-12))
    mu0 = float(np.median(k) - 0.5 * f * s)
    var = float(k.var()) + 1e-30
    tau2 = max(var - f * (1 - f) * s * s - float(noise.mean()), 0.05 * var)
    ll_old = -np.inf
    it = -1
    for it in range(iters):
        v = tau2 + noise
        d0, d1 = (k - mu0) ** 2 / v, (k - mu0 - s) ** 2 / v
        l0 = np.log1p(-f) - (nu + 1) / 2 * np.log1p(d0 / nu)
        l1 = np.log(f) - (nu + 1) / 2 * np.log1p(d1 / nu)
        r = 1.0 / (1.0 + np.exp(np.clip(l0 - l1, -700, 700)))
        ll = float(np.sum(np.logaddexp(l0, l1) - 0.5 * np.log(v)))
        u0, u1 = (nu + 1) / (nu + d0), (nu + 1) / (nu + d1)
        f_new = float(r.mean())
        if not 0 < f_new < 1:
            break
        w0, w1 = (1 - r) * u0 / v, r * u1 / v
        a, b = w0.sum() + w1.sum(), w1.sum()
        det = a * b - b * b
        if not det > 0:
            break
        y0, y1 = (w0 * k).sum() + (w1 * k).sum(), (w1 * k).sum()
        f, mu0, s = f_new, float((b * y0 - b * y1) / det), float((a * y1 - b * y0) / det)
        e2 = (1 - r) * u0 * (k - mu0) ** 2 + r * u1 * (k - mu0 - s) ** 2
        tau2 = _variance_step(tau2, e2, noise, var)
        if abs(ll - ll_old) <= 1e-9 * abs(ll):
            break
        ll_old = ll
    ok = 0 < f < 1 and s > 0
    return {"f": f, "s": float(s), "mu0": float(mu0), "tau2": tau2, "iterations": it + 1, "nu": float(nu),
            "loglik": _t_mixture_loglik(k, tau2 + noise, f, mu0, s, nu) if ok else -np.inf}


# degrees of freedom tried for the t mixture (``mixture_nu=None``, the default): the one of largest likelihood;
# 50 is close to the Gaussian mixture, 3-6 are the heavy tails the benchmark's full microscope gives (fitted 6-20)
MIXTURE_NU_GRID = (3.0, 4.0, 6.0, 8.0, 12.0, 20.0, 50.0)
MIXTURE_NU: float | None = None


def _struck_t_fit(k: np.ndarray, noise: np.ndarray, f0: float, s0: float, nu: float | None) -> dict[str, float]:
    """The best (likelihood) t-mixture fit from three starts (the moment estimate's ``f0, s0``, and 0.1 / 0.3
    with the 85th-percentile spread: a start near f = 0 can stay there), for ``nu`` or, when None, over
    ``MIXTURE_NU_GRID``, each run to convergence (screening the starts by 40 EM steps and continuing the best two
    changed the weakest cases: seed 20 at strength 0.03 read -0.50 instead of -0.14)."""
    spread = float(np.percentile(k, 85) - np.median(k))
    starts = [(f0, s0), (0.3, spread), (0.1, 2 * spread)]
    fits = [_struck_t_mixture(k, noise, fs, ss, n_)
            for n_ in ((nu,) if nu is not None else MIXTURE_NU_GRID) for fs, ss in starts]
    return max(fits, key=lambda m: m["loglik"])


def _single_t_loglik(k: np.ndarray, noise: np.ndarray, nu: float, iters: int = 200) -> float:
    """Largest log-likelihood of ``k ~ t_nu(mu, tau2 + noise)`` (one component: no struck lines), by the same
    EM (latent precision weights; tau2 by :func:`_variance_step`)."""
    from scipy import special

    mu, var = float(np.median(k)), float(k.var()) + 1e-30
    tau2 = max(var - float(noise.mean()), 0.05 * var)
    for _ in range(iters):
        v = tau2 + noise
        u = (nu + 1) / (nu + (k - mu) ** 2 / v)
        mu_new = float((u * k / v).sum() / (u / v).sum())
        tau2 = _variance_step(tau2, u * (k - mu_new) ** 2, noise, var)
        done = abs(mu_new - mu) <= 1e-12 * (abs(mu) + 1e-9)
        mu = mu_new
        if done:
            break
    v = tau2 + noise
    c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
    return float(np.sum(c - 0.5 * np.log(v) - (nu + 1) / 2 * np.log1p((k - mu) ** 2 / (nu * v))))


def _charging_epoxy(x: np.ndarray, margin_px: int = 3, remove_columns: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The dark phase that charges (:func:`_midlevel_dark`, classified again without the column profile when
    ``remove_columns``: curtains tip the classification of columns) and the relative phase contrast (z, y).

    ``x`` is held (float64), so its smoothed slices are too (one more stack, for two of the classification's three
    readings of each slice; the band thresholds' ranges and counts from one call per band): the numbers of the
    slice-by-slice code (micro15) with ~0.65 of its CPU (micro16)."""
    foot = np.ones((2 * margin_px + 1,), bool)
    sm = np.stack([_smoothed(x[k]) for k in range(x.shape[0])]) if x.shape[0] else np.empty(x.shape)
    classes = _BandClasses(x.__getitem__, x.shape[0], x.shape[1:], 12, 1, smooth=sm)
    if not remove_columns:
        return _midlevel_dark(x, classes, smoothed=sm)
    # the dark phase's cores along x (the foot runs along x only: each line eroded alone)
    core = np.stack([ndimage.binary_erosion(~classes(k), foot[None]) for k in range(x.shape[0])])
    del sm, classes
    xc = x - _epoxy_column_profile(x, core)[:, None, :]
    sm = np.stack([_smoothed(xc[k]) for k in range(xc.shape[0])]) if xc.shape[0] else np.empty(xc.shape)
    return _midlevel_dark(xc, _BandClasses(xc.__getitem__, xc.shape[0], xc.shape[1:], 12, 1, smooth=sm),
                          smoothed=sm)


def charging_line_variance(stack: Any, charging: dict[str, Any]) -> np.ndarray:
    """Per slice, the mean over the pixels of the variance that charging streaks (:func:`charging_streaks`'
    ``strength``, ``line_fraction``, ``length_px``) add *from line to line*: a line is struck or not at random, so
    the charge is, besides its mean ``f s c_f``, a component white along y of variance ``f (1 - f) (s c_f)^2``
    (``c_f`` the charge state of the slice's own epoxy, ``s`` scaled by the phase contrast of the row). Zero when
    the charging is not flagged present."""
    from scipy import signal

    x = _stack(stack, "stack")
    cf = _charge_state(x, charging)
    if cf is None:
        return np.zeros(x.shape[0])
    f, s = float(charging["line_fraction"]), float(charging["strength"])
    return f * (1 - f) * s * s * (cf ** 2).mean((1, 2))


def _charge_state(x: np.ndarray, charging: dict[str, Any]) -> np.ndarray | None:
    """The charge state ``c_f`` of every pixel (the epoxy filtered by the causal exponential of the measured
    length) times the relative phase contrast of its row, or None when ``charging`` is not flagged present."""
    from scipy import signal

    f, s = float(charging.get("line_fraction", 0.0)), float(charging.get("strength", 0.0))
    if not charging.get("present") or not s > 0 or not 0 < f < 1:
        return None
    epoxy, rel = _charging_epoxy(x)
    r = float(np.exp(-1.0 / float(charging["length_px"])))
    return rel[:, :, None] * signal.lfilter([1 - r], [1, -r], epoxy.astype(np.float64), axis=2)


PRESENT_STANDARD_ERRORS = 8.0
# likelihood-ratio presence (the t mixture against one t component, nu from MIXTURE_NU_GRID for both): charging is
# also flagged present when 2 (ll_mixture - ll_one) exceeds PRESENT_LR and the moment statistic exceeds
# PRESENT_LR_STANDARD_ERRORS (its sign says the struck lines are brighter along the scan, not a structure tail).
# Calibration (docs/microscope.md, eighth round): without charging 2 dLL <= 7.1 and z <= 2.5 (20 stacks); at
# strength 0.05 2 dLL 10.5-54 with z 3.6-14.7
PRESENT_LR = 12.0
PRESENT_LR_STANDARD_ERRORS = 3.0
# the struck and unstruck lines' slopes must lie this many (structure + noise) sd apart for the mixture to tell f
# from s: measured 2.8-3.0 where the fraction came back within 15 % (strength 0.1, 5 seeds), 1.0-1.7 where it read
# 40-99 % low (strength 0.05); over strengths 0.05-0.1 x 10 seeds it flagged 24 of 50 stacks, one of them 25 % low
# (a blurry stack at 2.27 sd), and left 8 good ones (1.6-2.1 sd) unflagged (docs/microscope.md, detection limit).
# With the t mixture (seventh round; separation = s over its scale) the flag is conservative: at strength 0.05 it
# flagged none of the 8 of 10 fractions within 20 % (separation 1.1-1.9); not recalibrated
RELIABLE_SEPARATION = 2.0
# build-up lengths tried (px): a geometric grid, 20 % apart (the earlier 5/8/12/18/27/40 bracketed 15 by 12 and
# 18, and the struck fraction moves by ~10 % between neighbouring lengths)
CHARGING_LENGTHS = tuple(float(v) for v in np.round(5.0 * 1.2 ** np.arange(13), 1))


def charging_streaks(stack: Any, *, lengths: tuple[float, ...] = CHARGING_LENGTHS, margin_px: int = 3,
                     remove_columns: bool = True, mixture_nu: float | None = MIXTURE_NU) -> dict[str, Any]:
    """Charging streaks in the dark phase: strength (stack units), fraction of struck scan lines and build-up length.

    The forward model's charge builds up while the beam scans epoxy along x (``c_f``: the epoxy mask filtered by a
    causal exponential of length L) and brightens the struck lines by ``strength * c_f``. For each line the epoxy
    pixels at least ``margin_px`` (3) from the bright phase (Euclidean, in the slice: pixels just above or below a
    gold feature carry its blurred edge, and with an x-only margin they made the per-line slopes' structure
    scatter twice the noise's) are regressed on ``c_f`` and, as a control, on ``c_r``, the same filter run against
    the scan direction: structure, blur and curtains are statistically the same both ways, charging is not. The
    epoxy is the dark side of the midway iso-level of each band of rows (:func:`_midlevel_dark`).

    **Struck fraction and strength** (``line_fraction``, ``strength``): a two-component mixture of the lines'
    slopes ``k_f`` (unstruck at ``mu0``, struck at ``mu0 + s``, a common squared scale = the structure's share,
    fitted, + each line's pixel-noise share, known), fitted by EM. The components are Student-t
    (``mixture_nu`` degrees of freedom; None, the default: the one of ``MIXTURE_NU_GRID`` with the largest
    likelihood, each fitted from three starts; ``inf``: the Gaussian mixture used before): the unstruck lines'
    slopes are heavy-tailed (a few lines cross much more blurred edge or mask error than the rest), and a
    Gaussian mixture explained that tail by a small struck fraction far out, so that weak charging read 30-60 %
    low (strength 0.05-0.06 on the benchmark's full microscope; docs/microscope.md). The slopes are first
    divided by the phase contrast of their slice and row (shading, beam-current drift), so that a struck line's ``s`` is the same
    everywhere. Its location ``mu0`` is free: the mean over lines of the structure's slope asymmetry between
    ``c_f`` and ``c_r`` is not zero for one stack (neighbouring lines cross the same features) and was, through
    the difference of the means and variances of ``k_f`` and ``k_r`` that this estimator used before (kept as
    ``f_s``, ``f_1mf_s2`` and ``line_fraction_moments``), the main cause of the struck fraction's +-25 % scatter
    between seeds (docs/microscope.md); the mixture rests on the two modes' separation instead, reported as
    ``separation`` (``s`` over the lines' sd or t scale); ``fraction_reliable``: present and ``separation`` >= 2
    (calibrated on the Gaussian mixture, whose fraction read 40-99 % low at ~1-1.7 sd; with the t mixture the
    fraction holds within 20 % on most seeds down to ~1.1-1.9, so the flag is conservative).

    ``remove_columns`` (default) first subtracts each slice's column profile of the epoxy (curtains and tilt are
    column profiles and gave an x-asymmetric bias); its charging part ``f s m(x)`` (``m`` the column mean of
    ``c_f``) shifts every line alike, which ``mu0`` absorbs; for the moments its share is divided out.

    L: the length of ``lengths`` that maximises the mean over lines of the charge-explained sum of squares
    ``k_f**2 var(c_f) - k_r**2 var(c_r)`` (largest at the true L by Cauchy-Schwarz; the mixture's fraction moves
    by ~2 % between neighbouring lengths). ``present``: the moment estimate of ``f s`` (``f_s_detrended``), with
    each line's straight trend in x taken out of the pixels and of both filters (the tilt times the row-dependent
    shadow leaves such trends after the column profile; a trend reads as charging, and stacks without charging
    came out +2.7 standard errors on average), above ``PRESENT_STANDARD_ERRORS`` (8) naive standard errors of
    the mean slope difference (neighbouring lines cross the same features, so that standard error is too small:
    8 is empirical; on 10 fresh seeds of the benchmark's full microscope, 16 x 192 x 192, the ratio is 13-18
    with charging and -3..+4 without, docs/microscope.md); or, with the t mixture, its likelihood ratio against one t
    component (``presence_lr``) above ``PRESENT_LR`` (12) with that statistic above ``PRESENT_LR_STANDARD_ERRORS``
    (3) (``present_by``: ``"likelihood ratio"``; at strength 0.05 it detects 8 of 10 stacks where the moment alone
    detected 3, with no false alarm on 20 stacks without charging, docs/microscope.md). The phases are found per
    band of rows (strength well under the phase contrast)."""
    from scipy import signal

    if mixture_nu is not None and not mixture_nu > 0:
        raise FibsynthError(f"must be > 0 (inf: Gaussian components) or None (got {mixture_nu})", param="mixture_nu")
    x = _stack(stack, "stack").astype(np.float64)
    foot = np.ones((1, 1, 2 * margin_px + 1), bool)
    epoxy, rel = _charging_epoxy(x, margin_px, remove_columns)
    dist = np.stack([ndimage.distance_transform_edt(e) if e.any() else np.zeros(e.shape) for e in epoxy])
    core_b = ndimage.binary_erosion(epoxy, foot) & (dist >= margin_px)
    if remove_columns:
        x = x - _epoxy_column_profile(x, core_b)[:, None, :]
    core = core_b.astype(np.float64)
    n = core.sum(2)
    xt = _detrend_lines(x, core)

    def moments(xx: np.ndarray, cf: np.ndarray, cr: np.ndarray, cf0: np.ndarray, ok: np.ndarray) -> tuple:
        kf, kr = _row_slopes(xx, core, cf, ok), _row_slopes(xx, core, cr, ok)
        rho = _row_slopes(cf, core, cr, ok)
        den, den2 = max(1 - rho.mean(), 1e-3), max(1 - (rho ** 2).mean(), 1e-3)
        d = float((kf.mean() - kr.mean()) / den)
        v = float((kf.var() - kr.var()) / den2)
        se = float((kf - kr).std() / np.sqrt(len(kf)) / den)
        if remove_columns:  # the share of f s that the column profile took: m = column mean of c_f, f s m removed
            m = np.broadcast_to(_epoxy_column_profile(cf0, core_b)[:, None, :], x.shape)
            if xx is xt:
                m = _detrend_lines(m, core)
            al, bl = _row_slopes(m, core, cf, ok), _row_slopes(m, core, cr, ok)
            kept = max(1.0 - float(al.mean() - bl.mean()) / den, 0.2)
            d, se = d / kept, se / kept
            v = v - d * d * float(al.var() - bl.var()) / den2
        return d, v, se, kf, kr

    rows = []
    for L in lengths:
        r = float(np.exp(-1.0 / L))
        cf = signal.lfilter([1 - r], [1, -r], epoxy.astype(np.float64), axis=2)
        cr = signal.lfilter([1 - r], [1, -r], epoxy[:, :, ::-1].astype(np.float64), axis=2)[:, :, ::-1]
        var_f = (core * cf * cf).sum(2) - (core * cf).sum(2) ** 2 / np.maximum(n, 1)
        var_r = (core * cr * cr).sum(2) - (core * cr).sum(2) ** 2 / np.maximum(n, 1)
        ok = (n >= 10) & (var_f > 1e-2 * np.maximum(n, 1)) & (var_r > 1e-2 * np.maximum(n, 1))
        if ok.sum() < 20:
            continue
        d, v, se, kf, kr = moments(x, cf, cr, cf, ok)
        explained = float(np.mean(kf ** 2 * var_f[ok] - kr ** 2 * var_r[ok]))
        rows.append((explained, d, v, float(L), int(ok.sum()), se, kf, var_f[ok], ok, cf, cr))
    if not rows:
        raise FibsynthError("too few scan lines cross the dark phase to measure charging", param="stack")
    _, d, v, L, lines, se, kf, var_f, ok, cf, cr = max(rows, key=lambda row: row[0])
    # presence: the same moment with each line's straight trend in x taken out of the pixels and of both filters
    # (the tilt times the row-dependent shadow leaves such trends after the column profile; a trend gives k_f > 0
    # and k_r < 0 and made stacks without charging read +2.7 standard errors on average, docs/microscope.md)
    dt, _, se = moments(xt, _detrend_lines(cf, core), _detrend_lines(cr, core), cf, ok)[:3]
    present = bool(dt > PRESENT_STANDARD_ERRORS * se)
    out = {"length_px": L, "lines": lines, "f_s": d, "f_1mf_s2": v, "f_s_detrended": dt, "f_s_error": se,
           "present": present,
           "line_fraction_moments": float(min(d * d / (v + d * d), 1.0)) if d > 0 and v > 0 else 0.0}
    if d <= 0:
        out.update(strength=0.0, line_fraction=0.0)
        return out
    scale = rel[ok]
    noise = _core_noise_var(x, core_b) / var_f / scale ** 2
    f0, s0 = (d * d / (v + d * d), v / d + d) if v > 0 else (0.3, 0.0)
    if mixture_nu is not None and not np.isfinite(mixture_nu):  # Gaussian components (the estimator before)
        mix = _struck_mixture(kf / scale, noise, f0, s0)
    else:
        mix = _struck_t_fit(kf / scale, noise, f0, s0, mixture_nu)
        if np.isfinite(mix["loglik"]):
            one = max(_single_t_loglik(kf / scale, noise, n_)
                      for n_ in ((mixture_nu,) if mixture_nu is not None else MIXTURE_NU_GRID))
            lr = float(2 * (mix["loglik"] - one))
            out["presence_lr"] = lr
            if not present and lr > PRESENT_LR and dt > PRESENT_LR_STANDARD_ERRORS * se:
                present = out["present"] = True
                out["present_by"] = "likelihood ratio"
    if not (mix["s"] > 0 and 0 < mix["f"] < 1):
        out.update(strength=0.0, line_fraction=0.0)
        return out
    sd = float(np.sqrt(mix["tau2"] + np.median(noise)))
    # structure_slope_sd: the structure's sd (Gaussian) or scale (t mixture) of the lines' slopes
    out.update(strength=mix["s"], line_fraction=mix["f"], structure_slope_sd=float(np.sqrt(mix["tau2"])),
               separation=float(mix["s"] / sd), mixture_iterations=mix["iterations"],
               mixture_nu=float(mix.get("nu", np.inf)),
               fraction_reliable=bool(present and mix["s"] / sd >= RELIABLE_SEPARATION))
    return out
