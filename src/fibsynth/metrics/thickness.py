"""Local thickness (Hildebrand & Ruegsegger 1997) of a binary structure, in nm, for 3D and 2D input.

Definition and discretisation (documented in ``docs/metrics.md``)
-----------------------------------------------------------------
* Voxels are points at their centres; ``spacing`` = (z, y, x) voxel size in nm (anisotropic allowed).
* ``dt(c)`` = Euclidean distance in nm from the centre of solid voxel ``c`` to the centre of the nearest
  *background* (pore) voxel inside the array (exact separable EDT, Felzenszwalb & Huttenlocher 2012, with
  anisotropic sampling). Space outside the array is *not* background: a ligament cut by the border is measured
  by its part inside the volume (same as ``scipy.ndimage.distance_transform_edt`` and porespy).
* The inscribed ball centred at ``c`` is ``B(c) = {p : |p - c| < dt(c)}`` (strict), i.e. every voxel whose
  centre is closer to ``c`` than the nearest pore voxel centre; it contains solid voxels only.
* ``local_thickness(p) = max{ 2 dt(c) : p in B(c) }`` -- the diameter ``2 dt`` of the largest such ball that
  covers ``p`` -- and 0 for pore voxels.

Consequence of the voxel-centre convention: a slab of ``t`` voxels gets ``t`` (t even) or ``t + 1`` (t odd)
voxel sizes; a digitised cylinder of radius R gets ``2R`` plus 0..2 voxels. I.e. the value exceeds the
continuous thickness by about half a voxel (along the thin direction) on average. This is the convention of
Hildebrand & Ruegsegger, BoneJ and porespy (porespy labels voxels with the *radius*, restricted to integer
radii); we keep the continuous EDT values (no radius binning).

Algorithm: exact EDT -> keep only "ridge" centres whose ball is not contained in a neighbour's ball
(``dt(n) >= dt(c) + |n - c|`` for some neighbour n means B(c) is inside B(n)) -> paint the balls, keeping the
maximum. Painting is numba-compiled: 3D runs in parallel over output z planes (race-free), 2D stacks in
parallel over slices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from fibsynth.errors import FibsynthError

_REL_EPS = 1e-9  # relative tolerance on squared distances (strict ball membership, ridge test)


# --------------------------------------------------------------------------------------------------------------
# exact squared EDT, separable (Felzenszwalb & Huttenlocher), anisotropic
# --------------------------------------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _edt1d(f, h, out, v, z):
    """Squared distance transform of a 1D sampled function f (inf = no seed) with sample spacing h."""
    n = f.shape[0]
    k = -1
    for q in range(n):
        if f[q] == np.inf:
            continue
        fq = f[q] + (q * h) ** 2
        while k >= 0:
            p = v[k]
            s = (fq - (f[p] + (p * h) ** 2)) / (2.0 * h * h * (q - p))
            if s <= z[k]:
                k -= 1
            else:
                break
        k += 1
        v[k] = q
        if k == 0:
            z[k] = -np.inf
        else:
            p = v[k - 1]
            z[k] = (fq - (f[p] + (p * h) ** 2)) / (2.0 * h * h * (q - p))
        z[k + 1] = np.inf
    if k < 0:
        for q in range(n):
            out[q] = np.inf
        return
    j = 0
    for q in range(n):
        while z[j + 1] < q:
            j += 1
        d = (q - v[j]) * h
        out[q] = d * d + f[v[j]]


@numba.njit(cache=True, nogil=True)
def _edt_sq_2d(solid, hy, hx, out):
    """Squared EDT (nm^2) of one 2D slice: distance from every pixel to the nearest pore pixel centre."""
    ny, nx = solid.shape
    m = max(ny, nx)
    f = np.empty(m)
    g = np.empty(m)
    v = np.empty(m, np.int64)
    z = np.empty(m + 1)
    big = np.inf
    # rows: binary input -> distance to the nearest pore pixel in the row by two sweeps (no envelope needed)
    for i in range(ny):
        last = -1
        for j in range(nx):
            if not solid[i, j]:
                last = j
                out[i, j] = 0.0
            elif last >= 0:
                out[i, j] = ((j - last) * hx) ** 2
            else:
                out[i, j] = big
        last = -1
        for j in range(nx - 1, -1, -1):
            if not solid[i, j]:
                last = j
            elif last >= 0:
                d = ((last - j) * hx) ** 2
                if d < out[i, j]:
                    out[i, j] = d
    # columns: lower envelope of parabolas (Felzenszwalb & Huttenlocher)
    for j in range(nx):
        for i in range(ny):
            f[i] = out[i, j]
        _edt1d(f[:ny], hy, g[:ny], v, z)
        for i in range(ny):
            out[i, j] = g[i]


@numba.njit(cache=True, parallel=True)
def _edt_sq_3d(solid, hz, hy, hx):
    nz, ny, nx = solid.shape
    out = np.empty((nz, ny, nx))
    for k in numba.prange(nz):
        _edt_sq_2d(solid[k], hy, hx, out[k])
    # pass along z, parallel over y rows
    for i in numba.prange(ny):
        f = np.empty(nz)
        g = np.empty(nz)
        v = np.empty(nz, np.int64)
        z = np.empty(nz + 1)
        for j in range(nx):
            for k in range(nz):
                f[k] = out[k, i, j]
            _edt1d(f, hz, g, v, z)
            for k in range(nz):
                out[k, i, j] = g[k]
    return out


# --------------------------------------------------------------------------------------------------------------
# ridge selection and ball painting
# --------------------------------------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _inner_r2_2d(r2, hy, hx):
    """Largest squared lattice distance strictly below r2: every pixel of the ball {|p - c|^2 < r2} lies within
    sqrt(of it) of c. Using it instead of r2 makes the containment test exact for the discrete balls' pixels
    and prunes far more centres (e.g. r = 5 px -> inner radius sqrt(20) = 4.47 px)."""
    lim = r2 * (1.0 - _REL_EPS)
    best = 0.0
    amax = int(np.sqrt(lim) / hy)
    for a in range(amax + 1):
        rem = lim - (a * hy) ** 2
        if rem <= 0.0:
            continue
        b = int(np.sqrt(rem) / hx)
        while b >= 0 and (a * hy) ** 2 + (b * hx) ** 2 >= lim:
            b -= 1
        while (a * hy) ** 2 + ((b + 1) * hx) ** 2 < lim:
            b += 1
        v = (a * hy) ** 2 + (b * hx) ** 2
        if v > best:
            best = v
    return best


@numba.njit(cache=True, nogil=True)
def _inner_r2_3d(r2, hz, hy, hx):
    lim = r2 * (1.0 - _REL_EPS)
    best = 0.0
    cmax = int(np.sqrt(lim) / hz)
    for c in range(cmax + 1):
        rem = lim - (c * hz) ** 2
        if rem <= 0.0:
            continue
        v = (c * hz) ** 2 + _inner_r2_2d(rem / (1.0 - _REL_EPS), hy, hx)
        if v > best:
            best = v
    return best


@numba.njit(cache=True, nogil=True)
def _ridge_2d(d2, hy, hx, cy, cx, cr2):
    """Collect centres whose disc is not contained in a neighbour's disc. Returns their count."""
    ny, nx = d2.shape
    n = 0
    for i in range(ny):
        for j in range(nx):
            r2 = d2[i, j]
            if r2 <= 0.0 or r2 == np.inf:
                continue
            r = np.sqrt(_inner_r2_2d(r2, hy, hx))
            keep = True
            for di in range(-1, 2):
                ii = i + di
                if ii < 0 or ii >= ny:
                    continue
                for dj in range(-1, 2):
                    jj = j + dj
                    if (di == 0 and dj == 0) or jj < 0 or jj >= nx:
                        continue
                    s = r + np.sqrt((di * hy) ** 2 + (dj * hx) ** 2)
                    if d2[ii, jj] > s * s * (1.0 + _REL_EPS):
                        keep = False
                        break
                if not keep:
                    break
            if keep:
                cy[n] = i
                cx[n] = j
                cr2[n] = r2
                n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _paint_2d(d2, hy, hx, out):
    """Local thickness (diameter, nm) of one slice given its squared EDT. ``out`` is overwritten."""
    ny, nx = d2.shape
    npx = ny * nx
    cy = np.empty(npx, np.int64)
    cx = np.empty(npx, np.int64)
    cr2 = np.empty(npx)
    n = _ridge_2d(d2, hy, hx, cy, cx, cr2)
    order = np.argsort(-cr2[:n])  # largest first: later (smaller) balls only fill what is still lower
    for i in range(ny):
        for j in range(nx):
            out[i, j] = 0.0
    for t in range(n):
        c = order[t]
        i0 = cy[c]
        j0 = cx[c]
        r2 = cr2[c] * (1.0 - _REL_EPS)
        dia = 2.0 * np.sqrt(cr2[c])
        ri = int(np.sqrt(r2) / hy)
        for di in range(-ri, ri + 1):
            i = i0 + di
            if i < 0 or i >= ny:
                continue
            rem = r2 - (di * hy) ** 2
            if rem <= 0.0:
                continue
            rj = int(np.sqrt(rem) / hx)
            # exact strict test at the span ends (sqrt/int rounding)
            while rj >= 0 and (rj * hx) ** 2 >= rem:
                rj -= 1
            while ((rj + 1) * hx) ** 2 < rem:
                rj += 1
            for j in range(max(0, j0 - rj), min(nx, j0 + rj + 1)):
                if dia > out[i, j]:
                    out[i, j] = dia


