"""The shine-through projection: a gray image per slice from the solid in the next K slices.

Model (equations in ``docs/fastsim.md``). Slice k's face is the plane z = k dz (z = milling direction, depth
measured along the face normal). The beam at pixel (y, x) enters the face at (z, y) = (k dz, (y + 1/2) dy) with
direction (0, sin a, cos a) (tilted within the y-z plane, as in the Monte Carlo) and runs in a straight line.
Along this path the voxels it crosses are visited in order (exact 2-D DDA in the y-z plane; x is constant; y is
periodic like the Monte Carlo's lateral boundaries). The first solid voxel, entered at depth d (the z of the
entry point minus k dz; d = 0 if the face voxel itself is solid), gives the pixel value

    I = w_pore + (w(d) - w_pore) * F           if such a voxel lies within slices k .. k+K-1,
    I = w_pore                                 otherwise,
    w(d) = eta_net(E, Z_solid, d),  w_pore = eta_net(E, Z_solid, d_far)  (d_far: gold no longer shows),

where F is the solid fraction of the hit voxel's slice in a lateral square window of half-width
r = round(spread * d / pixel) pixels centred on the hit (periodic). The window stands for the lateral spreading
of the electrons on their way to depth d and back: the calibration curve eta(d) is for laterally infinite gold,
and gold that fills only part of the spread beam's footprint contributes in proportion. F = 1 at the face
(d = 0) and for laterally extended solid (so a flat film reproduces the calibration exactly); ``spread = 0`` is
the pure first-hit model. Window sums come from per-slice summed-area tables (O(1) per pixel).

The path geometry is the same for every ray (they all start at a slice top and a pixel centre), so the list of
(slice offset, y offset, entry depth) cells is computed once; the weights w are evaluated once per cell; the
per-voxel work is a short march with early exit (numba, parallel over slices).

``normalise="group"`` (default, the paper's "normalised across groups of atomic number and voltage") maps the
(E, material) group's range onto [0, 1]: I' = (I - w_pore) / (w(0) - w_pore), so face gold is 1 and pore 0.
``normalise="eta"`` keeps backscatter coefficients. Weights are made non-increasing in depth (running minimum)
when the solid backscatters more than the pore filling, which removes small network wiggles.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numba as nb
import numpy as np

from fibsynth.errors import FibsynthError

MAX_SLICES_BEHIND = 512
# Lateral window half-width per nm of depth (dimensionless): chosen on a leveled-wave structure (seed 3) against
# the Monte Carlo at 1, 2 and 4 keV (benchmarks/bench_fastsim.py reports on another structure, seed 1).
DEFAULT_SPREAD = 0.5
METHODS = ("window", "layered", "depth_layers")
#: solid_depth of the thin-solid model: e-folding depth of the hit's solid fraction as a fraction of the solid's
#: Kanaya-Okayama range (gold: 1.6 nm at 2 keV, 5.0 nm at 4 keV); chosen on the training structures of
#: experiments/fastpath_sets.py (4 keV). The paired translator's projection channel uses it.
THIN_SOLID_DEPTH = 0.085
#: the default keeps the earlier model (a solid voxel at the face is bulk solid) for this release
DEFAULT_SOLID_DEPTH = 0.0
#: the layered march stops when less than this fraction of the beam is left
LAYERED_T_MIN = 1e-3


def default_slices_behind(energy_kev: float, slice_nm: float, pore: str = "epoxy") -> int:
    """K = ceil(R_KO(pore, E) / (2 dz)): half the Kanaya-Okayama range of the pore filling, the classical
    backscatter information depth, in slices (at least 1)."""
    from fibsynth.physics.backscatter import kanaya_okayama_range_nm

    r = kanaya_okayama_range_nm(pore, energy_kev)
    return int(max(1, min(MAX_SLICES_BEHIND, math.ceil(0.5 * r / slice_nm - 1e-9))))


def ray_cells(slices_behind: int, dz: float, dy: float, incidence_deg: float) -> np.ndarray:
    """Cells crossed by a ray from (z=0, y=dy/2) with direction (sin a, cos a) in (y, z), within slices
    0..K-1: rows (slice offset j, y offset i, entry depth nm), in the order the ray meets them."""
    a = math.radians(incidence_deg)
    sy, cz = math.sin(a), math.cos(a)
    zmax = slices_behind * dz
    cells = []
    j, i = 0, 0
    z, y = 0.0, 0.5 * dy  # position (z, y) in nm relative to slice top / pixel corner
    depth = 0.0
    while j < slices_behind:
        cells.append((j, i, depth))
        # distance along the ray to the next z boundary and the next y boundary
        tz = ((j + 1) * dz - z) / cz
        ty = ((i + 1) * dy - y) / sy if sy > 1e-12 else math.inf
        if tz <= ty:
            t = tz
            z, y = (j + 1) * dz, y + t * sy
            j += 1
            if ty - tz < 1e-9 * dy:  # exactly through a corner: also step in y
                i += 1
        else:
            t = ty
            z, y = z + t * cz, (i + 1) * dy
            i += 1
        depth = z
        if z >= zmax - 1e-9 * dz:
            break
    return np.array(cells, dtype=np.float64).reshape(-1, 3)


@nb.njit(parallel=True, cache=True)
def _summed_area(vol):
    """Per-slice summed-area tables: sat[z, y, x] = sum of vol[z, :y, :x] (int32)."""
    nz, ny, nx = vol.shape
    sat = np.zeros((nz, ny + 1, nx + 1), np.int32)
    for z in nb.prange(nz):
        for y in range(ny):
            run = 0
            for x in range(nx):
                run += vol[z, y, x]
                sat[z, y + 1, x + 1] = sat[z, y, x + 1] + run
    return sat


@nb.njit(parallel=True, cache=True)
def _summed_area_f(vol):
    """Per-slice summed-area tables of a float volume (float64)."""
    nz, ny, nx = vol.shape
    sat = np.zeros((nz, ny + 1, nx + 1), np.float64)
    for z in nb.prange(nz):
        for y in range(ny):
            run = 0.0
            for x in range(nx):
                run += vol[z, y, x]
                sat[z, y + 1, x + 1] = sat[z, y, x + 1] + run
    return sat


def depth_smoothed(vol: np.ndarray, dz: float, length_nm: float) -> np.ndarray:
    """dens[z] = sum_m k_m vol[z + m] / sum_m k_m, k_m = exp(-m dz / length) over m < ceil(3 length / dz) + 1 and
    z + m inside the volume (the kernel is renormalised at the end of the structure, which is not taken as thin):
    the solid's share of the first nanometres below a face."""
    n = int(math.ceil(3.0 * length_nm / dz)) + 1
    kw = np.exp(-np.arange(n) * dz / length_nm)
    out = np.zeros(vol.shape, np.float32)
    norm = np.zeros(vol.shape[0], np.float64)
    nz = vol.shape[0]
    for m in range(min(n, nz)):
        out[: nz - m] += np.float32(kw[m]) * vol[m:]
        norm[: nz - m] += kw[m]
    out /= norm.astype(np.float32)[:, None, None]
    return np.minimum(out, np.float32(1.0), out=out)


