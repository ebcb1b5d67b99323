"""Forward microscope model: an ideal simulated stack (backscatter yield, z/y/x) -> the look of a real FIB-SEM stack.

Order of the effects (each is off at its default, see :mod:`fibsynth.microscope.config`):

0. fiducial band (optional): the protective cap with milled marks replaces the top rows of every slice; it does
   not change with z but takes every effect below, the drift included;

1. curtaining (vertical stripes, constant along y, slowly changing over slices): relief of the milled face;
2. xy drift (sub-pixel, cumulative over slices) and probe blur with focus drift -- the beam's view of the sample;
   charging streaks in epoxy;
3. shading (trench-wall shadow, left-right tilt) -- multiplicative;
4. scan-line jitter (x displacement per line);
5. detector: beam-current drift scales the dose, Poisson shot noise, gain, black level (with its drift), Gaussian
   read noise, per-line offsets, non-linear response, bit depth with clipping.

The structure's slice-thickness variation acts *before* imaging: :func:`jittered_z` / :func:`sample_at_z` give the
structure sampled at jittered slice positions, to image with any engine before :func:`apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, signal

from fibsynth.errors import FibsynthError
from fibsynth.microscope.config import MicroscopeModel


@dataclass
class MicroscopeResult:
    """What :func:`apply` returns: the degraded stack (float32, output units), the labels moved with the image
    (xy drift and line jitter, nearest neighbour) when labels were given, and the record of what was applied
    (the model and the realised per-slice values), and the curtain profiles added (nz, nx; eta units, before the
    shading), which tests and benchmarks compare with what a destriper removes."""

    image: np.ndarray
    labels: np.ndarray | None = None
    record: dict[str, Any] = field(default_factory=dict)
    stripes: np.ndarray | None = None


def _stack(a: Any, param: str) -> np.ndarray:
    x = np.asarray(a)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or min(x.shape) < 1:
        raise FibsynthError(f"expected a (z, y, x) stack, got shape {x.shape}", param=param)
    if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
        raise FibsynthError(f"expected numbers, got {x.dtype}", param=param)
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise FibsynthError("contains NaN or infinite values", param=param)
    return x


class _Slices:
    """A (z, y, x) stack read one slice at a time: ``s[k]`` is slice k as float64 (a new array, checked finite),
    the values ``_stack(a)[k]`` would hold, without the float64 copy of the whole stack. Takes anything
    :func:`_stack` takes; an array, memory map, dask or Zarr array is not read until a slice is asked for
    (anything else goes through ``np.asarray``). The same one-line errors as :func:`_stack` (a non-finite slice
    when it is read)."""

    def __init__(self, a: Any, param: str):
        if isinstance(a, _Slices):
            a = a._a
        elif not all(hasattr(a, n) for n in ("shape", "dtype", "__getitem__")):
            a = np.asarray(a)
        if len(a.shape) == 2:
            a = a[None] if isinstance(a, np.ndarray) else np.asarray(a)[None]
        self._a, self.param = a, param
        self.shape = tuple(int(n) for n in a.shape)
        dt = np.dtype(a.dtype)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise FibsynthError(f"expected a (z, y, x) stack, got shape {self.shape}", param=param)
        if not np.issubdtype(dt, np.number) and dt != bool:
            raise FibsynthError(f"expected numbers, got {dt}", param=param)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, k: int) -> np.ndarray:
        s = np.asarray(self._a[int(k)]).astype(np.float64)
        if not np.isfinite(s).all():
            raise FibsynthError("contains NaN or infinite values", param=self.param)
        return s

    def __iter__(self):
        return (self[k] for k in range(self.shape[0]))


# the default size up to which a lazy stack (dask, Zarr, ...), in its own dtype, is read once into memory by the
# estimators that pass over it several times (:func:`read_once`); each of them takes ``read_once_bytes`` to change it
READ_ONCE_BYTES = 2 << 30


def read_once_limit(value: Any, param: str = "read_once_bytes") -> int:
    """The byte limit of :func:`read_once`: ``value`` (an integer >= 0; 0 = never hold a lazy stack, read it again
    on every pass) or, for ``None``, :data:`READ_ONCE_BYTES` as it is at the call. A library error names
    ``param``, the caller's parameter."""
    if value is None:
        return int(READ_ONCE_BYTES)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise FibsynthError(f"must be an integer number of bytes >= 0 (0: never read a lazy stack into memory), or "
                            f"None for the default {READ_ONCE_BYTES} (got {value!r})", param=param)
    return int(value)


