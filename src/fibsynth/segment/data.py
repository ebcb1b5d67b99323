"""Array side of segmentation: normalisation, 2.5D neighbour stacks, training patches, augmentation.

Conventions: volumes are (z, y, x) with z the slice (milling) index; several images of the same stack
(e.g. taken at several beam energies) are channels ``c`` of a (c, z, y, x) array; labels are uint8 with
1 = solid (gold). Pure NumPy, no torch import (the ``Dataset`` wrapper lives in :mod:`.train`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.ml.tiling import window_starts  # noqa: F401 (one definition, in the ML toolkit; used below)

MODES = ("2d", "2.5d", "3d")
EDGES = ("replicate", "reflect")
AUGMENTS = ("dihedral", "xflip", "none")


def check_mode(mode: str) -> str:
    m = str(mode).lower()
    if m not in MODES:
        raise FibsynthError(f"must be one of {', '.join(MODES)} (got {mode!r})", param="mode")
    return m


def spatial_dims(mode: str) -> int:
    return 3 if mode == "3d" else 2


def in_channels(mode: str, n_energy: int, k: int) -> int:
    """Network input channels: one per energy, times 2k+1 neighbouring slices in 2.5D."""
    return n_energy * (2 * k + 1) if mode == "2.5d" else n_energy


# ---------------------------------------------------------------------------------------- neighbours


def neighbour_indices(z: int | np.ndarray, nz: int, k: int, edge: str = "replicate") -> np.ndarray:
    """Global slice indices ``z-k .. z+k`` (last axis) for slice(s) ``z`` of a stack of ``nz`` slices.

    Beyond the stack ends: ``replicate`` repeats the end slice (-1 -> 0), ``reflect`` mirrors about it
    without repeating it (-1 -> 1, numpy's "reflect"). Works for scalar or array ``z``.
    """
    if edge not in EDGES:
        raise FibsynthError(f"must be one of {', '.join(EDGES)} (got {edge!r})", param="edge")
    z = np.asarray(z, dtype=np.int64)
    idx = z[..., None] + np.arange(-k, k + 1, dtype=np.int64)
    if nz == 1:
        return np.zeros_like(idx)
    if edge == "replicate":
        return np.clip(idx, 0, nz - 1)
    period = 2 * (nz - 1)
    m = np.mod(idx, period)
    return np.where(m < nz, m, period - m)


def stack_25d(block: np.ndarray, z_global: Sequence[int], block_start: int, nz: int, k: int,
              edge: str = "replicate") -> np.ndarray:
    """Network inputs for slices ``z_global`` from a (c, zb, y, x) ``block`` that holds global slices
    ``block_start .. block_start+zb-1``: returns (len(z), c*(2k+1), y, x), channel-major (all neighbours
    of energy 0, then of energy 1, ...)."""
    idx = neighbour_indices(np.asarray(z_global), nz, k, edge) - block_start
    if idx.min() < 0 or idx.max() >= block.shape[1]:
        raise ValueError("block does not hold the neighbours needed")  # internal misuse, not a user error
    c = block.shape[0]
    out = block[:, idx]  # (c, n, 2k+1, y, x)
    return np.ascontiguousarray(out.transpose(1, 0, 2, 3, 4).reshape(len(idx), c * (2 * k + 1), *block.shape[2:]))


def halo(mode: str, k: int) -> int:
    """Slices of context needed on each side of an output z-block in 2D/2.5D (3D uses its window grid)."""
    return k if mode == "2.5d" else 0


# ------------------------------------------------------------------------------------- normalisation


def sample_values(vol, max_values: int = 1 << 22) -> np.ndarray:
    """A deterministic, evenly strided subsample of a volume's values (whole slices, bounded count)."""
    nz = vol.shape[0]
    per_slice = int(np.prod(vol.shape[1:]))
    step = max(1, int(np.ceil(nz * per_slice / max_values)))
    zs = range(0, nz, step) if step <= nz else range(0, nz, nz)
    vals = [np.asarray(vol[z], dtype=np.float64).ravel() for z in zs]
    if step > nz:  # huge slices: also stride inside the slice
        vals = [v[:: int(np.ceil(step / nz))] for v in vals]
    return np.concatenate(vals)


def fit_normalisation(stacks: Sequence, percentiles: tuple[float, float]) -> tuple[float, float]:
    """(lo, hi) = percentiles of the gray values of all ``stacks`` (one energy): maps lo -> 0 and hi -> 1."""
    vals = np.concatenate([sample_values(s) for s in stacks])
    lo, hi = np.percentile(vals, percentiles)
    if not hi > lo:
        lo, hi = float(vals.min()), float(vals.max())
    if not hi > lo:
        raise FibsynthError("training images are constant: nothing to normalise")
    return float(lo), float(hi)


def normalise(data, lo: float, hi: float) -> np.ndarray:
    return ((np.asarray(data, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32)


# ------------------------------------------------------------------------------------------ patches


def patch_index(shapes: Sequence[tuple[int, int, int]], mode: str, patch: int, stride: int) -> np.ndarray:
    """Rows (volume, z, y0, x0) of all training patches; in 3D ``z`` is the patch's first slice."""
    rows = []
    for v, (nz, ny, nx) in enumerate(shapes):
        if min(ny, nx) < patch or (mode == "3d" and nz < patch):
            need = f"{patch} x {patch}" + (f" x {patch}" if mode == "3d" else "")
            raise FibsynthError(
                f"a training/validation volume of shape {(nz, ny, nx)} is smaller than the patch ({need}); "
                "use a smaller patch or larger stacks", param="patch"
            )
        zs = window_starts(nz, patch, stride) if mode == "3d" else range(nz)
        for z in zs:
            for y in window_starts(ny, patch, stride):
                for x in window_starts(nx, patch, stride):
                    rows.append((v, z, y, x))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)


def extract_patch(image: np.ndarray, label: np.ndarray, row, mode: str, patch: int, k: int,
                  edge: str) -> tuple[np.ndarray, np.ndarray]:
    """Input (channels, [z,] y, x) and label ([z,] y, x) of one patch from a (c, z, y, x) image."""
    _, z, y, x = (int(r) for r in row)
    ys, xs = slice(y, y + patch), slice(x, x + patch)
    if mode == "3d":
        return image[:, z:z + patch, ys, xs], label[z:z + patch, ys, xs]
    if mode == "2d":
        return image[:, z, ys, xs], label[z, ys, xs]
    idx = neighbour_indices(z, image.shape[1], k, edge)
    inp = image[:, idx, ys, xs]  # (c, 2k+1, p, p)
    return inp.reshape(-1, patch, patch), label[z, ys, xs]


def augment(inp: np.ndarray, lbl: np.ndarray, rng: np.random.Generator, kind: str, jitter: float,
            n_energy: int) -> tuple[np.ndarray, np.ndarray]:
    """FIB-SEM augmentation, in the imaged (y, x) plane only (z, the milling axis, is never flipped or
    mixed with y/x: voxels are anisotropic and shine-through comes from one side).

    ``dihedral``: random 90-degree rotation and flips of (y, x); ``xflip``: only flips of x (keeps the
    y-tilt of an oblique beam); ``none``. ``jitter``: per-energy gain 1+-jitter and offset +-jitter
    on the normalised gray values.
    """
    ax_y, ax_x = inp.ndim - 2, inp.ndim - 1
    if kind == "dihedral":
        r = int(rng.integers(4))
        if r:
            inp = np.rot90(inp, r, axes=(ax_y, ax_x))
            lbl = np.rot90(lbl, r, axes=(lbl.ndim - 2, lbl.ndim - 1))
        if rng.random() < 0.5:
            inp, lbl = np.flip(inp, ax_y), np.flip(lbl, lbl.ndim - 2)
    if kind in ("dihedral", "xflip") and rng.random() < 0.5:
        inp, lbl = np.flip(inp, ax_x), np.flip(lbl, lbl.ndim - 1)
    inp = np.ascontiguousarray(inp, dtype=np.float32)
    if jitter > 0:
        per = inp.shape[0] // n_energy
        gain = 1.0 + rng.uniform(-jitter, jitter, n_energy).astype(np.float32)
        off = rng.uniform(-jitter, jitter, n_energy).astype(np.float32)
        shape = (n_energy,) + (1,) * inp.ndim
        inp = (inp.reshape((n_energy, per) + inp.shape[1:]) * gain.reshape(shape) + off.reshape(shape)).reshape(inp.shape)
    return inp, np.ascontiguousarray(lbl)


def split_slabs(nz: int, val_fraction: float, min_slices: int) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Train and held-out z ranges of one stack: the last ``val_fraction`` of slices (contiguous) is held
    out; both parts need ``min_slices``. ``val_fraction == 0`` holds nothing out."""
    if val_fraction <= 0:
        return (0, nz), None
    n_val = max(min_slices, int(round(val_fraction * nz)))
    if nz - n_val < min_slices:
        raise FibsynthError(
            f"a stack of {nz} slices is too thin to hold out {n_val} slices for validation and keep "
            f">= {min_slices} for training; give validation stacks or change the fraction", param="val_fraction"
        )
    return (0, nz - n_val), (nz - n_val, nz)