@nb.njit(inline="always")
def _rect(sat, z, y0, y1, x0, x1):
    # sum over rows y0..y1-1, columns x0..x1-1 (0 <= y0 <= y1 <= ny, same for x)
    return sat[z, y1, x1] - sat[z, y0, x1] - sat[z, y1, x0] + sat[z, y0, x0]


@nb.njit(inline="always")
def _wrapped_mean(sat, z, yc, xc, ry, rx, ny, nx):
    """Mean of the solid in the periodic window [yc-ry, yc+ry] x [xc-rx, xc+rx] of slice z."""
    hy = min(2 * ry + 1, ny)
    hx = min(2 * rx + 1, nx)
    y0 = yc - ry if hy < ny else 0
    x0 = xc - rx if hx < nx else 0
    if y0 < 0:
        y0 += ny
    if x0 < 0:
        x0 += nx
    if y0 + hy <= ny and x0 + hx <= nx:  # the common case: no wrap
        return _rect(sat, z, y0, y0 + hy, x0, x0 + hx) / (hy * hx)
    total = sat[z, 0, 0] * 0
    ya, yn = y0, hy
    while yn > 0:
        yb = min(ny, ya + yn)
        xa, xn = x0, hx
        while xn > 0:
            xb = min(nx, xa + xn)
            total += _rect(sat, z, ya, yb, xa, xb)
            xn -= xb - xa
            xa = 0
        yn -= yb - ya
        ya = 0
    return total / (hy * hx)


