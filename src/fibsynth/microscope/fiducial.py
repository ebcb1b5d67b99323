"""Automatic detection of a static fiducial band in a FIB-SEM stack (the protective cap with its milled marks).

The cap over the volume and the marks milled into it are the same object in every slice: once the slices are
registered, a row through the band shows the same pattern in slice 0 and in slice 30. The face below changes from
slice to slice (each slice is a new cross-section of the structure), so its rows correlate only with nearby slices.
:func:`find_fiducial_region` measures, for every row and every column, the correlation between slices far apart
in the stack (after a coarse registration) and returns the run of rows (or columns) where it stands out, as the
region for ``register_slices(..., region=...)`` / ``fibsynth microscope correct --align-region auto``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from fibsynth.errors import FibsynthError
from fibsynth.microscope.forward import _Slices

# defaults of find_fiducial_region (docs/microscope.md, "Eleventh round", for the measurements)
BAND_MAX_SLICES = 48
BAND_MIN_CORRELATION = 0.2
BAND_MIN_CONTRAST = 0.17
BAND_MIN_ISOTROPY = 0.15
BAND_HIGH, BAND_LOW = 0.3, 0.1  # hysteresis thresholds, fractions of (peak - median) above the median
BAND_GAP_PX = 4  # gaps closed inside a run
BAND_PAD_PX = 8  # lines added to the run on a side where the lines beyond are flat (taper room)
# the size the thresholds were calibrated at (lines of 192 px over 32 slices); a smaller stack needs a higher
# correlation (docs/microscope.md, "micro14": its chance runs correlate more): see needed_correlation
BAND_CAL_LINE_PX, BAND_CAL_SLICES = 192, 32
# ... unless the run stands out from the other lines by this many times their spread (a low-dose band: the noise
# lowers the band's correlation and the structure's chance correlation alike)
BAND_MIN_STANDOUT = 4.0
# ... and only when its contrast is at least this many times the chance spread of its own correlation, measured on
# the stack itself with the later slices moved along the lines (chance_spread; docs/microscope.md, "micro16")
BAND_MIN_CHANCE_STANDOUT = 8.0
BAND_MIN_OFFSET_PX = 8  # the smallest such move: beyond the high-passed texture's correlation length


def needed_correlation(min_correlation: float, line_px: int, slices: int) -> float:
    """The mean long-lag correlation a band must reach in a stack whose lines are ``line_px`` long (the slice's
    width for a row band, its height for a column band), over ``slices`` slices: ``min_correlation`` at the
    calibration size (192 px, 32 slices) and above, and ``min_correlation * sqrt(192 * 32 / (line_px *
    slices))`` below it -- the chance correlation of a run of lines falls like one over the square root of the
    pixels and slices it pools. A run below it is still taken when it stands out from the other lines by at least
    ``BAND_MIN_STANDOUT`` (4) times their spread (a band at low dose: the noise lowers its correlation and the
    structure's chance correlation alike). Measured (docs/microscope.md, micro14), both rules together, against
    49830d9: on 48-96 px x 16-32 slices at 300 e/px the false bands on stacks without one fell from 43 to 17 of
    288 (from 30 to 5 of 216 outside crops of a real SOFC layer, which are nearly static over so few slices; none
    at 64-96 px) while 217 of the 219 true bands found before were still found; at 20 e/px (64-96 px x 24-32
    slices) 32 of the 35 true bands found before, no false band either way. micro16: the second way in also
    needs the run to stand out from its chance correlation in the stack itself (:func:`chance_spread`): false
    bands on 48-96 px x 12-32 slices fell from 92 to 59 of 432 (the rest nearly static layers of the real SOFC
    volume, and 4 synthetic), every one of the 252 bands found before still found."""
    return float(min_correlation * max(1.0, np.sqrt(BAND_CAL_LINE_PX * BAND_CAL_SLICES / (line_px * slices))))


@dataclass
class FiducialBand:
    """What :func:`find_fiducial_region` found. ``region`` is ``(y0, y1, x0, x1)`` in slice 0's pixels (half-open)
    or ``None`` when no band stands out; ``correlation`` the band's mean long-lag correlation (1: the same in
    every slice; 0: nothing in common between slices far apart), ``background`` the same for the rest of the
    field (median over rows or columns), ``confidence`` = ``(correlation - background) / (1 - background)``;
    ``orientation`` ``"rows"`` (a horizontal band: the cap at the top or bottom) or ``"columns"`` (a vertical one);
    ``profile`` the correlation of every row (or column); ``isotropy`` how well the band's static pattern fixes a
    shift in both directions (:func:`static_isotropy`); ``reason`` why no region was returned, ``candidate`` the
    region that was considered then (for inspection)."""

    region: tuple[int, int, int, int] | None
    confidence: float
    correlation: float
    background: float
    orientation: str
    slices_used: int
    min_lag: int
    profile: list[float] = field(default_factory=list)
    reason: str = ""
    isotropy: float = 0.0
    candidate: tuple[int, int, int, int] | None = None
    needed: float = 0.0
    standout: float = 0.0
    chance_spread: float = float("nan")
    chance_standout: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"region": None if self.region is None else list(self.region), "confidence": round(self.confidence, 4),
                "correlation": round(self.correlation, 4), "background": round(self.background, 4),
                "orientation": self.orientation, "slices_used": self.slices_used, "min_lag": self.min_lag,
                "isotropy": round(self.isotropy, 4), "needed_correlation": round(self.needed, 4),
                "standout": round(self.standout, 2),
                "chance_spread": None if not np.isfinite(self.chance_spread) else round(self.chance_spread, 5),
                "chance_standout": None if not np.isfinite(self.chance_standout) else round(self.chance_standout, 2),
                "reason": self.reason,
                "candidate": None if self.candidate is None else list(self.candidate)}


WORK_DTYPE = np.float32  # the detector's high-passed slices (docs/microscope.md, "micro14": the measured difference)
_LINES = 16  # lines (rows or columns) converted to float64 at a time for the Gram matrices


class _Head:
    """The first ``n`` slices of a lazily read stack (:class:`fibsynth.microscope.forward._Slices`), still lazy."""

    def __init__(self, x: _Slices, n: int):
        self._x, self.shape, self.dtype = x, (n,) + x.shape[1:], np.dtype(np.float64)

    def __getitem__(self, k: int) -> np.ndarray:
        if not 0 <= int(k) < self.shape[0]:
            raise IndexError(k)
        return self._x[k]


def _highpassed(stack: Any, highpass_px: float, shifts: Any = None, *, move: bool = False,
                dtype: Any = np.float64) -> np.ndarray:
    """The slices minus a Gaussian of ``highpass_px``; with ``shifts`` (those that registered the stack), the
    pixels that the shift filled by repeating the edge (within the shift + 1 px of the frame) set to zero, so that
    the repeated pixels, the same in every slice, are not taken for a static band. ``move=True``: each slice is
    first moved by its shift (``shift_slices``' interpolation), so that ``stack`` is the unregistered stack. Reads
    one slice at a time; the result (of ``dtype``) is the only whole-stack array."""
    x = _Slices(stack, "stack")
    nz, ny, nx = x.shape
    sh = None if shifts is None else np.asarray(shifts, np.float64)
    out = np.empty(x.shape, dtype)
    yy, xx = np.arange(ny)[:, None], np.arange(nx)[None, :]
    for k in range(nz):
        img = x[k]
        if move and sh[k].any():
            img = ndimage.shift(img, sh[k], order=3, mode="nearest")
        hp = img - ndimage.gaussian_filter(img, highpass_px, mode="nearest")
        if sh is not None:
            dy, dx = sh[k]
            hp *= ((yy >= dy + 1) & (yy <= ny - 2 + dy)) & ((xx >= dx + 1) & (xx <= nx - 2 + dx))
        out[k] = hp
    return out


def long_lag_correlation(stack: Any, *, min_lag: int, highpass_px: float = 4.0, window: int = 3,
                         shifts: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row and per column of a registered stack: the correlation between slices at least ``min_lag`` apart,
    ``sum_pairs <s_i, s_j> / sum_pairs |s_i| |s_j|`` over the row's (column's) pixels of the high-passed slices
    ``s`` (a Gaussian of ``highpass_px`` subtracted), pooled over ``window`` neighbouring rows (columns).
    Independent noise adds to the norms, not to the products: a static row reads signal / (signal + noise), a row
    of structure that decorrelates within ``min_lag`` slices reads near 0. ``shifts``: those that registered the
    stack (its edge pixels repeated by the shift are left out). Returns ``(rows (ny,), columns (nx,))``."""
    x = _Slices(stack, "stack")
    n = x.shape[0]
    if not 1 <= min_lag < n:
        raise FibsynthError(f"must be in 1 .. {n - 1} for {n} slices (got {min_lag})", param="min_lag")
    s = _highpassed(x, highpass_px, shifts)
    return _long_lag(_gram(s, 1), min_lag, window), _long_lag(_gram(s, 2), min_lag, window)


def _gram(s: np.ndarray, axis: int) -> np.ndarray:
    """The Gram matrix over slices of every row (``axis`` 1; pooled over x) or column (2; over y) of the
    high-passed slices ``s``: (line, slice, slice), ``_LINES`` lines at a time (converted to float64, so that a
    float32 ``s`` is summed in float64; each line's product is the same whichever block it is in)."""
    n, ny, nx = s.shape
    lines = s.shape[axis]
    g = np.empty((lines, n, n))
    for l0 in range(0, lines, _LINES):
        l1 = min(l0 + _LINES, lines)
        blk = s[:, l0:l1, :] if axis == 1 else s[:, :, l0:l1]
        a = np.moveaxis(np.asarray(blk, np.float64), axis, 0)  # (line, slice, pixel)
        if axis == 2:
            a = np.ascontiguousarray(a)  # (BLAS needs the pixels contiguous)
        g[l0:l1] = np.matmul(a, np.swapaxes(a, 1, 2))
    return g


def _long_lag(g: np.ndarray, min_lag: int, window: int = 3) -> np.ndarray:
    """:func:`long_lag_correlation` of one direction from its Gram matrices (:func:`_gram`)."""
    i, j = np.triu_indices(g.shape[1], k=min_lag)
    if window > 1:
        g = ndimage.uniform_filter1d(g, window, axis=0, mode="nearest")
    d = np.sqrt(np.maximum(np.diagonal(g, axis1=1, axis2=2), 0))
    num = g[:, i, j].sum(1)
    den = (d[:, i] * d[:, j]).sum(1)
    return np.where(den > 0, num / np.maximum(den, 1e-300), 0.0)


def _offset_profiles(s: np.ndarray, axis: int, lag: int, window: int = 3) -> np.ndarray:
    """The long-lag correlation of every line (``axis`` 1: rows, 2: columns) of the high-passed slices ``s`` with
    the later slice of each pair moved along the line by every circular offset ``d``: ``(lines, line length)``,
    column ``d`` (column 0 is :func:`_long_lag`'s profile, to rounding). ``sum_pairs sum_x s_i(x) s_j(x + d)`` for
    every ``d`` at once from the FFTs along the lines (the pairs ``j - i >= lag`` summed as ``conj(S_i) *
    sum_{j >= i + lag} S_j``), pooled over ``window`` lines and divided by the same norms as the profile (a
    circular move keeps a line's norm); ``_LINES`` lines at a time."""
    n = s.shape[0]
    lines, length = s.shape[axis], s.shape[3 - axis]
    num = np.empty((lines, length))
    sq = np.empty((lines, n))
    for l0 in range(0, lines, _LINES):
        l1 = min(l0 + _LINES, lines)
        blk = np.asarray(s[:, l0:l1, :] if axis == 1 else np.swapaxes(s[:, :, l0:l1], 1, 2), np.float64)
        f = np.fft.rfft(blk, axis=2)  # (slice, line, frequency)
        later = np.cumsum(f[::-1], axis=0)[::-1]  # later[k] = sum_{j >= k} f[j]
        num[l0:l1] = np.fft.irfft((np.conj(f[:n - lag]) * later[lag:]).sum(0), n=length, axis=1)
        sq[l0:l1] = np.einsum("kla,kla->lk", blk, blk)
    if window > 1:
        num = ndimage.uniform_filter1d(num, window, axis=0, mode="nearest")
        sq = ndimage.uniform_filter1d(sq, window, axis=0, mode="nearest")
    d = np.sqrt(np.maximum(sq, 0))
    later = np.cumsum(d[:, ::-1], axis=1)[:, ::-1]
    den = (d[:, :n - lag] * later[:, lag:]).sum(1)
    return np.where(den[:, None] > 0, num / np.maximum(den, 1e-300)[:, None], 0.0)


def chance_spread(s: np.ndarray, orient: str, a: int, b: int, lag: int,
                  min_offset: int = BAND_MIN_OFFSET_PX) -> float:
    """How much the mean long-lag correlation of the lines ``a:b`` varies by chance in this stack: 1.4826 x the
    median absolute deviation of that mean over the circular moves ``d = min_offset .. length - min_offset`` of
    the later slice of each pair along the lines (:func:`_offset_profiles`). Moved, slices far apart are compared
    where they show different places: no x-varying static pattern lines up (a band's marks, a structure that
    repeats), so what is left is the chance correlation of this texture over these pixels and slices -- the null
    a run's contrast is measured against, from the stack itself (its size, the structure's correlation length,
    the noise). A pattern constant along the lines (a straight edge) reads the same at every move and adds no
    spread. NaN when the lines are too short for one move. ``s``: the registered stack's high-passed slices."""
    p = _offset_profiles(s, 1 if orient == "rows" else 2, lag)
    offs = np.arange(min_offset, p.shape[1] - min_offset + 1)
    if offs.size == 0:
        return float("nan")
    m = p[a:b][:, offs].mean(0)
    return float(1.4826 * np.median(np.abs(m - np.median(m))))


def _best_run(profile: np.ndarray, min_len: int, high: float = BAND_HIGH, low: float = BAND_LOW,
              gap: int = BAND_GAP_PX) -> tuple[int, int, float, float] | None:
    """The band in a profile by hysteresis: runs above ``median + low * (max - median)`` that hold a line above
    ``median + high * (max - median)`` (the band's edges correlate more than its interior, which at low dose is
    only a little above the rest); two such runs at most ``gap`` lines apart are one (the cap's top edge and its
    interior can be split by a dip where the edge meets the frame's edge); at least ``min_len`` long; the one
    with the largest excess over the median: ``(start, stop, mean, median)``."""
    bg = float(np.median(profile))
    span = float(profile.max()) - bg
    core = profile > bg + high * span
    lab, k = ndimage.label(profile > bg + low * span)
    runs: list[list[int]] = []
    for r in range(1, k + 1):
        idx = np.flatnonzero(lab == r)
        if not core[idx].any():
            continue
        if runs and idx[0] - runs[-1][1] <= gap:
            runs[-1][1] = int(idx[-1]) + 1
        else:
            runs.append([int(idx[0]), int(idx[-1]) + 1])
    best = None
    for a, b in runs:
        if b - a < min_len:
            continue
        excess = float((profile[a:b] - bg).sum())
        if best is None or excess > best[0]:
            best = (excess, a, b)
    if best is None:
        return None
    _, a, b = best
    return a, b, float(profile[a:b].mean()), bg


def find_fiducial_region(stack: Any, *, max_slices: int = BAND_MAX_SLICES, min_lag: int | None = None,
                         min_correlation: float = BAND_MIN_CORRELATION, min_contrast: float = BAND_MIN_CONTRAST,
                         passes: int = 2, highpass_px: float = 4.0, pad_px: int = BAND_PAD_PX,
                         along_fraction: float = 0.0, min_isotropy: float = BAND_MIN_ISOTROPY,
                         orientation: str = "rows", warn: bool = True) -> FiducialBand:
    """Find the static band of a FIB-SEM stack -- the protective cap with the milled marks that every slice cuts
    at the same place -- for ``register_slices(..., region=...)``; returns a :class:`FiducialBand`.

    The first ``max_slices`` slices are registered on the whole image (the chain: drift plus the structure's
    apparent motion, off by a pixel or so where a band is present), and :func:`long_lag_correlation` is measured
    per row (``orientation="rows"``, default: a horizontal band, the cap over the face; ``"columns"`` or
    ``"any"`` for a band beside the volume): slices at least ``min_lag`` apart (default a third of the slices
    used) share the band's pattern and not the structure's; pixels that the registration filled by repeating the
    frame's edge are left out. The band is the run of rows found by hysteresis (:func:`_best_run`: lines above
    ``median + 0.1 (peak - median)`` holding one above ``median + 0.3 (peak - median)``, two such runs at most 4
    lines apart taken as one, at least 8 long), widened by up to ``pad_px`` lines on a side whose lines are flat
    (:func:`_pad_flat`: the surface above the cap; room for the registration's taper, never into the structure);
    along it the whole width, or with ``along_fraction > 0`` the columns where its correlation is at least that
    fraction of its mean (the longest such span; noisy at low dose). The stack is then registered on that region
    and the correlation measured again (``passes``), and the pass with the highest confidence kept.

    Declines (``region=None`` with ``reason``, the region considered in ``candidate``; a warning unless
    ``warn=False``) when the band's mean correlation is below ``min_correlation`` -- raised on stacks smaller
    than the calibration's 192 px x 32 slices by :func:`needed_correlation` (``needed`` in the result; a stack so
    small that it would need 1 or more is declined as too small to decide), unless the run stands out both from
    the other lines (``standout`` >= 4 times their spread) and from its own chance correlation in this stack
    (``chance_standout`` = contrast / :func:`chance_spread` >= 8: the run's correlation with the later slices
    moved along the lines, a null measured on the stack itself; micro16) --, its contrast over the rest
    (``correlation - background``, the median line) below ``min_contrast``, or its static pattern runs along one
    direction only (:func:`static_isotropy` below ``min_isotropy``: a layer's interface or a bare edge, which
    cannot fix a shift along itself). The thresholds come from the forward model's stacks with and without a
    band (docs/microscope.md, "Eleventh round"; validated at 96-192 px x 32 slices there and, with the size
    scaling, at 48-96 px x 16-32 slices: "micro14"); on a real stack read the confidence and look at the region
    before trusting it."""
    x = _Slices(stack, "stack")  # read one slice at a time: only the first max_slices are read
    nz, ny, nx = x.shape
    if nz < 4:
        raise FibsynthError(f"needs at least 4 slices to tell a static band from the structure (got {nz})",
                            param="stack")
    if max_slices < 4:
        raise FibsynthError(f"must be >= 4 (got {max_slices})", param="max_slices")
    if passes < 1:
        raise FibsynthError(f"must be >= 1 (got {passes})", param="passes")
    if orientation not in ("rows", "columns", "any"):
        raise FibsynthError(f"one of rows, columns, any (got {orientation!r})", param="orientation")
    from fibsynth.microscope.inverse import MIN_REGION_PX, register_slices

    use = _Head(x, min(max_slices, nz))
    n = use.shape[0]
    lag = max(1, n // 3) if min_lag is None else int(min_lag)
    if not 1 <= lag < n:
        raise FibsynthError(f"must be in 1 .. {n - 1} for the {n} slices used (got {min_lag})", param="min_lag")
    shifts = register_slices(use)
    results: list[FiducialBand] = []

    need = {"rows": needed_correlation(min_correlation, nx, n), "columns": needed_correlation(min_correlation, ny, n)}

    def stands_out(r: FiducialBand) -> bool:  # the way in for a run below the correlation needed
        return r.standout >= BAND_MIN_STANDOUT and r.chance_standout >= BAND_MIN_CHANCE_STANDOUT

    def usable(r: FiducialBand) -> bool:
        return (r.region is not None and r.correlation >= min_correlation
                and (r.correlation >= need[r.orientation] or stands_out(r))
                and r.correlation - r.background >= min_contrast and r.isotropy >= min_isotropy)

    for p in range(passes):
        # the registered slices high-passed, once per pass (float32: every measurement below reads it, in float64)
        hps = _highpassed(use, highpass_px, shifts, move=True, dtype=WORK_DTYPE)
        profiles, power = {}, {}
        for orient, axis in (("rows", 1), ("columns", 2)):
            if orientation in (orient, "any") or orient == "rows":  # (rows: the profile a refusal reports)
                g = _gram(hps, axis)
                profiles[orient] = _long_lag(g, lag)
                # texture + noise per line: the mean square over its pixels and the slices
                power[orient] = np.diagonal(g, axis1=1, axis2=2).sum(1) / (n * (nx if axis == 1 else ny))
        rows, cols = profiles["rows"], profiles.get("columns")
        cands = []
        for orient, prof in (("rows", rows), ("columns", cols)):
            if orientation not in (orient, "any"):
                continue
            run = _best_run(prof, MIN_REGION_PX)
            if run is None:
                continue
            a, b, corr, bg = run
            ra, rb = a, b  # the run itself (the statistics); padded for the region
            a, b = _pad_flat(power[orient], a, b, pad_px)
            c0, c1 = 0, (nx if orient == "rows" else ny)
            if along_fraction > 0:  # where along the band it correlates
                along = _along_profile(hps, orient, a, b, lag)
                c0, c1 = _span(along, along_fraction * max(float(along.mean()), 1e-12), MIN_REGION_PX)
            region = (a, b, c0, c1) if orient == "rows" else (c0, c1, a, b)
            c = FiducialBand(region, float((corr - bg) / max(1.0 - bg, 1e-12)), corr, bg, orient, n, lag,
                             np.round(prof, 4).tolist(), isotropy=_isotropy(hps, region, lag), needed=need[orient],
                             standout=_standout(prof, a, b, corr - bg))
            if corr < need[orient] and c.standout >= BAND_MIN_STANDOUT:  # (only where it decides)
                c.chance_spread = chance_spread(hps, orient, ra, rb, lag)
                if np.isfinite(c.chance_spread):
                    c.chance_standout = float((corr - bg) / max(c.chance_spread, 1e-6))
            cands.append(c)
        if not cands:
            prof = cols if orientation == "columns" else rows
            orient = "columns" if orientation == "columns" else "rows"
            results.append(FiducialBand(None, 0.0, float(prof.max()), float(np.median(prof)), orient, n, lag,
                                        np.round(prof, 4).tolist(), reason="no run of at least "
                                        f"{MIN_REGION_PX} {orientation.replace('any', 'rows or columns')}"
                                        " stands out", needed=need[orient]))
            break
        good = [c for c in cands if usable(c)]
        results.append(max(good or cands, key=lambda c: c.confidence))
        if p + 1 < passes:
            shifts = register_slices(use, region=results[-1].region)
    good = [r for r in results if usable(r)]
    found = max(good or results, key=lambda r: r.confidence)  # a pass that lost the band does not count
    if found.region is not None and not usable(found):
        (a, b) = found.region[:2] if found.orientation == "rows" else found.region[2:]
        where = f"the best {found.orientation} {a}:{b}"
        if found.needed >= 1.0 and not stands_out(found):
            line = nx if found.orientation == "rows" else ny
            found.reason = (f"the stack is too small to tell a static band from chance: lines of {line} px over "
                            f"{n} slices would need a correlation of {found.needed:.2f} (>= 1; "
                            f"{min_correlation:g} x sqrt({BAND_CAL_LINE_PX} x {BAND_CAL_SLICES} / ({line} x {n}))); "
                            "give the region by hand, or use more slices")
        elif (found.correlation < min_correlation or found.correlation - found.background < min_contrast
              or (found.correlation < found.needed and not stands_out(found))):
            found.reason = (f"{where} correlate {found.correlation:.2f} between slices >= {lag} apart against "
                            f"{found.background:.2f} elsewhere (needs >= {min_correlation:g} and {min_contrast:g} "
                            f"above the rest, and >= {found.needed:.2f} for lines of "
                            f"{nx if found.orientation == 'rows' else ny} px over {n} slices unless the run stands "
                            f"out by >= {BAND_MIN_STANDOUT:g} times the other lines' spread: "
                            f"{found.standout:.1f}, and by >= {BAND_MIN_CHANCE_STANDOUT:g} times its own chance "
                            "spread in this stack: "
                            + (f"{found.chance_standout:.1f})" if np.isfinite(found.chance_standout)
                               else "not measured)"))
        else:
            found.reason = (f"{where} are static but their pattern runs along one direction only (isotropy "
                            f"{found.isotropy:.2f} < {min_isotropy:g}): it cannot fix a shift along it -- a "
                            "straight edge or a layer, not marks")
        found.candidate, found.region = found.region, None
    if found.region is None and warn:
        warnings.warn(f"no static fiducial band found: {found.reason}", stacklevel=2)
    return found


def _standout(profile: np.ndarray, a: int, b: int, contrast: float) -> float:
    """How far the run ``a:b`` of a profile stands out: its contrast over the median line divided by the spread
    (1.4826 x the median absolute deviation) of the lines outside it and 2 lines beyond; 0 when fewer than 8 lines
    are left."""
    out = np.r_[profile[:max(a - 2, 0)], profile[b + 2:]]
    if out.size < 8:
        return 0.0
    mad = 1.4826 * float(np.median(np.abs(out - np.median(out))))
    return float(contrast / max(mad, 1e-6))


def _along_profile(s: np.ndarray, orient: str, a: int, b: int, lag: int) -> np.ndarray:
    """The long-lag correlation along the band (per column of a row band, per row of a column band), pooled over
    the band's lines and a window of 9; ``s``: the registered stack's high-passed slices (:func:`_highpassed`)."""
    band = np.asarray(s[:, a:b, :] if orient == "rows" else np.swapaxes(s[:, :, a:b], 1, 2), np.float64)
    # (slice, across, along)
    n = band.shape[0]
    i, j = np.triu_indices(n, k=lag)
    a2 = np.moveaxis(band, 2, 0)  # (along, slice, across)
    g = np.matmul(a2, np.swapaxes(a2, 1, 2))
    g = ndimage.uniform_filter1d(g, 9, axis=0, mode="nearest")
    d = np.sqrt(np.maximum(np.diagonal(g, axis1=1, axis2=2), 0))
    num = g[:, i, j].sum(1)
    den = (d[:, i] * d[:, j]).sum(1)
    return np.where(den > 0, num / np.maximum(den, 1e-300), 0.0)


def _pad_flat(power: np.ndarray, a: int, b: int, pad: int) -> tuple[int, int]:
    """The run ``a:b`` widened by up to ``pad`` lines on each side where the lines beyond are flat (mean power
    below half the median line's: the plain surface above the cap, not the structure), so that the registration's
    taper falls on them and not on the band; not widened towards the structure."""
    half = 0.5 * float(np.median(power))
    lo, hi = max(a - pad, 0), min(b + pad, len(power))
    if lo < a and power[lo:a].mean() < half:
        a = lo
    if hi > b and power[b:hi].mean() < half:
        b = hi
    return a, b


def _span(profile: np.ndarray, threshold: float, min_len: int) -> tuple[int, int]:
    """The longest contiguous span of ``profile >= threshold`` (the whole length when none is ``min_len`` long)."""
    lab, k = ndimage.label(profile >= threshold)
    best = (0, len(profile))
    size = 0
    for r in range(1, k + 1):
        idx = np.flatnonzero(lab == r)
        if idx.size >= min_len and idx.size > size:
            size, best = idx.size, (int(idx[0]), int(idx[-1]) + 1)
    return best


def static_isotropy(aligned: Any, region: tuple[int, int, int, int], highpass_px: float = 4.0, *,
                    min_lag: int | None = None, shifts: Any = None) -> float:
    """How well the static pattern of ``region`` in a registered stack fixes a shift in both directions: the ratio
    of the smaller to the larger eigenvalue of its structure tensor, built from the gradients of the high-passed
    slices taken in pairs at least ``min_lag`` apart (default a third of the slices), ``sum_pairs sum_pixels
    g_i g_j^T`` symmetrised -- like :func:`long_lag_correlation`, it keeps what slices far apart share (the band)
    and drops the noise and the structure, which differ between them. 1: as much gradient along every direction
    (marks, corners); 0: a pattern that runs along one direction (a straight edge, a layer's interface), which
    cannot fix a shift along itself."""
    x = _Slices(aligned, "aligned")
    lag = max(1, x.shape[0] // 3) if min_lag is None else int(min_lag)
    return _isotropy(_highpassed(x, highpass_px, shifts), region, lag)


def _isotropy(s: np.ndarray, region: tuple[int, int, int, int], lag: int) -> float:
    """:func:`static_isotropy` of the high-passed slices ``s`` (:func:`_highpassed`)."""
    n = s.shape[0]
    y0, y1, x0, x1 = region
    s = np.asarray(s[:, y0:y1, x0:x1], np.float64)
    gy, gx = np.gradient(s, axis=(1, 2))
    gy, gx = gy.reshape(n, -1), gx.reshape(n, -1)
    i, j = np.triu_indices(n, k=lag)
    if i.size == 0:
        return 0.0

    def cross(a: np.ndarray, b: np.ndarray) -> float:
        g = a @ b.T
        return 0.5 * float((g[i, j] + g[j, i]).sum())

    t = np.array([[cross(gy, gy), cross(gy, gx)], [cross(gy, gx), cross(gx, gx)]])
    w = np.linalg.eigvalsh(t)
    return float(max(w[0], 0.0) / w[1]) if w[1] > 0 else 0.0