@numba.njit(cache=True, parallel=True)
def _local_thickness_stack(stack, hy, hx):
    """2D local thickness of every slice stack[k] (float32 diameters, nm)."""
    nk, ny, nx = stack.shape
    out = np.zeros((nk, ny, nx), np.float32)
    for k in numba.prange(nk):
        d2 = np.empty((ny, nx))
        _edt_sq_2d(stack[k], hy, hx, d2)
        o = np.empty((ny, nx))
        _paint_2d(d2, hy, hx, o)
        for i in range(ny):
            for j in range(nx):
                out[k, i, j] = o[i, j]
    return out


@numba.njit(cache=True, parallel=True)
def _stack_mean_thickness(stack, hy, hx):
    """Sum of 2D local thickness over all solid pixels of all slices, and the solid pixel count (per slice)."""
    nk, ny, nx = stack.shape
    sums = np.zeros(nk)
    counts = np.zeros(nk, np.int64)
    for k in numba.prange(nk):
        d2 = np.empty((ny, nx))
        _edt_sq_2d(stack[k], hy, hx, d2)
        o = np.empty((ny, nx))
        _paint_2d(d2, hy, hx, o)
        s = 0.0
        c = 0
        for i in range(ny):
            for j in range(nx):
                if stack[k, i, j]:
                    s += o[i, j]
                    c += 1
        sums[k] = s
        counts[k] = c
    return sums, counts