@nb.njit(parallel=True, cache=True)
def _project(vol, dens, sat, k0, k1, dj, di, ry, rx, w, w_none, out):
    """out[k - k0, y, x] = w_none + (w[c] - w_none) * F for the first cell c of the ray from (k, y, x) that holds
    solid (F: solid fraction of the lateral window of half-widths ry[c], rx[c] around the hit; F = 1 without a
    window), else w_none. Cells are sorted by depth (dj non-decreasing): cells past the last slice end the march.

    Per image row the first hits are found first, then bucketed by cell (counting sort) so that the window
    queries of one cell run along x over the same two summed-area rows (cache friendly)."""
    nz, ny, nx = vol.shape
    nc = dj.size
    for kk in nb.prange(k1 - k0):
        k = k0 + kk
        ncz = 0
        while ncz < nc and k + dj[ncz] < nz:
            ncz += 1
        rows = np.empty(ncz, np.int64)
        zs = np.empty(ncz, np.int64)
        hit = np.empty(nx, np.int64)
        start = np.empty(ncz + 1, np.int64)
        order = np.empty(nx, np.int64)
        for y in range(ny):
            for c in range(ncz):
                rows[c] = (y + di[c]) % ny
                zs[c] = k + dj[c]
            start[:] = 0
            for x in range(nx):
                h = -1
                for c in range(ncz):
                    if vol[zs[c], rows[c], x] != 0:
                        h = c
                        break
                hit[x] = h
                if h < 0:
                    out[kk, y, x] = w_none
                elif ry[h] == 0 and rx[h] == 0:
                    v = dens[zs[h], rows[h], x]
                    out[kk, y, x] = w[h] if v >= 1 else w_none + (w[h] - w_none) * v
                    hit[x] = -1
                else:
                    start[h + 1] += 1
            for c in range(ncz):
                start[c + 1] += start[c]
            for x in range(nx):
                h = hit[x]
                if h >= 0:
                    order[start[h]] = x
                    start[h] += 1
            # start[c] now holds the end of bucket c; bucket c begins where bucket c-1 ended
            b0 = 0
            for c in range(ncz):
                b1 = start[c]
                if b1 == b0:
                    continue
                z, yc, r_y, r_x = zs[c], rows[c], ry[c], rx[c]
                hy = min(2 * r_y + 1, ny)
                hx = min(2 * r_x + 1, nx)
                ya = yc - r_y
                scale = (w[c] - w_none) / (hy * hx)
                if hy < ny and ya >= 0 and ya + hy <= ny and hx < nx:
                    top = sat[z, ya]
                    bot = sat[z, ya + hy]
                    for t in range(b0, b1):
                        x = order[t]
                        xa = x - r_x
                        if xa >= 0 and xa + hx <= nx:
                            cnt = bot[xa + hx] - top[xa + hx] - bot[xa] + top[xa]
                            out[kk, y, x] = w_none + scale * cnt
                        else:
                            f = _wrapped_mean(sat, z, yc, x, r_y, r_x, ny, nx)
                            out[kk, y, x] = w_none + (w[c] - w_none) * f
                else:
                    for t in range(b0, b1):
                        x = order[t]
                        f = _wrapped_mean(sat, z, yc, x, r_y, r_x, ny, nx)
                        out[kk, y, x] = w_none + (w[c] - w_none) * f
                b0 = b1


@nb.njit(parallel=True, cache=True)
def _project_layered(vol, sat, k0, k1, dj, di, ry, rx, w, w_none, t_min, out):
    """The layered model: out = w_none + sum_c (w[c] - w_none) F_c T_c over the ray's cells c in depth order,
    F_c = solid fraction of the lateral window (half-widths ry[c], rx[c]) around the ray at cell c (the voxel itself
    where the window is 0), T_c = prod_{c' < c} (1 - F_c') the fraction of the beam not yet stopped by gold in
    front. The march ends when T < t_min or past the last slice."""
    nz, ny, nx = vol.shape
    nc = dj.size
    for kk in nb.prange(k1 - k0):
        k = k0 + kk
        for y in range(ny):
            for x in range(nx):
                t = 1.0
                acc = 0.0
                for c in range(nc):
                    z = k + dj[c]
                    if z >= nz:
                        break
                    yc = (y + di[c]) % ny
                    if ry[c] == 0 and rx[c] == 0:
                        f = 1.0 if vol[z, yc, x] != 0 else 0.0
                    else:
                        f = _wrapped_mean(sat, z, yc, x, ry[c], rx[c], ny, nx)
                    if f > 0.0:
                        acc += (w[c] - w_none) * f * t
                        t *= 1.0 - f
                        if t < t_min:
                            break
                out[kk, y, x] = w_none + acc


def depth_weights(model, energy_kev: float, z_solid: float, depths: np.ndarray, *, d_far: float,
                  monotone: bool = True) -> tuple[np.ndarray, float]:
    """w(d) = eta_net(E, Z, d) at the cells' entry depths, and w_pore = eta_net(E, Z, d_far)."""
    grid = np.concatenate([np.asarray(depths, float), [d_far]])
    eta = model.predict(energy_kev, z_solid, grid)
    w, w_none = eta[:-1], float(eta[-1])
    if monotone and w.size and w[0] > w_none:
        order = np.argsort(grid[:-1], kind="stable")
        ws = np.minimum.accumulate(w[order])
        w = np.empty_like(ws)
        w[order] = np.maximum(ws, w_none)
    return w, w_none


# ------------------------------------------------------------------------------------------ open pores (vacuum)

N_ESCAPE_DIRECTIONS = 32  # cosine-law directions per wall hit for the escape fraction G


def escape_directions(n: int = N_ESCAPE_DIRECTIONS) -> np.ndarray:
    """``n`` unit vectors (rows x, y, z) distributed by the cosine law about +z (a deterministic Hammersley set:
    sin^2 theta = (i + 1/2) / n, azimuth by the golden ratio)."""
    i = np.arange(n)
    s2 = (i + 0.5) / n
    phi = 2.0 * np.pi * ((i * 0.6180339887498949) % 1.0)
    st, ct = np.sqrt(s2), np.sqrt(1.0 - s2)
    return np.stack([st * np.cos(phi), st * np.sin(phi), ct], axis=1)


@nb.njit(cache=True)
def _solid_at(vol, k, z, y, x):
    """Solid at voxel (z, y, x) of slice k's sample: milled above the face (z < k), periodic in y and x, the last
    slice continued below the stack."""
    nz, ny, nx = vol.shape
    if z < k:
        return 0
    if z >= nz:
        z = nz - 1
    return vol[z, y % ny, x % nx]


