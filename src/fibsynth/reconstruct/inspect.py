"""Step 1: read and inspect the user's real stack.

Reads any stack fibsynth reads (TIFF, folder of slices, Zarr, .npy; any integer or float type) and measures what the
later steps need: gray-value histogram and percentiles, noise level, curtain-stripe power and slice-to-slice drift.
The estimators and the corrections are the microscope stage's (:mod:`fibsynth.microscope`, docs/microscope.md):
noise by the wavelet MAD, stripe power by the row-pair covariance, drift by registering each slice onto the one
before; corrections ``align`` (sub-pixel registration), ``destripe`` (wavelet-FFT filter) and ``flatten`` (shading).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError

CORRECTIONS = ("align", "destripe", "flatten")


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


# ------------------------------------------------------------------------------------------ inspection

ESTIMATORS = ("fibsynth.microscope: noise_sigma (wavelet MAD), stripe_profile_power (row-pair covariance), "
              "register_slices (phase correlation)")


def stripe_power(img: np.ndarray) -> float:
    """Curtain-stripe power: the variance of each slice's stripe profile
    (:func:`fibsynth.microscope.stripe_profile_power`) relative to the slice's variance, averaged over slices
    (0 = no vertical stripes)."""
    from fibsynth.microscope import stripe_profile_power

    var = img.reshape(img.shape[0], -1).var(axis=1) + 1e-12
    return float(np.mean(np.clip(stripe_profile_power(img), 0, None) / var))


def inspect_stack(img: np.ndarray) -> dict[str, Any]:
    """Histogram, percentiles, noise, stripe power and drift of a (z, y, x) stack."""
    from fibsynth.microscope import noise_sigma, register_slices

    lo, p1, p50, p99, hi = (float(v) for v in np.percentile(img, [0, 1, 50, 99, 100]))
    counts, edges = np.histogram(img, bins=128, range=(lo, hi if hi > lo else lo + 1))
    sigma = noise_sigma(img)
    cum = register_slices(img)  # cumulative (dy, dx) registering each slice onto slice 0
    step = np.diff(cum, axis=0)
    rec: dict[str, Any] = {
        "min": lo, "p1": p1, "median": p50, "p99": p99, "max": hi,
        "noise_sigma": sigma, "noise_relative": sigma / max(p99 - p1, 1e-12),
        "stripe_power": stripe_power(img),
        "drift_px_per_slice": float(np.mean(np.hypot(step[:, 0], step[:, 1]))) if len(step) else 0.0,
        "drift_total_px": float(np.max(np.hypot(cum[:, 0], cum[:, 1]))),
        "clipped_fraction": float(np.mean((img == lo) | (img == hi))),
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
        "drift_shifts_px": cum.tolist(),
        "estimators": ESTIMATORS,
    }
    return rec


# ------------------------------------------------------------------------------------------ corrections

def apply_corrections(img: np.ndarray, corrections: tuple[str, ...] | list[str], drift_shifts: Any = None
                      ) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply the corrections the user asked for, in a fixed order (align, destripe, flatten), with the microscope
    stage's functions; returns the stack and a record. ``align``: move each slice by the cumulative drift
    (``drift_shifts``, else :func:`fibsynth.microscope.register_slices`); ``destripe``:
    :func:`fibsynth.microscope.destripe`; ``flatten``: :func:`fibsynth.microscope.correct_shading` (polynomial
    background of the mean slice, which needs no two-phase model)."""
    import fibsynth.microscope as M

    bad = [c for c in corrections if c not in CORRECTIONS]
    if bad:
        raise FibsynthError(f"unknown correction(s) {', '.join(bad)} (choose from {', '.join(CORRECTIONS)})",
                            param="correct")
    out = np.asarray(img, np.float64)
    rec: dict[str, Any] = {"applied": [c for c in CORRECTIONS if c in corrections], "by": "fibsynth.microscope"}
    if "align" in corrections:
        sh = np.asarray(drift_shifts, np.float64) if drift_shifts is not None else M.register_slices(out)
        out = M.shift_slices(out, sh)
        rec["align_max_shift_px"] = float(np.abs(sh).max()) if sh.size else 0.0
    if "destripe" in corrections:
        out = M.destripe(out)
    if "flatten" in corrections:
        try:
            out, _, info = M.correct_shading(out, method="polynomial")
        except FibsynthError as exc:  # a stack whose mean is not positive
            raise FibsynthError(f"flatten: {exc.message}", param="correct") from None
        rec["flatten"] = {"method": info["method"]}
    return out.astype(np.float32), rec