@numba.njit(cache=True, parallel=True)
def _ridge_flags_3d(d2, hz, hy, hx):
    nz, ny, nx = d2.shape
    keep = np.zeros((nz, ny, nx), np.bool_)
    for k in numba.prange(nz):
        for i in range(ny):
            for j in range(nx):
                r2 = d2[k, i, j]
                if r2 <= 0.0 or r2 == np.inf:
                    continue
                r = np.sqrt(_inner_r2_3d(r2, hz, hy, hx))
                ok = True
                for dk in range(-1, 2):
                    kk = k + dk
                    if kk < 0 or kk >= nz:
                        continue
                    for di in range(-1, 2):
                        ii = i + di
                        if ii < 0 or ii >= ny:
                            continue
                        for dj in range(-1, 2):
                            jj = j + dj
                            if (dk == 0 and di == 0 and dj == 0) or jj < 0 or jj >= nx:
                                continue
                            s = r + np.sqrt((dk * hz) ** 2 + (di * hy) ** 2 + (dj * hx) ** 2)
                            if d2[kk, ii, jj] > s * s * (1.0 + _REL_EPS):
                                ok = False
                                break
                        if not ok:
                            break
                    if not ok:
                        break
                keep[k, i, j] = ok
    return keep


@numba.njit(cache=True, parallel=True)
def _paint_3d(shape, cz, cy, cx, cr2, zstart, hz, hy, hx, rzmax):
    """Paint balls (centres sorted by z; zstart[k] = first centre with z >= k). Parallel over output planes."""
    nz, ny, nx = shape
    out = np.zeros((nz, ny, nx), np.float32)
    for k in numba.prange(nz):
        lo = zstart[max(0, k - rzmax)]
        hi = zstart[min(nz, k + rzmax + 1)]
        plane = out[k]
        for c in range(lo, hi):
            dz2 = ((cz[c] - k) * hz) ** 2
            r2 = cr2[c] * (1.0 - _REL_EPS)
            rem_z = r2 - dz2
            if rem_z <= 0.0:
                continue
            dia = np.float32(2.0 * np.sqrt(cr2[c]))
            i0 = cy[c]
            j0 = cx[c]
            ri = int(np.sqrt(rem_z) / hy)
            for di in range(-ri, ri + 1):
                i = i0 + di
                if i < 0 or i >= ny:
                    continue
                rem = rem_z - (di * hy) ** 2
                if rem <= 0.0:
                    continue
                rj = int(np.sqrt(rem) / hx)
                while rj >= 0 and (rj * hx) ** 2 >= rem:
                    rj -= 1
                while ((rj + 1) * hx) ** 2 < rem:
                    rj += 1
                for j in range(max(0, j0 - rj), min(nx, j0 + rj + 1)):
                    if dia > plane[i, j]:
                        plane[i, j] = dia
    return out