@nb.njit(cache=True)
def _escape_fraction(vol, k, pz, py, px, nvec, dirs, dz, dy, dx, max_steps):
    """Fraction of cosine-law directions about the wall normal ``nvec`` (x, y, z) from the point (pz, py, px) (nm)
    that reach the face plane z = k dz through vacuum (a march in steps of half the smallest voxel edge; periodic
    in x and y; a direction that meets solid, or runs below the stack, is blocked)."""
    nz, ny, nx = vol.shape
    nx_, ny_, nz_ = nvec[0], nvec[1], nvec[2]
    # an orthonormal frame (t1, t2, n)
    if abs(nz_) < 0.9:
        ax, ay, az = 0.0, 0.0, 1.0
    else:
        ax, ay, az = 1.0, 0.0, 0.0
    t1x = ay * nz_ - az * ny_
    t1y = az * nx_ - ax * nz_
    t1z = ax * ny_ - ay * nx_
    t1n = math.sqrt(t1x * t1x + t1y * t1y + t1z * t1z)
    t1x /= t1n
    t1y /= t1n
    t1z /= t1n
    t2x = ny_ * t1z - nz_ * t1y
    t2y = nz_ * t1x - nx_ * t1z
    t2z = nx_ * t1y - ny_ * t1x
    h = 0.5 * min(dz, min(dy, dx))
    zface = k * dz
    zbot = nz * dz
    ok = 0
    for m in range(dirs.shape[0]):
        a, b, c = dirs[m, 0], dirs[m, 1], dirs[m, 2]
        vx = a * t1x + b * t2x + c * nx_
        vy = a * t1y + b * t2y + c * ny_
        vz = a * t1z + b * t2z + c * nz_
        z, y, x = pz, py, px
        for _ in range(max_steps):
            z += h * vz
            y += h * vy
            x += h * vx
            if z < zface:
                ok += 1
                break
            if z >= zbot:
                break
            if _solid_at(vol, k, int(z / dz), int(math.floor(y / dy)), int(math.floor(x / dx))):
                break
    return ok / dirs.shape[0]


@nb.njit(cache=True)
def _wall_normal(vol, k, z, y, x):
    """Outward normal (x, y, z) of the solid at voxel (z, y, x) of slice k: minus the Sobel gradient of the solid
    over the 3 x 3 x 3 neighbourhood (milled material above the face counts as vacuum). Zero if flat."""
    gx = 0.0
    gy = 0.0
    gz = 0.0
    for a in range(-1, 2):
        for b in range(-1, 2):
            for c in range(-1, 2):
                w = (2.0 if a == 0 else 1.0) * (2.0 if b == 0 else 1.0) * (2.0 if c == 0 else 1.0)
                v = _solid_at(vol, k, z + a, y + b, x + c) * w
                gz += a * v
                gy += b * v
                gx += c * v
    return -gx, -gy, -gz


@nb.njit(parallel=True, cache=True)
def _project_open(hit, lab, k0, k1, dj, di, depth, dz, dy, dx, by, bz, p_arnal, scale, dirs, max_steps, out):
    """Open pores: out[k - k0, y, x] = scale[m] A(theta; p_arnal[m]) G for the first solid cell c along the ray
    (through vacuum: no attenuation), m its label in ``lab``, 0 if the ray leaves the stack; A(theta) =
    ((1 + cos a) / (1 + cos theta))^p (Arnal et al. 1969, relative to the face at incidence a; theta between the
    beam and the wall normal), G the escape fraction of the wall's cosine-law emission through the open pore
    (:func:`_escape_fraction`; 1 at the face). ``hit``: 1 where any solid (the geometry); the binary projection
    passes its volume as both, with ``scale = [0, 1]``, the n-phase one (:mod:`fibsynth.fastsim.multiphase`) each
    label's material."""
    nz, ny, nx = hit.shape
    nc = dj.size
    ty = by / bz
    ref = 1.0 + bz
    for kk in nb.prange(k1 - k0):
        k = k0 + kk
        nvec = np.empty(3)
        for y in range(ny):
            for x in range(nx):
                h = -1
                for c in range(nc):
                    z = k + dj[c]
                    if z >= nz:
                        break
                    if hit[z, (y + di[c]) % ny, x] != 0:
                        h = c
                        break
                if h < 0:
                    out[kk, y, x] = 0.0
                    continue
                zc = k + dj[h]
                yc = (y + di[h]) % ny
                m = lab[zc, yc, x]
                if depth[h] <= 0.0:
                    out[kk, y, x] = scale[m] * 1.0  # solid at the face
                    continue
                gx, gy, gz = _wall_normal(hit, k, zc, yc, x)
                g = math.sqrt(gx * gx + gy * gy + gz * gz)
                ct = 0.0
                if g > 0.0:
                    ct = -(gy * by + gz * bz) / g
                if ct <= 0.05:  # flat or facing away at voxel resolution: take the wall as facing the beam
                    nvec[0], nvec[1], nvec[2] = 0.0, -by, -bz
                    ct = 1.0
                else:
                    nvec[0], nvec[1], nvec[2] = gx / g, gy / g, gz / g
                # entry point of the ray into the hit voxel, moved back a hair into the pore
                d = depth[h] - 1e-3 * dz
                pz = k * dz + d
                py = (y + 0.5) * dy + d * ty
                px = (x + 0.5) * dx
                gesc = _escape_fraction(hit, k, pz, py, px, nvec, dirs, dz, dy, dx, max_steps)
                out[kk, y, x] = scale[m] * ((ref / (1.0 + ct)) ** p_arnal[m] * gesc)


