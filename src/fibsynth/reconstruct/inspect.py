"""Step 1: read and inspect the user's real stack.

Reads any stack fibsynth reads (TIFF, folder of slices, Zarr, .npy; any integer or float type) and measures what the
later steps need: gray-value histogram and percentiles, noise level, curtain-stripe power and slice-to-slice drift.

INTERIM (swap when ``fibsynth.microscope`` lands on main): the estimators and corrections below are minimal
implementations kept inside reconstruct -- noise sigma by Immerkaer's Laplacian-difference estimator,
stripe power as the share of high-pass power in the column means, drift with ``phase_cross_correlation``, and
simple corrections (integer alignment, column-mean destriping, large-scale shading division). When the microscope
package provides its estimators and corrections, :func:`inspect_stack` and :func:`apply_corrections` call those
instead (see ``_microscope()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError

CORRECTIONS = ("align", "destripe", "flatten")


def _microscope():
    """The landed microscope package, or None (interim estimators are used then)."""
    try:
        import fibsynth.microscope as m  # noqa: F401
    except ImportError:
        return None
    return m


def read_stack(path: str | Path, *, voxel_nm: float | None = None, slice_nm: float | None = None,
               energy_kev: float | None = None) -> tuple[np.ndarray, VoxelSize, float | None, dict[str, Any]]:
    """The real stack as float32 (z, y, x), its voxel size (options override the file's metadata) and beam energy
    (option, else the file's, else None), and a description. One-line errors for everything a user can get wrong."""
    from fibsynth.io import read_volume

    path = Path(path)
    if not path.exists():
        raise FibsynthError("file or folder not found", path)
    try:
        vol = read_volume(path)
    except FibsynthError:
        raise
    except Exception as exc:  # an unreadable file of a known suffix
        raise FibsynthError(f"cannot read the stack ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})", path) from None
    data = np.asarray(vol.data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise FibsynthError(f"expected a (z, y, x) image stack, got shape {tuple(data.shape)}", path)
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise FibsynthError(f"expected integer or float gray values, got {data.dtype}", path)
    if data.shape[0] < 3 or min(data.shape[1:]) < 16:
        raise FibsynthError(f"too small to reconstruct: need at least 3 slices of 16x16 pixels, got {tuple(data.shape)}", path)
    if data.dtype == np.bool_ or (data.size and np.unique(data[: min(4, data.shape[0])]).size <= 2):
        raise FibsynthError("holds only two gray values: this looks like a segmentation, not a microscope image", path)
    img = data.astype(np.float32)
    if not np.all(np.isfinite(img)):
        raise FibsynthError("the stack holds NaN or infinite values", path)
    meta_vox = vol.meta.voxel_size_nm
    if voxel_nm is None and meta_vox is None:
        raise FibsynthError("the stack carries no voxel size: give the pixel size", path, param="voxel_nm")
    xy = float(voxel_nm) if voxel_nm is not None else float(meta_vox.x)
    z = float(slice_nm) if slice_nm is not None else (float(meta_vox.z) if meta_vox is not None else xy)
    for name, v in (("voxel_nm", xy), ("slice_nm", z)):
        if not (0 < v <= 1e4):
            raise FibsynthError(f"must be in (0, 1e4] nm (got {v})", path, param=name)
    energy = energy_kev if energy_kev is not None else vol.meta.energy_kev
    desc = {"file": str(path), "shape (z, y, x)": str(tuple(img.shape)), "dtype": str(data.dtype),
            "voxel size nm (x, y, z)": f"{xy:g}, {xy:g}, {z:g}",
            "voxel size from": "options" if voxel_nm is not None else "the file's metadata",
            "beam energy keV": energy if energy is not None else "unknown",
            "generator (from the file)": vol.meta.generator or "unknown"}
    return img, VoxelSize.from_xy_z(xy, z), (None if energy is None else float(energy)), desc


# ------------------------------------------------------------------------------------------ estimators

def noise_sigma(img: np.ndarray, max_slices: int = 16) -> float:
    """Gaussian noise sigma (gray values) by Immerkaer's method (Comput. Vis. Image Underst. 64 (1996) 300: mean
    absolute response to the difference of two Laplacians, which cancels smooth image content), median over up to
    ``max_slices`` slices."""
    from scipy.ndimage import convolve

    kern = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    idx = np.linspace(0, img.shape[0] - 1, min(max_slices, img.shape[0])).astype(int)
    vals = []
    for k in idx:
        r = convolve(img[k].astype(np.float64), kern, mode="reflect")[1:-1, 1:-1]
        vals.append(np.sqrt(np.pi / 2.0) * np.abs(r).mean() / 6.0)
    return float(np.median(vals))


def stripe_power(img: np.ndarray) -> float:
    """Curtain-stripe power: variance of the high-pass (x) column means of each slice, relative to the slice's
    variance, averaged over slices (0 = no vertical stripes)."""
    from scipy.ndimage import uniform_filter1d

    cols = img.mean(axis=1)  # (z, x)
    hp = cols - uniform_filter1d(cols, size=max(3, img.shape[2] // 16), axis=1, mode="nearest")
    var = img.reshape(img.shape[0], -1).var(axis=1) + 1e-12
    # column means of pure noise carry var/ny: remove that floor
    floor = var / img.shape[1]
    return float(np.mean(np.clip(hp.var(axis=1) - floor, 0, None) / var))


def slice_drift(img: np.ndarray) -> np.ndarray:
    """Shift (dy, dx) in pixels of each slice relative to the one before (first row zeros)."""
    from skimage.registration import phase_cross_correlation

    out = np.zeros((img.shape[0], 2))
    for k in range(1, img.shape[0]):
        shift, _, _ = phase_cross_correlation(img[k - 1], img[k], upsample_factor=4, normalization=None)
        out[k] = shift
    return out


def inspect_stack(img: np.ndarray) -> dict[str, Any]:
    """Histogram, percentiles, noise, stripe power and drift of a (z, y, x) stack."""
    m = _microscope()
    lo, p1, p50, p99, hi = (float(v) for v in np.percentile(img, [0, 1, 50, 99, 100]))
    counts, edges = np.histogram(img, bins=128, range=(lo, hi if hi > lo else lo + 1))
    sigma = noise_sigma(img)
    drift = slice_drift(img)
    cum = np.cumsum(drift, axis=0)
    rec: dict[str, Any] = {
        "min": lo, "p1": p1, "median": p50, "p99": p99, "max": hi,
        "noise_sigma": sigma, "noise_relative": sigma / max(p99 - p1, 1e-12),
        "stripe_power": stripe_power(img),
        "drift_px_per_slice": float(np.mean(np.hypot(drift[1:, 0], drift[1:, 1]))) if img.shape[0] > 1 else 0.0,
        "drift_total_px": float(np.max(np.hypot(cum[:, 0], cum[:, 1]))),
        "clipped_fraction": float(np.mean((img == lo) | (img == hi))),
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
        "drift_shifts_px": cum.tolist(),
        "estimators": "fibsynth.microscope" if m is not None and hasattr(m, "estimate_noise") else
                      "interim (reconstruct.inspect: Immerkaer noise, column-mean stripe power, phase correlation)",
    }
    return rec


# ------------------------------------------------------------------------------------------ corrections

def apply_corrections(img: np.ndarray, corrections: tuple[str, ...] | list[str], drift_shifts: Any = None
                      ) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply the corrections the user asked for, in a fixed order (align, destripe, flatten); returns the stack and a
    record. ``align``: integer shifts from the cumulative slice drift; ``destripe``: remove each slice's high-pass
    column-mean profile; ``flatten``: divide by a very smooth (sigma = 1/8 of the field) version of the slice."""
    from scipy.ndimage import gaussian_filter, uniform_filter1d

    bad = [c for c in corrections if c not in CORRECTIONS]
    if bad:
        raise FibsynthError(f"unknown correction(s) {', '.join(bad)} (choose from {', '.join(CORRECTIONS)})",
                            param="correct")
    out = img.astype(np.float32, copy=True)
    rec: dict[str, Any] = {"applied": [c for c in CORRECTIONS if c in corrections]}
    if "align" in corrections:
        cum = np.asarray(drift_shifts if drift_shifts is not None else np.cumsum(slice_drift(out), axis=0))
        sh = np.round(cum).astype(int)
        for k in range(out.shape[0]):
            out[k] = np.roll(out[k], (int(sh[k, 0]), int(sh[k, 1])), axis=(0, 1))
        rec["align_max_shift_px"] = int(np.abs(sh).max()) if sh.size else 0
    if "destripe" in corrections:
        cols = out.mean(axis=1, keepdims=True)
        hp = cols - uniform_filter1d(cols, size=max(3, out.shape[2] // 16), axis=2, mode="nearest")
        out -= hp
    if "flatten" in corrections:
        s = max(out.shape[1:]) / 8.0
        for k in range(out.shape[0]):
            bg = gaussian_filter(out[k].astype(np.float64), s, mode="reflect")
            out[k] = (out[k] / np.maximum(bg, 1e-6 * max(bg.max(), 1e-12)) * bg.mean()).astype(np.float32)
    return out, rec