# --------------------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------------------
def _spacing(spacing: Sequence[float] | float | None, ndim: int) -> tuple[float, ...]:
    """(z, y, x) or, for 2D arrays, (y, x) nm per voxel, through the one voxel-size normaliser."""
    from fibsynth.config import VoxelSize

    if spacing is None:
        return (1.0,) * ndim
    if ndim == 2 and not np.isscalar(spacing):
        yx = tuple(spacing)  # type: ignore[arg-type]
        if len(yx) != 2:
            raise FibsynthError(f"must have 2 values (y, x) for a 2D array, got {len(yx)}", param="spacing")
        spacing = (yx[0], *yx)  # z unused
    return VoxelSize.coerce(spacing, param="spacing").zyx()[3 - ndim:]


def _as_bool(solid: np.ndarray) -> np.ndarray:
    a = np.asarray(solid)
    if a.ndim not in (2, 3):
        raise FibsynthError(f"local thickness needs a 2D or 3D array, got shape {a.shape}")
    return np.ascontiguousarray(a != 0)


def edt_nm(solid: np.ndarray, spacing: Sequence[float] | float | None = None) -> np.ndarray:
    """Exact Euclidean distance (nm, float64) from each voxel to the nearest pore voxel centre (0 in pores).

    Voxels of an array without any pore voxel get ``inf``.
    """
    a = _as_bool(solid)
    sp = _spacing(spacing, a.ndim)
    if a.ndim == 2:
        d2 = np.empty(a.shape)
        _edt_sq_2d(a, sp[0], sp[1], d2)
    else:
        d2 = _edt_sq_3d(a, *sp)
    return np.sqrt(d2)


def local_thickness(solid: np.ndarray, spacing: Sequence[float] | float | None = None) -> np.ndarray:
    """Local thickness (nm, float32): for every solid voxel the diameter ``2 dt(c)`` of the largest inscribed
    ball ``{p : |p - c| < dt(c)}`` covering it; 0 outside the solid. ``spacing`` = (z, y, x) or (y, x) nm per
    voxel (default 1 = voxel units). An array that is solid everywhere (no pore voxel) raises FibsynthError.
    """
    a = _as_bool(solid)
    sp = _spacing(spacing, a.ndim)
    if a.all() and a.size:
        raise FibsynthError("local thickness is undefined: the array has no pore voxel")
    if a.ndim == 2:
        return _local_thickness_stack(a[None], sp[0], sp[1])[0]
    d2 = _edt_sq_3d(a, *sp)
    keep = _ridge_flags_3d(d2, *sp)
    idx = np.flatnonzero(keep)  # C order => sorted by z
    del keep
    cz, cy, cx = (c.astype(np.int64) for c in np.unravel_index(idx, a.shape))
    cr2 = d2.ravel()[idx]
    del d2, idx
    zstart = np.searchsorted(cz, np.arange(a.shape[0] + 1)).astype(np.int64)
    rzmax = int(np.sqrt(cr2.max()) / sp[0]) + 1 if cr2.size else 0
    return _paint_3d(a.shape, cz, cy, cx, cr2, zstart, sp[0], sp[1], sp[2], rzmax)


def mean_ligament_diameter(solid: np.ndarray, spacing: Sequence[float] | float | None = None) -> float:
    """Volume-weighted mean ligament diameter (nm): mean of :func:`local_thickness` over all solid voxels.

    Returns NaN when there is no solid voxel.
    """
    a = _as_bool(solid)
    if not a.any():
        return float("nan")
    lt = local_thickness(a, spacing)
    return float(lt[a].astype(np.float64).mean())


def planar_thickness_stack(stack: np.ndarray, spacing_yx: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """2D local thickness (nm) of every slice ``stack[k]`` of a 3D array (slices independent, parallel)."""
    a = np.ascontiguousarray(np.asarray(stack) != 0)
    if a.ndim != 3:
        raise FibsynthError(f"planar_thickness_stack needs a 3D array, got shape {a.shape}")
    hy, hx = _spacing(spacing_yx, 2)
    return _local_thickness_stack(a, hy, hx)


def planar_mean_diameter(stack: np.ndarray, spacing_yx: Sequence[float] = (1.0, 1.0)) -> float:
    """Mean 2D local thickness (nm) over all solid pixels of all slices ``stack[k]`` (NaN if no solid).

    Slices that are entirely solid have no inscribed-disc diameter and are excluded (with their pixels).
    """
    a = np.ascontiguousarray(np.asarray(stack) != 0)
    if a.ndim != 3:
        raise FibsynthError(f"planar_mean_diameter needs a 3D array, got shape {a.shape}")
    hy, hx = _spacing(spacing_yx, 2)
    full = a.reshape(a.shape[0], -1).all(axis=1)
    if full.any():
        a = np.ascontiguousarray(a[~full])
    if a.shape[0] == 0:
        return float("nan")
    sums, counts = _stack_mean_thickness(a, hy, hx)
    n = counts.sum()
    return float(sums.sum() / n) if n else float("nan")