def project_open(vol: np.ndarray, voxel_zyx, e: float, a: float, k0: int, k1: int, *, solid: str, model,
                 normalise: str, slices_behind: int) -> tuple[np.ndarray, dict]:
    """The projection of open (empty) pores: see :func:`project` (``pore="vacuum"``) and docs/fastsim.md.
    ``vol`` uint8 (1 = solid), ``voxel_zyx`` in nm, ``e`` keV, ``a`` degrees, slices ``k0:k1``, rays followed
    through ``slices_behind`` slices (the whole stack by default: vacuum attenuates nothing)."""
    from fibsynth.physics.backscatter import effective_z
    from fibsynth.physics.materials import get_material

    dz, dy, dx = voxel_zyx
    nz = vol.shape[0]
    k = int(slices_behind)
    z_solid = effective_z(get_material(solid, "solid"))
    w_top = float(model.predict(e, z_solid, 0.0))  # bare solid: no filling to attenuate anything
    p_arnal = 9.0 / math.sqrt(z_solid)
    cells = ray_cells(k, dz, dy, a)
    by, bz = math.sin(math.radians(a)), math.cos(math.radians(a))
    out = np.empty((k1 - k0,) + vol.shape[1:], np.float32)
    max_steps = int(4 * (vol.shape[0] * dz + vol.shape[1] * dy + vol.shape[2] * dx) / (0.5 * min(dz, dy, dx)))
    _project_open(vol, vol, k0, k1, cells[:, 0].astype(np.int64), cells[:, 1].astype(np.int64), cells[:, 2].copy(),
                  float(dz), float(dy), float(dx), by, bz, np.array([0.0, p_arnal]), np.array([0.0, 1.0]),
                  escape_directions(), max_steps, out)
    if normalise == "eta":
        out *= np.float32(w_top)
    record = {"energy_kev": e, "slices_behind": k, "slices_behind_default": min(MAX_SLICES_BEHIND, nz),
              "incidence_deg": a, "solid": solid, "pore": "vacuum", "Z_solid": z_solid, "normalise": normalise,
              "eta_solid_surface": w_top, "eta_pore": 0.0, "open_pores": True, "arnal_exponent": p_arnal,
              "escape_directions": N_ESCAPE_DIRECTIONS, "cells": cells.tolist(), "slices": [k0, k1]}
    return out, record