def read_once(a: Any, max_bytes: int | None = None, *, param: str = "max_bytes") -> Any:
    """``a`` itself when reading it again is cheap (a numpy array or memory map, a :class:`_Slices` of one), else
    (a dask or Zarr array, anything else with ``shape``, ``dtype`` and slicing) its values read once into a numpy
    array of its own dtype -- in blocks of whole chunks along z, about 4 MB each -- when that is at most
    ``max_bytes`` (an integer >= 0, checked by :func:`read_once_limit` with ``param`` as the name in its error;
    default :data:`READ_ONCE_BYTES`, 2 GiB); larger ones are left lazy (and read again on each pass).
    The same values: every later ``_Slices(...)[k]`` is the float64 slice it would have read from ``a``."""
    limit = read_once_limit(max_bytes, param)
    src = a._a if isinstance(a, _Slices) else a
    if isinstance(src, np.ndarray) or not all(hasattr(src, n) for n in ("shape", "dtype", "__getitem__")):
        return a
    shape = tuple(int(n) for n in src.shape)
    dt = np.dtype(src.dtype)
    if len(shape) != 3 or min(shape) < 1 or not (np.issubdtype(dt, np.number) or dt == bool):
        return a  # _Slices gives its error
    if int(np.prod(shape)) * dt.itemsize > limit:
        return a
    cz = getattr(src, "chunksize", None) or getattr(src, "chunks", None)  # dask: chunksize; Zarr: chunks
    cz = int(cz[0]) if cz and isinstance(cz[0], (int, np.integer)) and cz[0] > 0 else 1
    per = max(1, shape[1] * shape[2] * dt.itemsize)
    b = cz * max(1, (4 << 20) // (per * cz))  # a block is held twice while it is read (dask concatenates)
    out = np.empty(shape, dt)
    for z0 in range(0, shape[0], b):
        out[z0:z0 + b] = np.asarray(src[z0:min(z0 + b, shape[0])])
    return out


def smooth_series(rng: np.random.Generator, n: int, correlation: float) -> np.ndarray:
    """A stationary AR(1) series of unit variance whose correlation falls to 1/e over ``correlation`` steps."""
    r = float(np.exp(-1.0 / max(correlation, 1e-9)))
    e = rng.standard_normal(n)
    out = np.empty(n)
    out[0] = e[0]
    q = np.sqrt(1 - r * r)
    for i in range(1, n):
        out[i] = r * out[i - 1] + q * e[i]
    return out


# ------------------------------------------------------------------------------------------------ the simple case

def simple_degrade(images: Any, gamma: float = 1.0, gain: float = 1.0, offset: float = 0.0,
                   blur_sigma_px: float = 0.0, noise_std: float = 0.0, seed: int = 0) -> np.ndarray:
    """The simplest microscope (the experiment engine's ``degrade`` step): normalise the 0.1-99.9 % range to
    [0, 1], apply a gamma curve, an in-plane Gaussian blur and Gaussian noise (std as a fraction of the 1-99 % range),
    then ``gain * u + offset``. Returns float32."""
    x = np.asarray(images).astype(np.float64)
    lo, hi = np.percentile(x, [0.1, 99.9])
    u = np.clip((x - lo) / max(hi - lo, 1e-12), 0, 1) ** gamma
    if blur_sigma_px:
        u = ndimage.gaussian_filter(u, sigma=(0, blur_sigma_px, blur_sigma_px))
    r1, r99 = np.percentile(u, [1, 99])
    u = u + np.random.default_rng(seed).normal(0.0, noise_std * (r99 - r1), u.shape)
    return (gain * u + offset).astype(np.float32)


# ------------------------------------------------------------------------------------------------ slice thickness

def jittered_z(n_slices: int, thickness_jitter: float, seed: int = 0, *, n_out: int | None = None) -> np.ndarray:
    """Positions (in nominal slice units) at which a FIB with jittering slice thickness cuts a structure of
    ``n_slices`` slices: cumulative sums of thicknesses ``1 + thickness_jitter * N(0, 1)`` (each kept >= 0.05),
    starting at 0 and kept inside ``[0, n_slices - 1]``. ``n_out`` caps the count. Feed to :func:`sample_at_z`."""
    if n_slices < 1:
        raise FibsynthError(f"must be >= 1 (got {n_slices})", param="n_slices")
    if not 0 <= thickness_jitter <= 1:
        raise FibsynthError(f"must be in [0, 1] (relative std of the slice thickness, got {thickness_jitter})",
                            param="thickness_jitter")
    rng = np.random.default_rng(seed)
    t = np.maximum(1.0 + thickness_jitter * rng.standard_normal(max(n_slices, 1) * 2), 0.05)
    z = np.concatenate([[0.0], np.cumsum(t)])
    z = z[z <= n_slices - 1 + 1e-9]
    if n_out is not None:
        z = z[:n_out]
    return z


def sample_at_z(volume: Any, z: Any, *, order: int = 1) -> np.ndarray:
    """The volume's slices at fractional positions ``z``: linear interpolation (``order=1``; a binary structure
    comes back as the fraction of solid, threshold at 0.5 for a structure) or nearest slice (``order=0``)."""
    v = np.asarray(volume)
    z = np.asarray(z, np.float64)
    if v.ndim != 3:
        raise FibsynthError(f"expected a (z, y, x) volume, got shape {v.shape}", param="volume")
    if z.ndim != 1 or len(z) == 0 or z.min() < 0 or z.max() > v.shape[0] - 1 + 1e-9:
        raise FibsynthError(f"positions must lie in [0, {v.shape[0] - 1}]", param="z")
    if order == 0:
        return v[np.clip(np.rint(z).astype(int), 0, v.shape[0] - 1)]
    if order != 1:
        raise FibsynthError(f"must be 0 or 1 (got {order})", param="order")
    k0 = np.clip(np.floor(z).astype(int), 0, v.shape[0] - 1)
    k1 = np.minimum(k0 + 1, v.shape[0] - 1)
    w = (z - k0)[:, None, None]
    return (1 - w) * v[k0].astype(np.float64) + w * v[k1].astype(np.float64)


def jitter_structure(structure: Any, thickness_jitter: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A binary structure as a FIB with jittering slice thickness cuts it: the slices at :func:`jittered_z`
    positions (linear interpolation, thresholded at 0.5), and those positions. Image the result with any engine,
    then :func:`apply` the rest of the microscope; its labels are the returned structure."""
    v = np.asarray(structure)
    z = jittered_z(v.shape[0] if v.ndim == 3 else 0, thickness_jitter, seed)
    return (sample_at_z(v, z) >= 0.5).astype(np.uint8), z


# ------------------------------------------------------------------------------------------------ effects

def stripe_profiles(model: MicroscopeModel, nz: int, nx: int, rng: np.random.Generator) -> np.ndarray:
    """Curtain profiles (nz, nx), zero mean per slice, overall rms ``curtaining.amplitude``."""
    c = model.curtaining
    if c.amplitude == 0:
        return np.zeros((nz, nx))
    n = max(1, int(rng.poisson(c.stripes_per_100px * nx / 100.0)))
    pos0 = rng.uniform(0, nx, n)
    width = c.width_px * np.exp(0.5 * rng.standard_normal(n)) / np.exp(0.125)  # log-normal, mean width_px
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    amps = np.stack([smooth_series(rng, nz, c.correlation_slices) for _ in range(n)], 1)  # (nz, n)
    amps = sign * (0.5 + np.abs(amps))  # a stripe keeps its sign; its strength varies slowly
    pos = pos0[None, :] + np.cumsum(c.wander_px * rng.standard_normal((nz, n)), 0)
    xs = np.arange(nx)[None, None, :]
    sig = (width / 2.355)[None, :, None]
    prof = (amps[:, :, None] * np.exp(-0.5 * ((xs - pos[:, :, None]) / sig) ** 2)).sum(1)
    prof -= prof.mean(1, keepdims=True)
    rms = float(np.sqrt((prof ** 2).mean()))
    return prof * (c.amplitude / rms) if rms > 0 else prof


def shading_field(model: MicroscopeModel, ny: int, nx: int) -> np.ndarray:
    """Multiplicative shading (ny, nx)."""
    s = model.shading
    yy = np.linspace(0, 1, ny)[:, None]
    xx = np.linspace(0, 1, nx)[None, :]
    return (1 - s.depth * yy ** s.power) * (1 + s.tilt * (xx - 0.5))


def fiducial_band(model: MicroscopeModel, nx: int, rng: np.random.Generator) -> np.ndarray:
    """The static part of the fiducial band (``model.fiducial``): the cap's yield with the milled marks,
    (height_px, nx); see :class:`fibsynth.microscope.config.Fiducial`. The marks' phase along x is drawn from ``rng``."""
    return worn_band(model, fiducial_marks(model, nx, rng), 0, 1)  # slice 0: no wear yet


def worn_band(model: MicroscopeModel, marks: np.ndarray, k: int, nz: int) -> np.ndarray:
    """The band of slice ``k`` of ``nz`` with the marks' wear (``Fiducial.wear_contrast``, ``wear_blur_px``, both
    reached at the last slice, linear in ``k``): the marks' cover (``fiducial_marks``) blurred and faded."""
    f = model.fiducial
    t = k / max(nz - 1, 1)
    cover = marks
    if f.wear_blur_px > 0 and t > 0:
        cover = ndimage.gaussian_filter(cover, f.wear_blur_px * t, mode="nearest")
    return f.gray + (f.mark_gray - f.gray) * (1.0 - f.wear_contrast * t) * cover


def fiducial_marks(model: MicroscopeModel, nx: int, rng: np.random.Generator) -> np.ndarray:
    """How much of each pixel of the band (height_px, nx) the milled marks cover (0 .. 1); see
    :func:`fiducial_band`."""
    f = model.fiducial
    h = f.height_px
    yy, xx = np.mgrid[0:h, 0:nx].astype(np.float64)
    yc = (h - 1) / 2.0
    cover = np.zeros((h, nx))
    phase = float(rng.uniform(0, f.mark_spacing_px))
    centres = np.arange(phase - f.mark_spacing_px, nx + f.mark_spacing_px, f.mark_spacing_px)
    for ang in f.mark_angles_deg:
        t = np.deg2rad(ang)
        c, s = np.cos(t), np.sin(t)
        # a line through (cx, yc) along (c, s), as long as the band lets it be (at most 0.8 x the spacing)
        half = min(0.4 * f.mark_spacing_px, (yc + 0.5) / abs(s) if abs(s) > 1e-9 else np.inf)
        for cx in centres:
            u = (xx - cx) * c + (yy - yc) * s  # along the line
            d = np.abs(-(xx - cx) * s + (yy - yc) * c)  # across it
            w = np.clip(f.mark_width_px / 2 + 0.5 - d, 0, 1) * np.clip(half + 0.5 - np.abs(u), 0, 1)
            cover = np.maximum(cover, w)
    return cover


def _charge(img: np.ndarray, epoxy: np.ndarray, model: MicroscopeModel,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The image with the struck lines' charge added, and which lines were struck."""
    ch = model.charging
    r = float(np.exp(-1.0 / ch.length_px))
    c = signal.lfilter([1 - r], [1, -r], epoxy.astype(np.float64), axis=1)
    struck = rng.random(img.shape[0]) < ch.line_fraction
    return img + ch.strength * c * struck[:, None], struck


def _response(out: np.ndarray, model: MicroscopeModel) -> np.ndarray:
    d = model.detector
    if d.response == "gamma":
        return np.clip(out, 0, None) ** d.gamma
    if d.response == "saturating":
        s = d.saturation
        return s * (1 - np.exp(-out / s)) / (1 - np.exp(-1 / s))
    return out


def apply(stack: Any, model: MicroscopeModel | None = None, *, labels: Any = None) -> MicroscopeResult:
    """Image ``stack`` (z, y, x backscatter yield) through ``model``; reproducible for ``model.seed``.

    ``labels`` (same shape, 0 = epoxy) are moved with the image and, when given, mark the epoxy for charging.
    """
    model = model or MicroscopeModel()
    x = _stack(stack, "stack")
    lab = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.ndim == 2:
            lab = lab[None]
        if lab.shape != x.shape:
            raise FibsynthError(f"shape {lab.shape} differs from the stack's {x.shape}", param="labels")
        lab = lab.copy()
    nz, ny, nx = x.shape
    fid = model.fiducial
    if fid.height_px > 0:  # the cap band with its marks: its own generator, so that the rest draws the same values
        if fid.top_px + fid.height_px > ny:
            raise FibsynthError(f"top_px + height_px = {fid.top_px + fid.height_px} exceeds the {ny} rows of the "
                                "stack", param="fiducial.height_px")
        frng = np.random.default_rng([model.seed, 0xF1D])
        marks = fiducial_marks(model, nx, frng)
        y0, y1 = fid.top_px, fid.top_px + fid.height_px
        x[:, :y0] = fid.above_gray
        for k in range(nz):
            grain = frng.standard_normal((fid.height_px, nx))
            if fid.grain_px > 0:
                grain = ndimage.gaussian_filter(grain, fid.grain_px, mode="wrap")
            sd = float(grain.std())
            x[k, y0:y1] = worn_band(model, marks, k, nz) + (fid.grain_rms / sd * grain if sd > 0 and fid.grain_rms > 0 else 0.0)
    rng = np.random.default_rng(model.seed)
    d, det = model.drift, model.detector
    steps = d.xy_step_px * rng.standard_normal((nz, 2))
    steps[0] = 0
    shifts = np.cumsum(steps, 0)
    contrast = np.maximum(1 + d.contrast_rms * smooth_series(rng, nz, d.correlation_slices), 0.05)
    brightness = d.brightness_rms * smooth_series(rng, nz, d.correlation_slices)
    blur = d.blur_px + d.focus_rms_px * np.abs(smooth_series(rng, nz, d.correlation_slices))
    stripes = stripe_profiles(model, nz, nx, rng)
    shade = shading_field(model, ny, nx)
    dose = det.dose()
    if model.charging.strength > 0 and lab is None:
        thr = model.charging.threshold
        if thr is None:
            p1, p99 = np.percentile(x, [1, 99])
            thr = 0.5 * (p1 + p99)
    out = np.empty(x.shape, np.float32)
    struck = np.zeros((nz, ny), bool)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    for k in range(nz):
        img = x[k] + stripes[k][None, :]  # curtains are relief of the milled face: they move with the sample
        if shifts[k].any():
            img = ndimage.shift(img, shifts[k], order=3, mode="nearest")
            if lab is not None:
                lab[k] = ndimage.shift(lab[k], shifts[k], order=0, mode="nearest")
        if blur[k] > 0:
            img = ndimage.gaussian_filter(img, blur[k])
        if model.charging.strength > 0:
            if lab is not None:
                epoxy = lab[k] == 0  # already moved with the drift
            else:  # the epoxy the beam scans: the sample moved by the drift, like the image
                xs = ndimage.shift(x[k], shifts[k], order=1, mode="nearest") if shifts[k].any() else x[k]
                epoxy = xs < thr
            img, struck[k] = _charge(img, epoxy, model, rng)
        img = img * shade
        if det.line_jitter_px > 0:
            dx = det.line_jitter_px * rng.standard_normal(ny)[:, None]
            img = ndimage.map_coordinates(img, [yy, xx + dx], order=1, mode="nearest")
            if lab is not None:
                lab[k] = ndimage.map_coordinates(lab[k], [yy, xx + dx], order=0, mode="nearest")
        eta = np.clip(img, 0, None) * contrast[k]
        if dose is not None:
            mean = dose * det.efficiency
            eta = rng.poisson(eta * mean) / mean
        o = det.dark_offset + brightness[k] + det.gain * eta
        if det.read_noise > 0:
            o = o + det.read_noise * rng.standard_normal(o.shape)
        if det.line_offset_std > 0:
            o = o + det.line_offset_std * rng.standard_normal(ny)[:, None]
        o = _response(o, model)
        if det.bits is not None:
            q = 2 ** det.bits - 1
            o = np.round(np.clip(o, 0, 1) * q) / q
        out[k] = o
    record = {
        "model": model.model_dump(mode="json"),
        "dose_electrons_per_pixel": dose,
        "realised": {
            "shifts_px": np.round(shifts, 4).tolist(),
            "contrast": np.round(contrast, 5).tolist(),
            "brightness": np.round(brightness, 5).tolist(),
            "blur_px": np.round(blur, 4).tolist(),
            "stripe_rms": np.round(np.sqrt((stripes ** 2).mean(1)), 6).tolist(),
        },
    }
    if fid.height_px > 0:
        record["realised"]["fiducial_rows"] = [fid.top_px, fid.top_px + fid.height_px]
    if model.charging.strength > 0:  # the realised share of struck lines (the model's line_fraction is its mean)
        record["realised"]["struck_line_fraction"] = round(float(struck.mean()), 5)
    return MicroscopeResult(out, lab, record, stripes if model.curtaining.amplitude > 0 else None)
