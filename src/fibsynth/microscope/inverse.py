"""Corrections for real FIB-SEM stacks: slice alignment, curtain removal, shading and brightness-drift correction,
denoising. Arrays in, arrays out; each returns what it measured or applied so that callers can record it.

Destriping is the combined wavelet-Fourier filter of B. Muench, P. Trtik, F. Marone and M. Stampanoni, "Stripe and
ring artifact removal with combined wavelet-Fourier filtering", Opt. Express 17 (2009) 8567-8591, implemented here
with a periodic orthonormal DWT (Daubechies-4 by default, or Haar) in numpy/scipy. The maintained Python destripers were checked and not used: pystack3d
is GPL-3.0 and pyvsnr AGPL-3.0 (fibsynth is Apache-2.0), and pyvsnr needs pyfftw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from fibsynth.errors import FibsynthError
from fibsynth.microscope.config import CorrectConfig
from fibsynth.microscope.forward import _Slices, _stack, read_once


def as_full_scale(stack: Any) -> np.ndarray:
    """A stack as float64: integer images divided by their type's maximum (so 8- and 16-bit stacks both read as
    full-scale units in [0, 1]); float images unchanged."""
    a = np.asarray(stack)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    return _stack(a, "stack")


# ------------------------------------------------------------------------------------------------ alignment

HIGHPASS_PX = 4.0


def _prepare_for_registration(img: np.ndarray, highpass_px: float | None = HIGHPASS_PX) -> np.ndarray:
    """High-pass and taper the edges (phase correlation of non-periodic images locks to zero).

    The high-pass subtracts a Gaussian blur of ``highpass_px`` (4 px; at most the field / 8): registration then
    rests on the edges' fine detail, which follows the drift, more than on the features' bulk, whose apparent
    motion between slices (slanted 3D features) is what the cumulative error is made of. Against the previous
    background-only high-pass (``highpass_px=None``: a blur of the field / 8), 5 seeds at 192 px, the mean
    error fell on every seed of both structures: leveled-wave 0.65 -> 0.54 px, band-pass field 0.46 -> 0.41 px
    (docs/microscope.md); at 96 px 1.16 -> 1.08 and 0.82 -> 0.81. The taper is a Tukey window flat over the
    inner 70 % (a square-root Hann window before: on 3D structures the flat window, which weighs more of the
    field, gave a smaller cumulative error)."""
    from scipy.signal.windows import tukey

    ny, nx = img.shape
    sigma = max(ny, nx) / 8.0 if highpass_px is None else min(float(highpass_px), max(ny, nx) / 8.0)
    hp = img - ndimage.gaussian_filter(img, sigma, mode="nearest")
    win = np.outer(tukey(ny, 0.3), tukey(nx, 0.3))
    return (hp - hp.mean()) * win


REGISTRATION_METHODS = ("chain", "neighbours", "template")


def upsampled_dft(spectrum: np.ndarray, size: int, upsample: float, offsets: Any) -> np.ndarray:
    """The inverse-direction DFT of a 2D ``spectrum`` evaluated on a ``size`` x ``size`` grid of points spaced
    ``1 / upsample`` apart, the grid's point (0, 0) at ``-offsets / upsample`` -- the matrix-multiply DFT of
    M. Guizar-Sicairos, S. T. Thurman and J. R. Fienup, "Efficient subpixel image registration algorithms", Opt.
    Lett. 33 (2008) 156-158: ``out[i, j] = sum_{k,l} spectrum[k, l] exp(-2 pi i ((i - o_0) f_k + (j - o_1) f_l))``
    with ``f = fftfreq(n, upsample)``, one kernel per axis (size x n), so that a small neighbourhood of a
    correlation peak is sampled at ``upsample`` times the pixel rate without zero-padding the whole array. The
    same operations, in the same order, as scikit-image's private ``_upsampled_dft`` (which ``_pcc`` used before),
    so that the shifts are unchanged."""
    from scipy.fft import fftfreq

    data = spectrum
    im2pi = 1j * 2 * np.pi
    for n, off in list(zip(spectrum.shape, offsets))[::-1]:  # the last axis first
        kernel = np.exp(-im2pi * ((np.arange(size) - off)[:, None] * fftfreq(n, upsample)))
        data = np.tensordot(kernel.astype(data.dtype, copy=False), data, axes=(1, -1))
    return data


def _pcc(ref: np.ndarray, moving: np.ndarray, upsample: int, search_px: float | None = None) -> np.ndarray:
    """The shift registering ``moving`` onto ``ref``: scikit-image's unnormalised cross-correlation with
    upsampled-DFT refinement; with ``search_px``, the whole-pixel peak is looked for only among shifts of at most
    that many pixels per axis, then refined the same way (:func:`upsampled_dft`; the same result whenever the
    global peak lies inside)."""
    if search_px is None:
        from skimage.registration import phase_cross_correlation

        step, _, _ = phase_cross_correlation(ref, moving, upsample_factor=upsample, normalization=None)
        return np.asarray(step, np.float64)
    from scipy.fft import fftn, ifftn

    product = fftn(ref) * fftn(moving).conj()
    cc = np.abs(ifftn(product))
    lags = [np.where(np.arange(n) > np.trunc(n / 2), np.arange(n) - n, np.arange(n)) for n in cc.shape]
    inside = (np.abs(lags[0])[:, None] <= search_px) & (np.abs(lags[1])[None, :] <= search_px)
    peak = np.unravel_index(np.argmax(np.where(inside, cc, -1.0)), cc.shape)
    shift = np.array([lags[0][peak[0]], lags[1][peak[1]]], np.float64)
    if upsample > 1:  # as phase_cross_correlation refines its peak
        up = float(upsample)
        shift = np.round(shift * up) / up
        size = np.ceil(up * 1.5)
        centre = np.trunc(size / 2.0)
        cc = upsampled_dft(product.conj(), int(size), up, centre - shift * up).conj()
        fine = np.unravel_index(np.argmax(np.abs(cc)), cc.shape)
        shift = shift + (np.array(fine, np.float64) - centre) / up
    return shift


MIN_REGION_PX = 8


def check_region(region: Any, shape: tuple[int, ...], param: str = "region") -> tuple[slice, slice]:
    """``region = (y0, y1, x0, x1)`` (pixels, half-open, like ``img[y0:y1, x0:x1]``) checked against a slice of
    ``shape`` (..., ny, nx): inside it and at least :data:`MIN_REGION_PX` pixels along each axis. Returns the
    two slices."""
    try:
        y0, y1, x0, x1 = (int(v) for v in region)
        if any(float(v) != int(v) for v in region):
            raise ValueError
    except (TypeError, ValueError):
        raise FibsynthError(f"expected four whole numbers (y0, y1, x0, x1), got {region!r}", param=param) from None
    ny, nx = shape[-2:]
    if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
        raise FibsynthError(f"rows {y0}:{y1}, columns {x0}:{x1} must lie inside the {ny} x {nx} slice "
                            f"(0 <= y0 < y1 <= {ny}, 0 <= x0 < x1 <= {nx})", param=param)
    if y1 - y0 < MIN_REGION_PX or x1 - x0 < MIN_REGION_PX:
        raise FibsynthError(f"{y1 - y0} x {x1 - x0} px is too small to register on (at least {MIN_REGION_PX} px "
                            "along each axis)", param=param)
    return slice(y0, y1), slice(x0, x1)


def parse_region(text: str, *, param: str = "region", expected: str = "Y0:Y1,X0:X1") -> tuple[int, int, int, int]:
    """``Y0:Y1,X0:X1`` (the command line's syntax of a region: rows, then columns, half-open) -> (y0, y1, x0, x1);
    a one-line error naming ``param`` otherwise (``expected``: what the message says was expected). Whether the
    rectangle fits a stack is :func:`check_region`'s."""
    try:
        ys, xs = text.strip().split(",")
        y0, y1 = (int(v) for v in ys.split(":"))
        x0, x1 = (int(v) for v in xs.split(":"))
    except ValueError:
        raise FibsynthError(f"expected {expected} (whole pixel numbers, e.g. 0:24,0:192), got {text!r}",
                            param=param) from None
    return y0, y1, x0, x1


def _window(crop: tuple[slice, slice], at: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The region ``crop`` (of slice 0) where it lies in a slice registered by ``at`` (its content sits at
    ``p - at``): moved by the whole pixels of ``-at``, kept inside the slice."""
    out = []
    for sl, a, n in zip(crop, at, shape[-2:]):
        lo = min(max(sl.start - int(np.rint(a)), 0), n - (sl.stop - sl.start))
        out.append(slice(lo, lo + sl.stop - sl.start))
    return out[0], out[1]


class SliceChain:
    """:func:`register_slices`' chain (``method="chain"``) fed a block of slices at a time: each slice registered
    onto the one before it, the steps summed. :meth:`add` takes the next slices (any array-like: a memory map or a
    dask array is read one slice at a time, each converted to float64 alone) and returns their cumulative (dy, dx)
    onto the first slice ever added; between calls the chain keeps only the last slice (prepared for
    registration, or as read when registering on a ``region``) and its running shift. Adding a stack in blocks
    gives exactly the shifts of adding it at once, which are exactly ``register_slices(stack, method="chain")``'s
    before detrending; a huge stack thus never needs to be in memory (two slices at a time). The keywords are
    :func:`register_slices`' (``search_px=None`` with a ``region``: a third of its shorter side)."""

    def __init__(self, *, upsample: int = 20, max_shift_px: float | None = None,
                 highpass_px: float | None = HIGHPASS_PX, region: Any = None, search_px: float | None = None):
        if upsample < 1:
            raise FibsynthError(f"must be >= 1 (got {upsample})", param="upsample")
        if highpass_px is not None and not highpass_px > 0:
            raise FibsynthError(f"must be > 0 (got {highpass_px})", param="highpass_px")
        if search_px is not None and not search_px >= 1:
            raise FibsynthError(f"must be >= 1 px (got {search_px})", param="search_px")
        self.upsample, self.max_shift_px, self.highpass_px = int(upsample), max_shift_px, highpass_px
        self.region, self.search_px = region, search_px
        self.crop: tuple[slice, slice] | None = None
        self.slice_shape: tuple[int, int] | None = None
        self.count = 0  # slices added so far
        self.shift = np.zeros(2)  # the cumulative shift of the last slice added
        self._last: np.ndarray | None = None

    def add(self, stack: Any) -> np.ndarray:
        """The cumulative (dy, dx) of the slices of ``stack`` (z, y, x), continuing the slices added before; shape
        (len(stack), 2)."""
        x = _Slices(stack, "stack")
        if self.slice_shape is None:
            self.slice_shape = x.shape[1:]
            if self.region is not None:
                self.crop = check_region(self.region, x.shape)
                if self.search_px is None:
                    self.search_px = min(self.crop[0].stop - self.crop[0].start,
                                         self.crop[1].stop - self.crop[1].start) / 3.0
        elif x.shape[1:] != self.slice_shape:
            raise FibsynthError(f"slices of {x.shape[1]} x {x.shape[2]} px do not continue a chain of "
                                f"{self.slice_shape[0]} x {self.slice_shape[1]} px slices", param="stack")
        out = np.empty((x.shape[0], 2))
        for k in range(x.shape[0]):
            img = x[k]
            if self.crop is None:  # the prepared slice is the next pair's reference
                cur = _prepare_for_registration(img, self.highpass_px)
                step = None if self._last is None else _pcc(self._last, cur, self.upsample, self.search_px)
            else:  # each pair cut where the region lies in the reference slice (whole-pixel tracking: the marks
                # stay in the window however far the stage drifts)
                cur = img
                step = None
                if self._last is not None:
                    win = _window(self.crop, self.shift, x.shape)
                    step = _pcc(_prepare_for_registration(self._last[win], self.highpass_px),
                                _prepare_for_registration(img[win], self.highpass_px), self.upsample, self.search_px)
            if step is not None:
                if self.max_shift_px is not None and np.hypot(*step) > self.max_shift_px:
                    step = np.zeros(2)
                self.shift = self.shift + step
            out[k] = self.shift
            self._last = cur
            self.count += 1
        return out


def _huber_path(nz: int, pairs: list[tuple[int, int]], meas: np.ndarray, iters: int = 10) -> np.ndarray:
    """Per-slice positions p (p[0] = 0) from pair measurements ``p[k] - p[i] = meas`` for pairs (i, k), by
    iteratively reweighted least squares with Huber weights on each pair's residual length (scale: 1.4826 x the
    median residual, at least 0.02 px; c = 1.345): a pair that disagrees with the others (a wrong peak) loses its
    weight, a step that every pair across it sees (a stage jump) is kept."""
    a = np.zeros((len(pairs), nz - 1))
    for r, (i, k) in enumerate(pairs):
        a[r, k - 1] = 1.0
        if i > 0:
            a[r, i - 1] = -1.0
    w = np.ones(len(pairs))
    p = np.zeros((nz - 1, 2))
    for _ in range(iters):
        sw = np.sqrt(w)[:, None]
        p = np.linalg.lstsq(a * sw, meas * sw, rcond=None)[0]
        res = np.hypot(*(a @ p - meas).T)
        scale = max(1.4826 * float(np.median(res)), 0.02)
        w_new = np.minimum(1.0, 1.345 * scale / np.maximum(res, 1e-12))
        if np.allclose(w_new, w, atol=1e-4):
            break
        w = w_new
    return np.vstack([np.zeros((1, 2)), p])


def register_slices(stack: Any, *, upsample: int = 20, max_shift_px: float | None = None,
                    detrend: bool = False, highpass_px: float | None = HIGHPASS_PX, method: str = "chain",
                    neighbours: int = 3, template_half_width: int = 3, region: Any = None,
                    search_px: float | None = None) -> np.ndarray:
    """Cumulative (dy, dx) that register every slice onto slice 0 (shape (nz, 2); row 0 is zero).

    ``region = (y0, y1, x0, x1)``: register on that rectangle of the slices only (``img[y0:y1, x0:x1]``, pixel
    coordinates of the stack as given; the shifts apply to the whole slice): a band that does not change from
    slice to slice -- fiducial marks milled into the protective cap or beside the volume -- measures the stage
    drift without the structure's apparent motion (docs/microscope.md, "alignment on fiducial marks"). Every
    method works on it, and the region follows the drift: each pair is cut where the region lies in the
    reference slice by the shifts found so far (whole pixels; the template's aligned slices are cut where it was
    drawn), so that the marks stay in the window however far the stage drifts. At least 8 px along each axis.

    ``search_px``: the largest shift per axis that a registration looks for (a step of the chain; for
    ``neighbours`` and ``template`` the correction to the chain's prediction). Default: unlimited on the whole
    image; with a ``region``, a third of its shorter side -- marks repeated along the band (a row of X's)
    correlate as well at multiples of their spacing, and at low dose the noise picks one of those peaks (48 and
    96 px steps at 20 e/px on the benchmark's band, every 48 px). A larger stage jump needs a larger value.

    ``method="chain"`` (default): each slice is registered onto the one before it by cross-correlation with
    sub-pixel refinement (scikit-image ``phase_cross_correlation`` without phase normalisation, which is more
    robust to shot noise; precision ``1/upsample`` px) after a high-pass (``highpass_px``, see
    :func:`_prepare_for_registration`) and tapering the edges, and the steps are summed. A step longer than
    ``max_shift_px`` is taken as a failed registration and set to zero.

    ``method="neighbours"``: besides the chain's steps, every slice k is registered onto the slices k - 2 ..
    k - ``neighbours`` (each pair first moved by the chain's prediction, so that the peak is searched near it;
    a residual longer than ``max_shift_px`` drops the pair), and the per-slice shifts are the robust (Huber)
    least-squares solution of the over-determined system (:func:`_huber_path`). It averages the registration's
    own (noise) error over the pairs: on a structure that does not change along z with strong shot noise it
    roughly halves the chain's cumulative error (tests). Stage jumps are kept (every pair across one sees it).

    ``method="template"``: the running multi-slice reference of AMST (Hennies et al., Sci. Rep. 10 (2020)):
    after the chain, each slice is registered onto the median of the chain-aligned slices k +- 1 ..
    ``template_half_width`` (itself excluded, so that it does not lock onto its own position), twice, and the
    result re-anchored at slice 0. Steps longer than ``max_shift_px`` from the chain's position are rejected
    (the chain's position kept).

    Slanted features of a 3D structure look like a shift between neighbouring slices; in a small field of view the
    sum of these apparent shifts grows over the stack like a random walk or a steady shear. No method here
    removes that part (the same slanted features are seen by every pair and by every template; docs/microscope.md
    gives the measured figures for the three methods). ``detrend=True`` removes the least-squares line through
    the cumulative shifts (kept zero at slice 0): only when the stage is known not to drift steadily, since a real
    linear drift goes with it."""
    x = _Slices(stack, "stack")  # read one slice at a time (no float64 copy of the whole stack)
    if method not in REGISTRATION_METHODS:
        raise FibsynthError(f"unknown method {method!r}; expected one of {', '.join(REGISTRATION_METHODS)}",
                            param="method")
    if neighbours < 1:
        raise FibsynthError(f"must be >= 1 (got {neighbours})", param="neighbours")
    if template_half_width < 1:
        raise FibsynthError(f"must be >= 1 (got {template_half_width})", param="template_half_width")
    chain = SliceChain(upsample=upsample, max_shift_px=max_shift_px, highpass_px=highpass_px, region=region,
                       search_px=search_px)
    nz = x.shape[0]
    total = chain.add(x)
    crop, search_px = chain.crop, chain.search_px

    def cut(img: np.ndarray, at: np.ndarray) -> np.ndarray:  # the region where it lies in a slice registered by at
        return img if crop is None else img[_window(crop, at, x.shape)]

    if method == "neighbours" and nz > 2 and neighbours > 1:
        pairs = [(k - 1, k) for k in range(1, nz)]
        meas = list(np.diff(total, axis=0))
        prepared: dict[int, np.ndarray] = {}  # the references k - neighbours .. k - 2 only
        for k in range(2, nz):
            prepared = {i: v for i, v in prepared.items() if i >= k - neighbours}
            prepared.setdefault(k - 2, _prepare_for_registration(cut(x[k - 2], total[k - 2]), highpass_px))
            img = x[k]
            for j in range(2, min(neighbours, k) + 1):
                pred = total[k] - total[k - j]
                moved = _prepare_for_registration(cut(ndimage.shift(img, pred, order=3, mode="nearest"),
                                                      total[k - j]), highpass_px)
                r = _pcc(prepared[k - j], moved, upsample, search_px)
                if max_shift_px is not None and np.hypot(*r) > max_shift_px:
                    continue
                pairs.append((k - j, k))
                meas.append(pred + r)
        total = _huber_path(nz, pairs, np.array(meas))
    elif method == "template" and nz > 2:
        for _ in range(2):
            # the chain-aligned slices k - w .. k + w only (read, converted and moved one at a time, each once
            # per sweep; registered onto slice 0, the region lies where it was drawn): no aligned copy of the stack
            window: dict[int, np.ndarray] = {}

            def aligned(j: int) -> np.ndarray:
                if j not in window:
                    img = x[j]
                    a = ndimage.shift(img, total[j], order=3, mode="nearest") if total[j].any() else img
                    window[j] = a if crop is None else a[crop]
                return window[j]

            new = total.copy()
            for k in range(nz):
                idx = [j for j in range(max(0, k - template_half_width), min(nz, k + template_half_width + 1))
                       if j != k]
                for j in [j for j in window if j < idx[0]]:
                    del window[j]
                ref = _prepare_for_registration(np.median(np.stack([aligned(j) for j in idx]), axis=0), highpass_px)
                moved = _prepare_for_registration(aligned(k), highpass_px)
                r = _pcc(ref, moved, upsample, search_px)
                if max_shift_px is None or np.hypot(*r) <= max_shift_px:
                    new[k] = total[k] + r
            total = new - new[0]
    if detrend and nz > 2:
        t = np.arange(nz, dtype=np.float64)
        total = total - np.outer(t, (t @ total) / (t @ t))
    return total


def _output(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``out`` checked (a float64 array of ``shape``: the stack a correction writes slice by slice; it may be the
    stack read, each slice being read before it is written), or a new one."""
    if out is None:
        return np.empty(shape, np.float64)
    if not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != tuple(shape):
        raise FibsynthError(f"expected a float64 array of shape {tuple(shape)}, got "
                            f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}", param="out")
    return out


def shift_slices(stack: Any, shifts: Any, *, order: int = 3, out: np.ndarray | None = None) -> np.ndarray:
    """Move slice k by ``shifts[k]`` (dy, dx) pixels (spline interpolation of ``order``; edges repeat). ``out``: a
    float64 array of the stack's shape to write into (it may be ``stack`` itself)."""
    x = _Slices(stack, "stack")  # one slice converted at a time: the float64 output is the only whole-stack copy
    s = np.asarray(shifts, np.float64)
    if s.shape != (x.shape[0], 2):
        raise FibsynthError(f"expected shape ({x.shape[0]}, 2), got {s.shape}", param="shifts")
    out = _output(out, x.shape)
    for k in range(x.shape[0]):
        img = x[k]
        out[k] = ndimage.shift(img, s[k], order=order, mode="nearest") if s[k].any() else img
    return out


def align(stack: Any, *, upsample: int = 20, max_shift_px: float | None = None,
          detrend: bool = False, highpass_px: float | None = HIGHPASS_PX, method: str = "chain",
          neighbours: int = 3, template_half_width: int = 3, region: Any = None,
          search_px: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Aligned stack and the cumulative shifts applied to each slice (see :func:`register_slices`; ``region``
    registers on a fiducial rectangle only, the whole slices are moved)."""
    shifts = register_slices(stack, upsample=upsample, max_shift_px=max_shift_px, detrend=detrend,
                             highpass_px=highpass_px, method=method, neighbours=neighbours,
                             template_half_width=template_half_width, region=region, search_px=search_px)
    return shift_slices(stack, shifts), shifts


# ------------------------------------------------------------------------------------------------ destriping

# Daubechies wavelet with 4 vanishing moments (8 taps, "db4"): scaling filter, checked orthonormal in the tests
_DB4 = np.array([0.23037781330885523, 0.7148465705525415, 0.6308807679295904, -0.02798376941698385,
                 -0.18703481171888114, 0.030841381835986965, 0.032883011666982945, -0.010597401784997278])
_HAAR = np.array([1.0, 1.0]) / np.sqrt(2)
WAVELETS = {"db4": _DB4, "haar": _HAAR}


def _qmf(h: np.ndarray) -> np.ndarray:
    return np.array([(-1) ** k * h[len(h) - 1 - k] for k in range(len(h))])


# lines of a 2D array filtered together (ndimage filters each line alone, so the blocks give the same values as
# the whole array; they bound the full-length scratch of the filters at ~0.5 MB instead of a copy of the array)
_BLOCK_VALUES = 1 << 16


def _line_blocks(shape: tuple[int, ...], axis: int) -> list[tuple[slice, slice]]:
    """Index tuples of blocks of whole lines along ``axis`` (0 or 1) of a 2D array of ``shape``."""
    other = 1 - axis
    step = max(1, _BLOCK_VALUES // max(shape[axis], 1))
    out = []
    for c0 in range(0, shape[other], step):
        blk = [slice(None)] * 2
        blk[other] = slice(c0, c0 + step)
        out.append(tuple(blk))
    return out


def _every_other(axis: int) -> tuple[slice, slice]:
    sl = [slice(None)] * 2
    sl[axis] = slice(0, None, 2)
    return tuple(sl)


def _analysis(a: np.ndarray, h: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Periodic orthogonal DWT along ``axis`` of a 2D array: (low, high), each half as long (new arrays, filtered in
    blocks of lines: :data:`_BLOCK_VALUES`)."""
    g = _qmf(h)
    o = -(len(h) // 2)  # lo[i] = sum_k h[k] a[i + k] (periodic)
    shape = list(a.shape)
    shape[axis] = (shape[axis] + 1) // 2
    lo, hi = np.empty(shape), np.empty(shape)
    ev = _every_other(axis)
    for blk in _line_blocks(a.shape, axis):
        lo[blk] = ndimage.correlate1d(a[blk], h, axis=axis, mode="wrap", origin=o)[ev]
        hi[blk] = ndimage.correlate1d(a[blk], g, axis=axis, mode="wrap", origin=o)[ev]
    return lo, hi


def _synthesis(lo: np.ndarray, hi: np.ndarray, h: np.ndarray, axis: int) -> np.ndarray:
    """Inverse of :func:`_analysis` (in blocks of lines)."""
    g = _qmf(h)
    o = -(len(h) // 2)  # a[i] = sum_k h[k] ulo[i - k] + g[k] uhi[i - k] (periodic)
    shape = list(lo.shape)
    shape[axis] *= 2
    out = np.empty(shape)
    ev = _every_other(axis)
    for blk in _line_blocks(tuple(shape), axis):
        bs = list(lo[blk].shape)
        bs[axis] *= 2
        ulo, uhi = np.zeros(bs), np.zeros(bs)
        ulo[ev], uhi[ev] = lo[blk], hi[blk]
        r = ndimage.convolve1d(ulo, h, axis=axis, mode="wrap", origin=o)
        r += ndimage.convolve1d(uhi, g, axis=axis, mode="wrap", origin=o)
        out[blk] = r
    return out


def _dwt2(a: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One level of a periodic orthonormal 2D DWT: (approximation, horizontal, vertical, diagonal details).
    Vertical details are high-pass along x and low-pass along y: vertical stripes land there."""
    lo_y, hi_y = _analysis(a, h, 0)
    ca, cv = _analysis(lo_y, h, 1)
    del lo_y
    ch, cd = _analysis(hi_y, h, 1)
    return ca, ch, cv, cd


def _idwt2(ca: np.ndarray, ch: np.ndarray, cv: np.ndarray, cd: np.ndarray, h: np.ndarray) -> np.ndarray:
    return _synthesis(_synthesis(ca, cv, h, 1), _synthesis(ch, cd, h, 1), h, 0)


def _haar2(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _dwt2(a, _HAAR)


def _ihaar2(ca: np.ndarray, ch: np.ndarray, cv: np.ndarray, cd: np.ndarray) -> np.ndarray:
    return _idwt2(ca, ch, cv, cd, _HAAR)


def auto_levels(ny: int, nx: int, max_width_px: float | None = None) -> int:
    """Wavelet levels for destriping: down to two or three rows of coefficients, ``ceil(log2(min(ny, nx))) - 1``
    (6 for 96 px, 7 for 192 or 256 px, 9 for 1024 px), or enough for stripes up to ``max_width_px`` wide
    (``ceil(log2(max_width_px))``) when that is given and smaller.

    A random stripe pattern has broad components that only the coarse levels reach (16 x 192 x 192 stack, db4:
    5 levels removed 79 % / 51 % of the power of 2-px / 6-px stripes, 7 levels 99.6 % / 98.9 %), but a structure
    that runs along y over the whole face is a stripe too: 7 levels moved the interface of a vertical SOFC layer by
    10.4 px, 5 levels by 0.03-0.09 px but left 38 % of the power of broad curtains; :func:`destripe` therefore uses
    the phase method (:func:`destripe_phase_slice`) when :func:`runs_along_y` finds such a layer."""
    by_size = int(np.ceil(np.log2(max(min(ny, nx), 2)))) - 1
    if max_width_px is not None:
        by_size = min(by_size, int(np.ceil(np.log2(max(float(max_width_px), 2.0)))))
    return int(min(10, max(1, by_size)))


def destripe_slice(img: Any, *, levels: int | None = None, sigma: float = 1.0, wavelet: str = "db4") -> np.ndarray:
    """Remove vertical stripes (constant along y) from one image by the wavelet-Fourier filter of Muench et al.
    (2009): at each of ``levels`` wavelet levels, the vertical-detail coefficients are Fourier transformed along y
    and damped by ``1 - exp(-k_y**2 / (2 sigma**2))`` (k_y in frequency-index units), then the image is
    reconstructed. ``wavelet`` is ``db4`` (Daubechies, 8 taps; default) or ``haar`` (blocky: its coarse levels leave
    piecewise-constant vertical bands). The image is mirrored in both directions (so that the periodic transforms
    see no edge), padded to a multiple of ``2**levels`` and cropped back; ``levels=None`` is :func:`auto_levels`.

    Scratch: about twice the mirrored work image (4x the image) at its peak, filters and Fourier transforms run in
    blocks of lines, every intermediate released when used (micro15; was ~8x the work image, 264 MB at 1024^2,
    now ~64 MB; the same values bit for bit)."""
    a = np.asarray(img, np.float64)
    if a.ndim != 2:
        raise FibsynthError(f"expected a 2D image, got shape {a.shape}", param="img")
    if levels is None:
        levels = auto_levels(*a.shape)
    if not 1 <= levels <= 10:
        raise FibsynthError(f"must be in 1..10 (got {levels})", param="levels")
    if not sigma > 0:
        raise FibsynthError(f"must be > 0 (got {sigma})", param="sigma")
    if wavelet not in WAVELETS:
        raise FibsynthError(f"unknown wavelet {wavelet!r}; one of {', '.join(WAVELETS)}", param="wavelet")
    h = WAVELETS[wavelet]
    ny, nx = a.shape
    m = 2 ** levels
    # the image mirrored down and across, wrapped on to a multiple of m: one gather, no intermediate copies
    iy, ix = np.arange(2 * ny + (-2 * ny) % m) % (2 * ny), np.arange(2 * nx + (-2 * nx) % m) % (2 * nx)
    iy, ix = np.where(iy < ny, iy, 2 * ny - 1 - iy), np.where(ix < nx, ix, 2 * nx - 1 - ix)
    ca = a[iy[:, None], ix[None, :]]
    details = []
    for _ in range(levels):
        lo_y, hi_y = _analysis(ca, h, 0)
        del ca
        ca, cv = _analysis(lo_y, h, 1)
        del lo_y
        ch, cd = _analysis(hi_y, h, 1)
        del hi_y
        n = cv.shape[0]
        k = np.fft.fftfreq(n) * n
        damp = 1.0 - np.exp(-(k ** 2) / (2.0 * sigma ** 2))
        for blk in _line_blocks(cv.shape, 0):  # column by column: the same values as the whole array's
            cv[blk] = np.fft.ifft(np.fft.fft(cv[blk], axis=0) * damp[:, None], axis=0).real
        details.append((ch, cv, cd))
        del ch, cv, cd
    while details:
        ch, cv, cd = details.pop()
        lo = _synthesis(ca, cv, h, 1)
        del ca, cv
        hi = _synthesis(ch, cd, h, 1)
        del ch, cd
        ca = _synthesis(lo, hi, h, 0)
        del lo, hi
    return ca[:ny, :nx]


def column_phase_range(stack: Any, *, smooth_px: float = 8.0) -> float:
    """Median over slices of the range of the smoothed column means of the phase map (see :func:`runs_along_y`)."""
    from skimage.filters import threshold_otsu

    r = []
    for img in _Slices(stack, "stack"):  # one slice at a time
        s = ndimage.gaussian_filter(img, 1.0)
        if s.max() > s.min():
            r.append(float(np.ptp(ndimage.gaussian_filter1d((s > threshold_otsu(s)).mean(0), smooth_px,
                                                            mode="nearest"))))
    return float(np.median(r)) if r else 0.0


def runs_along_y(stack: Any, *, smooth_px: float = 8.0, jump: float = 0.6) -> bool:
    """Whether a two-phase stack holds structure that runs along y over the whole face (a layer whose interface
    crosses the face from top to bottom), which any destriper takes for a stripe.

    Each slice is split into its two phases (Otsu on a copy smoothed by 1 px); the column means of the phase map
    (0 / 1), smoothed along x by ``smooth_px`` (narrow curtains that flip the phase of some columns are averaged
    away), change by more than ``jump`` within the slice only where one phase fills most of the columns on one
    side and the other phase most of them on the other: a layer. A random network's column means stay near its
    solid fraction. The median over the slices decides."""
    return column_phase_range(stack, smooth_px=smooth_px) > jump


LAYERED_LEVELS = 5
DESTRIPE_METHODS = ("auto", "wavelet", "phase")


def _phase_level_model(img: np.ndarray, bright: np.ndarray, core: np.ndarray, tilt_iters: int = 2) -> np.ndarray:
    """Noise- and stripe-free look of a two-phase image: each phase's level a quadratic in y (the trench shadow),
    both multiplied by a shared left-right tilt ``1 + t (x/(nx-1) - 1/2)`` (fitted by alternating least squares on the
    ``core`` pixels, away from the phase boundaries). No other x dependence: anything else that varies along x and
    not along y is left in the residual, where the column profile picks it up."""
    ny, nx = img.shape
    y = np.broadcast_to(np.linspace(-0.5, 0.5, ny)[:, None], img.shape)
    xn = np.broadcast_to(np.linspace(-0.5, 0.5, nx)[None, :], img.shape)
    t = 0.0
    level = np.zeros_like(img)
    for it in range(tilt_iters + 1):
        f = img / (1.0 + t * xn)
        level = np.zeros_like(img)
        for phase in (False, True):
            sel = bright == phase
            fit_on = core & sel
            if fit_on.sum() < 20:
                fit_on = sel
            if not fit_on.any():
                continue
            yc = y[fit_on]
            coef, *_ = np.linalg.lstsq(np.stack([np.ones_like(yc), yc, yc * yc], 1), f[fit_on], rcond=None)
            ys = y[sel]
            level[sel] = np.stack([np.ones_like(ys), ys, ys * ys], 1) @ coef
        if it < tilt_iters:
            a = (level * xn)[core]
            t = float(a @ (img - level)[core] / max(float(a @ a), 1e-12))
    return level * (1.0 + t * xn)


def phase_stripe_profile(img: Any, guide: Any | None = None, *, edge_px: int = 2, min_rows: float = 0.1) -> np.ndarray:
    """Curtain profile (nx,) of one two-phase image, zero mean: the median over the rows of the residual left
    after a phase-level model.

    The phases are split by Otsu on ``guide`` (default the image) smoothed by 1 px; each phase's level is fitted
    (:func:`_phase_level_model`: shadow along y, tilt along x); pixels within ``edge_px`` of a phase boundary are
    left out (blurred edges); the median over the remaining rows of ``image - level`` in each column is that
    column's stripe value. Columns with fewer than ``min_rows`` of the rows left (an interface that runs down the
    whole face) are interpolated from their neighbours, so that a layer is never taken for a stripe."""
    from skimage.filters import threshold_otsu

    a = np.asarray(img, np.float64)
    g = a if guide is None else np.asarray(guide, np.float64)
    ny, nx = a.shape
    sm = ndimage.gaussian_filter(g, 1.0)
    if not sm.max() > sm.min():
        return np.zeros(nx)
    bright = sm > threshold_otsu(sm)
    edge = (ndimage.binary_dilation(bright, iterations=edge_px)
            & ndimage.binary_dilation(~bright, iterations=edge_px)) if edge_px > 0 else np.zeros_like(bright)
    resid = np.where(edge, np.nan, a - _phase_level_model(a, bright, ~edge))
    ok = (~edge).sum(0) >= max(3, min_rows * ny)
    if not ok.any():
        return np.zeros(nx)
    idx = np.arange(nx)
    prof = np.interp(idx, idx[ok], np.nanmedian(resid[:, ok], 0))
    return prof - prof.mean()


def destripe_phase_slice(img: Any, *, iters: int = 3, init_levels: int = LAYERED_LEVELS, edge_px: int = 2,
                         min_rows: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Remove vertical stripes from one two-phase image by subtracting a column profile measured on the residual
    of a phase-level model (:func:`phase_stripe_profile`); returns the image and the profile (nx,).

    Strong curtains can push pixels across the phase threshold; the phases are therefore first found on a copy
    destriped by the wavelet filter with ``init_levels`` (safe for layers), and the split is redone ``iters`` times
    on the image minus the last profile. The profile is measured on the original image each time."""
    a = np.asarray(img, np.float64)
    if a.ndim != 2:
        raise FibsynthError(f"expected a 2D image, got shape {a.shape}", param="img")
    if iters < 1:
        raise FibsynthError(f"must be >= 1 (got {iters})", param="iters")
    guide = destripe_slice(a, levels=init_levels) if init_levels else a
    prof = np.zeros(a.shape[1])
    for _ in range(iters):
        prof = phase_stripe_profile(a, guide, edge_px=edge_px, min_rows=min_rows)
        guide = a - prof[None, :]
    return guide, prof


def destripe_method(stack: Any, *, levels: int | None = None, method: str = "auto") -> str:
    """The method :func:`destripe` uses on ``stack``: ``method`` itself, or for ``"auto"`` ``"phase"`` when
    ``levels`` is not given and :func:`runs_along_y` finds a layer crossing the face, else ``"wavelet"``. For a
    stack destriped block by block: decide on the whole stack (read one slice at a time), then pass the method to
    :func:`destripe` for each block."""
    if method not in DESTRIPE_METHODS:
        raise FibsynthError(f"unknown method {method!r}; one of {', '.join(DESTRIPE_METHODS)}", param="method")
    if method == "auto":
        return "phase" if levels is None and runs_along_y(stack) else "wavelet"
    return method


def destripe(stack: Any, *, levels: int | None = None, sigma: float = 1.0, wavelet: str = "db4",
             method: str = "auto", out: np.ndarray | None = None) -> np.ndarray:
    """Remove vertical curtain stripes from every slice of a (z, y, x) stack.

    ``method="wavelet"``: :func:`destripe_slice` (Muench et al. 2009), ``levels=None`` meaning :func:`auto_levels`
    of the slice size. ``method="phase"``: :func:`destripe_phase_slice`, the column profile of the residual of a
    two-phase level model (only for stacks of two gray phases; it removes broad curtains the wavelet filter cannot
    reach without flattening layers). ``method="auto"`` (default): the wavelet filter, except when
    :func:`runs_along_y` finds a phase layer crossing the face and ``levels`` is not given: then the phase method
    (the wavelet filter at 7 levels flattened a vertical SOFC layer by 10.4 px and at 5 levels left 38 % of the
    power of broad curtains; measured figures in docs/microscope.md). ``out``: a float64 array of the stack's shape
    to write into (it may be ``stack`` itself)."""
    x = _Slices(stack, "stack")  # read one slice at a time: the float64 output is the only whole-stack copy
    method = destripe_method(x, levels=levels, method=method)
    if method == "wavelet" and levels is None:
        levels = auto_levels(*x.shape[1:])
    out = _output(out, x.shape)
    for k, img in enumerate(x):
        out[k] = (destripe_phase_slice(img)[0] if method == "phase"
                  else destripe_slice(img, levels=levels, sigma=sigma, wavelet=wavelet))
    return out


# ------------------------------------------------------------------------------------------------ shading, drift

def _poly_design(ny: int, nx: int, degree: int) -> np.ndarray:
    yy, xx = np.mgrid[0:ny, 0:nx]
    yy = yy / max(ny - 1, 1) - 0.5
    xx = xx / max(nx - 1, 1) - 0.5
    cols = [yy ** i * xx ** j for i in range(degree + 1) for j in range(degree + 1 - i)]
    return np.stack([c.ravel() for c in cols], 1)


def shading_background(stack: Any, *, degree: int = 3, sigma_px: float | None = None) -> np.ndarray:
    """The stack's slow multiplicative background (ny, nx), normalised to mean 1: the mean over slices fitted by a
    2D polynomial of ``degree`` (default), or smoothed by a Gaussian of ``sigma_px`` when given. Reads ``stack``
    (any array-like: memory map, dask array) one slice at a time (the mean summed in slice order, as
    ``stack.mean(0)``: the same numbers)."""
    x = _Slices(stack, "stack")
    m = x[0]
    for k in range(1, x.shape[0]):
        m += x[k]
    m = m / x.shape[0]
    if sigma_px is not None:
        bg = ndimage.gaussian_filter(m, sigma_px, mode="nearest")
    else:
        A = _poly_design(*m.shape, degree)
        coef, *_ = np.linalg.lstsq(A, m.ravel(), rcond=None)
        bg = (A @ coef).reshape(m.shape)
    mean = bg.mean()
    if not mean > 0:
        raise FibsynthError("the stack's mean is not positive; shading correction needs a positive signal",
                            param="stack")
    return np.maximum(bg / mean, 1e-3)


class _Minus:
    """A stack read one slice at a time with ``offset`` subtracted (``_Slices(_Minus(x, off))[k]`` holds the values
    of ``(_stack(x) - off)[k]``): the signal above the black level without a whole-stack copy."""

    def __init__(self, x: _Slices, offset: float):
        self._x, self._off = x, offset
        self.shape, self.dtype = x.shape, np.dtype(np.float64)

    def __getitem__(self, k: int) -> np.ndarray:
        return self._x[k] - self._off


def correct_shading(stack: Any, *, method: str = "model", degree: int = 3, sigma_px: float | None = None,
                    dark_offset: float | None = None, field: Any = None, out: np.ndarray | None = None,
                    read_once_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Divide the signal above the black level by the shading; returns the corrected stack, the shading field
    (ny, nx) and what was measured.

    ``method="model"`` (default, for two-phase stacks) fits the forward model's trench shadow and tilt to the two
    phases' gray levels (:func:`fibsynth.microscope.estimate.shading_profile`, which also finds the black level
    when the shadow is deep enough); it is not fooled by a structure whose solid fraction varies across the face.
    ``"polynomial"`` fits a 2D polynomial of ``degree`` to the mean over slices, ``"gaussian"`` smooths it by
    ``sigma_px`` (default a quarter of the larger side; any image, but a structure with a gradient of solid
    fraction is taken for shading).

    ``field``: a shading field (ny, nx) measured before -- for a stack corrected block by block, the field of the
    whole stack (:func:`shading_background`, which reads one slice at a time) -- divided out as it is, with
    ``dark_offset`` (default 0) as the black level; ``method`` is then only recorded.

    The stack is read one slice at a time (a memory map or dask array stays on disk; the float64 output is the
    only whole-stack array; ``method="model"``'s measurement, :func:`shading_profile`, passes over it eight times:
    a dask or Zarr array is then first read once into memory in its own dtype, when that is at most
    ``read_once_bytes`` -- default ``None``: ``forward.READ_ONCE_BYTES``, 2 GiB; 0: never --,
    :func:`~fibsynth.microscope.forward.read_once`, and not read again).
    ``out``: a float64 array of the stack's shape to write into (it may be ``stack`` itself)."""
    from fibsynth.microscope.config import MicroscopeModel, Shading
    from fibsynth.microscope.measure import shading_profile
    from fibsynth.microscope.forward import shading_field

    x = _Slices(read_once(stack, read_once_bytes, param="read_once_bytes") if method == "model" and field is None
                else stack, "stack")
    info: dict[str, Any] = {"method": method}
    if field is not None:
        field = np.asarray(field, np.float64)
        if field.shape != x.shape[1:] or not (np.isfinite(field).all() and (field > 0).all()):
            raise FibsynthError(f"expected a positive, finite ({x.shape[1]}, {x.shape[2]}) field, got shape "
                                f"{field.shape}", param="field")
        off = 0.0 if dark_offset is None else dark_offset
        info.update(black_level=off, field="given")
    elif method == "model":
        sh = shading_profile(x._a, read_once_bytes=read_once_bytes)
        off = dark_offset if dark_offset is not None else (sh["offset"] if sh["offset"] is not None else 0.0)
        model = MicroscopeModel(shading=Shading(depth=float(np.clip(sh["depth"], 0, 0.99)), power=sh["power"],
                                                tilt=float(np.clip(sh["tilt"], -1.9, 1.9))))
        field = np.maximum(shading_field(model, *x.shape[1:]), 1e-3)
        info.update(sh, black_level=off)
    elif method in ("polynomial", "gaussian"):
        off = 0.0 if dark_offset is None else dark_offset
        if method == "gaussian" and sigma_px is None:
            sigma_px = max(x.shape[1:]) / 4.0
        field = shading_background(_Minus(x, off), degree=degree, sigma_px=sigma_px if method == "gaussian" else None)
        info["black_level"] = off
    else:
        raise FibsynthError(f"unknown method {method!r}; one of model, polynomial, gaussian", param="method")
    out = _output(out, x.shape)
    for k in range(x.shape[0]):
        out[k] = (x[k] - off) / field + off
    return out, field, info


def correct_drift(stack: Any, *, out: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Match every slice's mean and standard deviation to the stack's medians (brightness and contrast drift of the
    beam current); returns the stack and the per-slice gain and offset applied (``out = gain * in + offset``).
    Reads the stack one slice at a time, twice (a memory map or dask array stays on disk); ``out``: a float64
    array of the stack's shape to write into (it may be ``stack`` itself)."""
    x = _Slices(stack, "stack")
    m, s = np.empty(x.shape[0]), np.empty(x.shape[0])
    for k in range(x.shape[0]):
        img = x[k]
        m[k], s[k] = img.mean(), img.std()
    if (s <= 0).any():
        raise FibsynthError("a slice is constant; brightness correction needs contrast", param="stack")
    mr, sr = float(np.median(m)), float(np.median(s))
    g = sr / s
    o = mr - g * m
    out = _output(out, x.shape)
    for k in range(x.shape[0]):
        out[k] = x[k] * g[k] + o[k]
    return out, {"gain": g.round(6).tolist(), "offset": o.round(6).tolist()}


# ------------------------------------------------------------------------------------------------ denoising

def denoise(stack: Any, method: str = "gaussian", strength: float = 1.0, *, out: np.ndarray | None = None
            ) -> np.ndarray:
    """Denoise every slice: ``gaussian`` / ``median`` (``strength`` = sigma / radius in px) or ``bilateral`` /
    ``nl_means`` (scikit-image; ``strength`` scales the noise level of
    :func:`fibsynth.microscope.estimate.noise_sigma`). ``out``: a float64 array of the stack's shape to write into
    (it may be ``stack`` itself)."""
    from skimage.restoration import denoise_bilateral, denoise_nl_means

    from fibsynth.microscope.measure import noise_sigma

    x = _Slices(stack, "stack")  # one slice converted at a time: the float64 output is the only whole-stack copy
    if not strength > 0:
        raise FibsynthError(f"must be > 0 (got {strength})", param="strength")
    if method not in ("none", "gaussian", "median", "bilateral", "nl_means"):
        raise FibsynthError(f"unknown method {method!r}; one of none, gaussian, median, bilateral, nl_means",
                            param="method")
    out = _output(out, x.shape)
    for k in range(x.shape[0]):
        img = x[k]
        if method == "none":
            out[k] = img
        elif method == "gaussian":
            out[k] = ndimage.gaussian_filter(img, strength)
        elif method == "median":
            r = max(1, int(round(strength)))
            out[k] = ndimage.median_filter(img, size=2 * r + 1, mode="nearest")
        elif method in ("bilateral", "nl_means"):
            sig = max(noise_sigma(img[None]), 1e-12)
            if method == "bilateral":
                lo = float(img.min())
                span = max(float(img.max()) - lo, 1e-12)
                u = denoise_bilateral((img - lo) / span, sigma_color=max(strength * 1.5 * sig / span, 1e-6),
                                      sigma_spatial=1.0, mode="reflect")
                out[k] = u * span + lo
            else:
                out[k] = denoise_nl_means(img, h=0.8 * strength * sig, sigma=sig, patch_size=5, patch_distance=6,
                                          fast_mode=True)
        else:
            raise FibsynthError(f"unknown method {method!r}; one of none, gaussian, median, bilateral, nl_means",
                                param="method")
    return out


# ------------------------------------------------------------------------------------------------ all of them

def correct(stack: Any, config: CorrectConfig | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply the corrections ``config`` asks for, in the order align, destripe, shading, drift, denoise; returns
    the corrected stack (float64, input units) and a record of what was applied and measured.

    The input is read one slice at a time (a memory map, dask or Zarr array stays on disk) and the corrections
    write into one float64 stack, each step slice by slice in place of the step before (each slice is read before
    it is written): about one float64 copy of the stack in all, plus the slices being worked on."""
    cfg = config or CorrectConfig()
    x = _Slices(stack, "stack")
    rec: dict[str, Any] = {"config": cfg.model_dump(mode="json"), "applied": []}
    buf: np.ndarray | None = None  # the output; before the first step, the input is read as it is

    def src() -> Any:
        return x if buf is None else buf

    if cfg.align:
        shifts = register_slices(x, upsample=cfg.upsample, max_shift_px=cfg.max_shift_px, method=cfg.align_method,
                                 region=cfg.align_region, search_px=cfg.align_search_px)
        buf = shift_slices(x, shifts)
        rec["applied"].append("align")
        rec["shifts_px"] = np.round(shifts, 3).tolist()
    if cfg.destripe:
        buf = destripe(src(), levels=cfg.destripe_levels, sigma=cfg.destripe_sigma, method=cfg.destripe_method,
                       out=buf)
        rec["applied"].append("destripe")
    if cfg.shading:
        buf, bg, info = correct_shading(src(), method=cfg.shading_method, sigma_px=cfg.shading_sigma_px, out=buf,
                                        read_once_bytes=cfg.read_once_bytes)
        rec["applied"].append("shading")
        rec["shading"] = {**info, "field_range": [round(float(bg.min()), 4), round(float(bg.max()), 4)]}
    if cfg.drift:
        buf, gd = correct_drift(src(), out=buf)
        rec["applied"].append("drift")
        rec["drift"] = gd
    if cfg.denoise != "none":
        buf = denoise(src(), cfg.denoise, cfg.denoise_strength, out=buf)
        rec["applied"].append(f"denoise:{cfg.denoise}")
    if buf is None:  # nothing applied: the stack as float64, as before
        buf = _stack(stack, "stack")
    return buf, rec