def project(structure: np.ndarray, voxel_zyx: tuple[float, float, float], energy_kev: float, *,
            slices_behind: int | None = None, incidence_deg: float = 38.0, solid: str = "gold",
            pore: str = "epoxy", model=None, normalise: str = "group", slices: tuple[int, int] | None = None,
            spread: float = DEFAULT_SPREAD, method: str = "window",
            solid_depth: float | None = None) -> tuple[np.ndarray, dict]:
    """Project a binary structure (z, y, x; 1 = solid) into one float32 image per slice. Returns the images
    and a record of the parameters (K, weights, pore value).

    ``method="window"`` (default): the first solid voxel along the ray, scaled by its window's solid fraction.
    ``method="layered"``: every cell along the ray contributes in proportion to its window's solid fraction and to
    the part of the beam that the gold in front has not stopped (docs/fastsim.md, section 4).
    ``method="depth_layers"``: the thin-solid window projection plus the gold in the layers behind the face,
    weighted by Monte Carlo-fitted weights per energy (:func:`project_layers`; gold/epoxy, 1-4 keV).

    ``solid_depth`` (window method): the hit's solid fraction F is taken over the first nanometres of the solid
    below the hit, weighted exp(-depth / L) with L = ``solid_depth`` x the Kanaya-Okayama range of the solid at
    this energy (thin gold backscatters less than bulk gold; 0 = the hit slice alone, the earlier model). ``None``:
    :data:`DEFAULT_SOLID_DEPTH` (0, unchanged); :data:`THIN_SOLID_DEPTH` is the measured better choice at 4 keV
    (docs/fastsim.md, section 4)."""
    from fibsynth.fastsim.network import load_model
    from fibsynth.physics.backscatter import effective_z, kanaya_okayama_range_nm
    from fibsynth.physics.materials import get_material, is_vacuum
    from fibsynth.config import VoxelSize
    from fibsynth.physics.montecarlo.engine import check_energy, check_incidence

    vol = np.ascontiguousarray(structure)
    if vol.ndim != 3:
        raise FibsynthError(f"structure must be 3-D (z, y, x), got shape {vol.shape}")
    if vol.dtype != np.uint8:
        if vol.size and not np.isin(np.unique(vol), (0, 1)).all():
            raise FibsynthError("structure must be binary (0 = pore, 1 = solid)")
        vol = vol.astype(np.uint8)
    elif vol.size and vol.max() > 1:
        raise FibsynthError("structure must be binary (0 = pore, 1 = solid)")
    e = check_energy(energy_kev)
    a = check_incidence(incidence_deg)
    if not (0.0 <= spread <= 10.0):
        raise FibsynthError(f"must be in [0, 10] (got {spread})", param="spread")
    if method not in METHODS:
        raise FibsynthError(f"must be one of {', '.join(METHODS)} (got {method!r})", param="method")
    sd = DEFAULT_SOLID_DEPTH if solid_depth is None else float(solid_depth)
    if not (0.0 <= sd <= 1.0):
        raise FibsynthError(f"must be in [0, 1] (got {solid_depth})", param="solid_depth")
    if normalise not in ("group", "eta"):
        raise FibsynthError(f"must be group or eta (got {normalise!r})", param="normalise")
    dz, dy, dx = VoxelSize.coerce(voxel_zyx, param="voxel_zyx").zyx()
    nz = vol.shape[0]
    k0, k1 = slices if slices is not None else (0, nz)
    if not (0 <= k0 < k1 <= nz):
        raise FibsynthError(f"need 0 <= K0 < K1 <= {nz} (got {k0}:{k1})", param="slices")
    k_def = default_slices_behind(e, dz, pore) if not is_vacuum(pore) else min(MAX_SLICES_BEHIND, nz)
    k = k_def if slices_behind is None else int(slices_behind)
    if not (1 <= k <= MAX_SLICES_BEHIND):
        raise FibsynthError(f"must be in [1, {MAX_SLICES_BEHIND}] (got {slices_behind})", param="slices_behind")
    model = model if model is not None else load_model()
    if is_vacuum(pore):
        return project_open(vol, (dz, dy, dx), e, a, k0, k1, solid=solid, model=model, normalise=normalise,
                            slices_behind=k)
    z_solid = effective_z(get_material(solid, "--solid"))
    get_material(pore, "--pore")
    if method == "depth_layers":
        return project_layers(vol, (dz, dy, dx), e, a, k0, k1, solid=solid, pore=pore, model=model,
                              normalise=normalise)
    cells = ray_cells(k, dz, dy, a)
    d_far = max(k * dz, float(kanaya_okayama_range_nm(pore, e)))
    w, w_none = depth_weights(model, e, z_solid, cells[:, 2], d_far=d_far)
    w_top = float(w[0])  # cells[0] is the face voxel, depth 0
    if normalise == "group":
        span = w_top - w_none
        if not span > 0:
            raise FibsynthError(f"the network gives no contrast between {solid} and {pore} at {e} keV")
        w = (w - w_none) / span
        w_none_out = 0.0
    else:
        w_none_out = w_none
    out = np.empty((k1 - k0,) + vol.shape[1:], np.float32)
    ry = np.rint(spread * cells[:, 2] / dy).astype(np.int64)
    rx = np.rint(spread * cells[:, 2] / dx).astype(np.int64)
    if method == "layered":
        zmax = min(nz, k1 + int(cells[:, 0].max()) + 1)
        sat = _summed_area(vol[k0:zmax])
        _project_layered(vol[k0:zmax], sat, 0, k1 - k0, cells[:, 0].astype(np.int64), cells[:, 1].astype(np.int64),
                         ry, rx, w.astype(np.float64), float(w_none_out), LAYERED_T_MIN, out)
    else:
        length = sd * float(kanaya_okayama_range_nm(solid, e))
        zmax = min(nz, k1 + int(cells[:, 0].max()))
        vol_used = vol[k0:zmax]
        if length > 0:  # the solid's share of the first nanometres below each voxel
            zext = min(nz, zmax + int(math.ceil(3.0 * length / dz)) + 1)
            dens = depth_smoothed(vol[k0:zext], dz, length)[: zmax - k0]
            sat = _summed_area_f(dens) if spread > 0 and (ry.any() or rx.any()) else np.zeros((1, 1, 1))
        else:
            dens = vol_used
            sat = (_summed_area(vol_used) if spread > 0 and (ry.any() or rx.any())
                   else np.zeros((1, 1, 1), np.int32))
        _project(vol_used, dens, sat, 0, k1 - k0, cells[:, 0].astype(np.int64), cells[:, 1].astype(np.int64), ry, rx,
                 w.astype(np.float32), np.float32(w_none_out), out)
    record = {"method": method, "energy_kev": e, "slices_behind": k, "slices_behind_default": k_def, "incidence_deg": a,
              "solid": solid, "pore": pore, "Z_solid": z_solid, "normalise": normalise,
              "eta_solid_surface": w_top, "eta_pore": w_none, "depth_far_nm": d_far,
              "spread": spread, "solid_depth": sd if method == "window" else None, "cells": cells.tolist(), "weights": w.tolist(), "slices": [k0, k1]}
    return out, record


#: depth bins (nm along the face normal) of the sheared solid-fraction channels; the last ends at 320 nm
DEPTH_BINS_NM = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)


def sheared_depth_fractions(structure: np.ndarray, voxel_zyx, incidence_deg: float,
                            bins_nm=DEPTH_BINS_NM) -> np.ndarray:
    """(B, nz, ny, nx) float32: for every slice k and pixel (y, x), the mean solid of the slices k + j whose centre
    depth (j + 1/2) dz lies in bin b, each taken at the beam's lateral position y + (j + 1/2) dz tan(a) / dy
    (nearest pixel, periodic in y). Slices past the end of the structure count as pore (epoxy backing)."""
    vol = np.asarray(structure)
    dz, dy, _ = (float(v) for v in voxel_zyx)
    nz = vol.shape[0]
    t = math.tan(math.radians(incidence_deg))
    nb = len(bins_nm) - 1
    out = np.zeros((nb,) + vol.shape, np.float32)
    for b in range(nb):
        j0 = int(math.ceil(bins_nm[b] / dz - 0.5 - 1e-9))
        j1 = int(math.ceil(bins_nm[b + 1] / dz - 0.5 - 1e-9))  # j in [j0, j1): centre depth in [lo, hi)
        j0, j1 = max(j0, 0), max(j1, 0)
        if j1 <= j0:  # a bin thinner than a slice: the slice whose centre is nearest the bin's centre
            j0 = int(max(0, math.floor(0.5 * (bins_nm[b] + bins_nm[b + 1]) / dz)))
            j1 = j0 + 1
        acc = out[b]
        for j in range(j0, j1):
            if j >= nz:
                break
            shift = int(round((j + 0.5) * dz * t / dy))
            # out[k, y] += vol[k + j, y + shift]  (np.roll by -shift along y)
            acc[: nz - j] += np.roll(vol[j:], -shift, axis=1)
        acc /= float(j1 - j0)
    return out


# ---------------------------------------------------------------------------------------------------- depth layers
# The depth-layer projection (``project(..., method="depth_layers")``): the thin-solid window projection plus the
# gold in several layers behind the face, seen along the tilted beam.
# 
# The window model (:func:`fibsynth.fastsim.projection.project`) takes the *first* solid voxel along the ray; at
# 4 keV the Monte Carlo's electrons reach through several gold layers (Kanaya-Okayama range of gold 59 nm, of epoxy
# ~400 nm), so gold behind the first hit and beside the ray also adds backscatter. This model adds it linearly:
# 
#     I = b_0 + b_p P + sum_j b_j (G_s * D_j),
# 
# * P: the window projection with the thin-solid model (``solid_depth`` =
#   :data:`fibsynth.fastsim.projection.THIN_SOLID_DEPTH`), group-normalised;
# * D_j: the solid fraction in depth bin j behind the face (:data:`DEPTH_BINS_NM`
#   from 5 nm on), each slice sheared along y with the tilted beam
#   (:func:`sheared_depth_fractions`);
# * G_s: a periodic Gaussian of standard deviation s laterally (the electrons' lateral spread on the way to the
#   buried gold and back). Format 1 tables (the fast10 round) have one s (``spread_nm``, :data:`LAYERS_SPREAD_NM`)
#   per bin. Format 2 tables (since the fast11 round) have several, ``spreads_nm`` (s = 0 is the unblurred
#   fraction), each with its own weight per bin, and the projection also blurred at ``projection_spreads_nm``:
#
#     I = b_0 + b_p P + sum_t b_pt (G_t * P) + sum_j sum_s b_js (G_s * D_j),
#
#   a mixture of lateral spreads fitted per energy (the electrons' lateral spread is not one Gaussian);
# * b: least-squares weights per beam energy, fitted to Monte Carlo images (fraction backscattered) of training
#   structures only (``experiments/fastpath_fit_layers.py``; the table is ``data/depth_layers.json``), linear in
#   energy between the fitted energies; outside them the model refuses.
# 
# ``normalise="eta"`` returns I (the Monte Carlo's units); ``"group"`` maps pore (all features 0) to 0 and bulk
# solid (all features 1) to 1, like the window model. Gold/epoxy only (the table's materials).

LAYERS_TABLE = Path(__file__).resolve().parent / "data" / "depth_layers.json"
LAYERS_FORMAT = "fibsynth-depth-layers-2"
#: table formats this code reads (1: one spread per bin, ``spread_nm``; 2: ``spreads_nm`` and ``projection_spreads_nm``)
LAYERS_FORMATS = ("fibsynth-depth-layers-1", LAYERS_FORMAT)
#: lateral spread (Gaussian standard deviation, nm) of the buried layers' contribution
LAYERS_SPREAD_NM = 5.0


@lru_cache(maxsize=4)
def load_layers_table(path: str | None = None) -> dict:
    p = Path(path) if path else LAYERS_TABLE
    try:
        t = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise FibsynthError(f"cannot read the depth-layer table ({exc})", p, param="method") from None
    if t.get("format") not in LAYERS_FORMATS:
        raise FibsynthError(f"not a depth-layer table (format {LAYERS_FORMAT!r})", p, param="method")
    return t


def layer_spreads(table: dict) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(spreads of the depth bins, extra spreads of the projection) of a depth-layer table, in nm."""
    if "spreads_nm" in table:
        return (tuple(float(v) for v in table["spreads_nm"]),
                tuple(float(v) for v in table.get("projection_spreads_nm", ())))
    return (float(table.get("spread_nm", LAYERS_SPREAD_NM)),), ()


def layer_weights_at(table: dict, energy_kev: float) -> np.ndarray:
    """The weight vector (b_0, b_p, b_1..b_B) at ``energy_kev``, linear between the fitted energies."""
    es = np.array([float(e) for e in table["energies_kev"]])
    w = np.array(table["weights"], np.float64)
    e = float(energy_kev)
    if not es.min() - 1e-9 <= e <= es.max() + 1e-9:
        raise FibsynthError(f"{e:g} keV is outside the energies the depth-layer model was fitted at "
                            f"({es.min():g}-{es.max():g} keV)", param="energy_kev")
    return np.array([np.interp(e, es, w[:, i]) for i in range(w.shape[1])])


def layer_features(vol: np.ndarray, voxel_zyx, energy_kev: float, incidence_deg: float, k0: int, k1: int, *,
                   solid: str, pore: str, model=None, spreads_nm=None, projection_spreads_nm=None,
                   table: dict | None = None) -> np.ndarray:
    """(C, k1 - k0, ny, nx) float32: the thin-solid projection, the projection laterally blurred at each of
    ``projection_spreads_nm``, then for each depth bin 1..B (bin 0, the face slice, is the projection's) its sheared
    solid fraction laterally blurred at each of ``spreads_nm`` (0: unblurred). Spreads not given: those of ``table``
    (default the shipped one, :func:`layer_spreads`)."""
    from scipy.ndimage import gaussian_filter

    if spreads_nm is None or projection_spreads_nm is None:
        ts, tp = layer_spreads(table if table is not None else load_layers_table())
        spreads_nm = ts if spreads_nm is None else spreads_nm
        projection_spreads_nm = tp if projection_spreads_nm is None else projection_spreads_nm
    spreads_nm = (float(spreads_nm),) if np.isscalar(spreads_nm) else tuple(float(v) for v in spreads_nm)
    p, _ = project(vol, voxel_zyx, energy_kev, incidence_deg=incidence_deg, solid=solid, pore=pore, model=model,
                   slices=(k0, k1), solid_depth=THIN_SOLID_DEPTH, method="window")
    dz, dy, dx = (float(v) for v in voxel_zyx)
    reach = int(math.ceil(DEPTH_BINS_NM[-1] / dz)) + 1
    d = sheared_depth_fractions(vol[k0:min(vol.shape[0], k1 + reach)], (dz, dy, dx), incidence_deg,
                                DEPTH_BINS_NM)[1:, : k1 - k0]

    def blur(c, nm):
        return gaussian_filter(c, (0.0, nm / dy, nm / dx), mode="wrap") if nm > 0 else c

    chans = [p] + [blur(p, float(t)) for t in projection_spreads_nm]
    chans += [blur(c, sp) for c in d for sp in spreads_nm]
    return np.stack(chans).astype(np.float32)


def project_layers(vol: np.ndarray, voxel_zyx, energy_kev: float, incidence_deg: float, k0: int, k1: int, *,
                   solid: str, pore: str, model=None, normalise: str = "group", table: dict | None = None
                   ) -> tuple[np.ndarray, dict]:
    t = table if table is not None else load_layers_table()
    if [solid, pore] != list(t["materials"]):
        raise FibsynthError(f"the depth-layer model is fitted for {t['materials'][0]}/{t['materials'][1]} only "
                            f"(got {solid}/{pore})", param="pore" if solid == t["materials"][0] else "solid")
    w = layer_weights_at(t, energy_kev)
    f = layer_features(vol, voxel_zyx, energy_kev, incidence_deg, k0, k1, solid=solid, pore=pore, model=model,
                       table=t)
    if len(w) != 1 + len(f):
        raise FibsynthError(f"the depth-layer table has {len(w)} weights for {1 + len(f)} features", param="method")
    img = w[0] + np.tensordot(w[1:], f, axes=(0, 0))
    bulk = float(w.sum())
    if normalise == "group":
        if not bulk - w[0] > 0:
            raise FibsynthError(f"the depth-layer model gives no contrast at {energy_kev:g} keV", param="energy_kev")
        img = (img - w[0]) / (bulk - w[0])
    rec = {"method": "depth_layers", "energy_kev": float(energy_kev), "incidence_deg": float(incidence_deg),
           "solid": solid, "pore": pore, "normalise": normalise, "layer_weights": w.tolist(),
           "eta_pore": float(w[0]), "eta_solid_bulk": bulk, "spreads_nm": list(layer_spreads(t)[0]),
           "projection_spreads_nm": list(layer_spreads(t)[1]),
           "slices": [k0, k1]}
    return img.astype(np.float32), rec
