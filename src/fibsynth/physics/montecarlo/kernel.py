"""The numba transport kernel: single elastic scattering + continuous slowing down in a voxel geometry.

Geometry (lengths in nm). A volume of material indices ``vol[z, y, x]`` with voxel size ``(dz, dy, dx)``,
periodic in x and y. For FIB-SEM slice ``kface`` everything at ``z < kface * dz`` has been milled away
(vacuum); an electron crossing that plane leaves the sample for good (the face is an infinite plane) and is
a backscattered electron (BSE). Beyond the last slice (``z >= nz * dz``) lies ``backing`` (a material index),
or, with ``repeat_last``, the last slice repeated. A bulk target is a 1x1x1 volume with huge lateral voxels
and the same material as backing; a film is one voxel of thickness ``t`` on a backing substrate.

Transport (per electron, :func:`transport_one`, free of Python objects so it can be ported to a GPU):

* free flight s = lambda(E) X, X a unit exponential (ziggurat, :func:`next_exp`), with the total mean free path
  of the current material (the kernel's tables: ``tables.kernel_layout``);
* the flight is traced voxel by voxel (Amanatides-Woo DDA, exact ray-plane intersections). When it reaches a
  voxel of another material it stops on the boundary and the rest of the flight is resampled in the new
  material (exact for exponential free paths: memorylessness). No step can jump over a thin ligament;
* energy loss is continuous (CSDA) and applied per segment in the material the segment lies in, exactly,
  through the tabulated CSDA range (E_after = R^-1(R(E) - s)); with the inelastic channel on, the range table
  holds the *restricted* stopping power and binary collisions with atomic electrons (channels with
  ``eloss[m, j] = 1``) take E sin^2(theta) at once (``tables.py``: the mean loss stays Joy-Luo's);
* at a collision the target element is chosen with probability n_i sigma_i / sum, the polar angle from the
  element's angular distribution, the azimuth uniformly;
* electrons whose residual range falls below the range at the cut-off energy are absorbed;
* range rejection (exact): after a collision an electron deeper below the face than the longest path its
  energy allows in any mix of the materials (``max_range``) is ended -- it could never come back;
* optional free-flight skipping (``dist``/``safe``, stacks only): inside a cube of one material (radius from
  ``stack.distance_map``) a flight crosses voxel planes without stopping.

Random numbers: xoroshiro128+ seeded per electron by splitmix64 from (seed, stream a, stream b, electron),
so results do not depend on the number of threads or processes. Per collision: one 64-bit output for the free
path (ziggurat), one split into two 32-bit uniforms for the channel and the angular-grid pick, one 53-bit uniform
for the polar angle, 1.27 outputs (two 32-bit halves each) for the azimuth.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros as _trailing_zeros

NE_BINS = 100  # energy histogram: E / E0 in [0, 1]
NA_BINS = 90  # exit polar angle to the face normal, 1-degree bins
N_TALLY = 3  # 0: all BSE, 1: BSE accepted by the detector, 2: reserved (SE are tallied by run_point_se / run_slice_se)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S24 = np.uint64(24)
_S40 = np.uint64(40)
_S16 = np.uint64(16)
_S37 = np.uint64(37)
_S27b = np.uint64(27)
_INV53 = 1.0 / 9007199254740992.0
_S3 = np.uint64(3)
_S32 = np.uint64(32)
_S56 = np.uint64(56)
_MASK32 = np.uint64(0xFFFFFFFF)
_MASK53 = np.uint64((1 << 53) - 1)
_INV31 = 1.0 / 2147483648.0
_INV32 = 1.0 / 4294967296.0
_BIG = 1e300
_TWO_PI = 2.0 * math.pi

_jit = nb.njit(cache=True, fastmath=True, nogil=True, error_model="numpy")
# the per-electron transport allocates nothing: compiled without reference counting, its ~15 array arguments are
# not incremented on entry and decremented on each of its exits (out-of-line atomic calls, ~30 per electron)
_jit_norc = nb.njit(cache=True, fastmath=True, nogil=True, error_model="numpy", _nrt=False)
# the transport body, inlined (numba IR) into its callers: a call passing its ~45 arguments (each array is ~7-11
# machine words) cost ~200 ticks per electron, more than a collision (measured with benchmarks/mc_kernel_profile.py:
# 4.5 % of a 1 keV stack, 7 % of bulk gold at 1 keV). Its arguments are grouped in three tuples: CPython passes a
# call of more than 30 arguments as *args, which numba's inliner refuses.
_jit_inline = nb.njit(cache=True, fastmath=True, nogil=True, error_model="numpy", _nrt=False, inline="always")
# the SE helpers called per trajectory segment: no reference counting (they allocate nothing), and the wall search
# inlined into se_segment (a call passing the slice's three arrays cost ~40 ns, half the search's time: measured
# with benchmarks-style micro timing of wall_distance, 2026-11-30)
_jit_se = nb.njit(cache=True, fastmath=True, nogil=True, error_model="numpy", _nrt=False)
_jit_se_inline = nb.njit(cache=True, fastmath=True, nogil=True, error_model="numpy", _nrt=False, inline="always")


@_jit
def splitmix64(x):
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@_jit
def seed_state(seed, a, b, n):
    """xoroshiro128+ state for electron ``n`` of stream (seed, a, b)."""
    h = splitmix64(np.uint64(seed))
    h = splitmix64(h ^ np.uint64(a))
    h = splitmix64(h ^ np.uint64(b))
    h = splitmix64(h ^ np.uint64(n))
    s0 = splitmix64(h)
    s1 = splitmix64(s0)
    if s0 == np.uint64(0) and s1 == np.uint64(0):
        s1 = _GOLDEN
    return s0, s1


@_jit
def next_u64(s0, s1):
    """The next 64-bit output of xoroshiro128+ and the advanced state."""
    res = s0 + s1
    s1 ^= s0
    s0 = ((s0 << _S24) | (s0 >> _S40)) ^ s1 ^ (s1 << _S16)
    s1 = (s1 << _S37) | (s1 >> _S27b)
    return res, s0, s1


@_jit
def next_uniform(s0, s1):
    """A uniform double in (0, 1] (the top 53 bits of :func:`next_u64`'s output) and the advanced state."""
    res, s0, s1 = next_u64(s0, s1)
    return (float(res >> _S11) + 1.0) * _INV53, s0, s1


def _ziggurat_exp_tables(n=256):
    """Marsaglia & Tsang's ziggurat for the unit exponential (J. Stat. Softw. 5 (2000) 8, ``zigset``), on 53-bit
    integers: layer i is accepted at once when the integer ``j < ZK[i]`` (then x = j ZW[i]); ``ZF[i] = exp(-x_i)``
    at the layer edges. Base layer 0 holds the tail beyond ``ZR``, sampled exactly as ZR + Exp (memoryless)."""
    r = 7.697117470131487
    v = 3.949659822581572e-3  # area of each layer
    m = 2.0**53
    zk = np.zeros(n, np.uint64)
    zw = np.zeros(n)
    zf = np.zeros(n)
    de = r
    te = r
    q = v / math.exp(-de)
    zk[0] = np.uint64((de / q) * m)
    zk[1] = 0
    zw[0] = q / m
    zw[n - 1] = de / m
    zf[0] = 1.0
    zf[n - 1] = math.exp(-de)
    for i in range(n - 2, 0, -1):
        de = -math.log(v / de + math.exp(-de))
        zk[i + 1] = np.uint64((de / te) * m)
        te = de
        zf[i] = math.exp(-de)
        zw[i] = de / m
    return r, zk, zw, zf


_ZR, _ZK, _ZW, _ZF = _ziggurat_exp_tables()


@_jit
def next_exp(s0, s1):
    """A unit exponential deviate (ziggurat, no logarithm in 98.9 % of the draws: one 64-bit output, its top 8
    bits pick the layer, bits 3-55 the abscissa) and the advanced state. Exact in distribution (the rejection and
    tail steps of Marsaglia & Tsang); replaces -ln(R) for the free paths."""
    while True:
        res, s0, s1 = next_u64(s0, s1)
        iz = int(res >> _S56)
        jz = (res >> _S3) & _MASK53
        if jz < _ZK[iz]:
            return float(jz) * _ZW[iz], s0, s1
        if iz == 0:
            r, s0, s1 = next_uniform(s0, s1)
            return _ZR - math.log(r), s0, s1
        x = float(jz) * _ZW[iz]
        r, s0, s1 = next_uniform(s0, s1)
        if _ZF[iz] + r * (_ZF[iz - 1] - _ZF[iz]) < math.exp(-x):
            return x, s0, s1


@_jit
def interp_row(row, u):
    i = int(u)
    f = u - i
    return row[i] * (1.0 - f) + row[i + 1] * f


@_jit
def range_to_u(rng_row, rinvd_row, u, r):
    """Grid coordinate where the piecewise-linear range table equals ``r`` (< the range at ``u``): a first-order
    guess from the slope of the table at ``u``, then a local search (a step or none)."""
    i = int(u)
    j = int(u - (rng_row[i] * (1.0 - (u - i)) + rng_row[i + 1] * (u - i) - r) * rinvd_row[i])
    if j < 0:
        j = 0
    while j > 0 and rng_row[j] > r:
        j -= 1
    while rng_row[j + 1] < r:
        j += 1
    return j + (r - rng_row[j]) * rinvd_row[j]


@_jit
def interp_m(tab, m, u):
    """:func:`interp_row` of row ``m`` of a 2-D table, indexed in place: a row view (``tab[m]``) costs a
    reference-count increment and decrement (atomic, out of line) each time in the transport loop."""
    i = int(u)
    f = u - i
    return tab[m, i] * (1.0 - f) + tab[m, i + 1] * f


@_jit
def interp_mj(tab, m, j, u):
    """:func:`interp_row` of row ``(m, j)`` of a 3-D table, indexed in place (see :func:`interp_m`)."""
    i = int(u)
    f = u - i
    return tab[m, j, i] * (1.0 - f) + tab[m, j, i + 1] * f


@_jit
def range_to_u_m(rng, rinvd, m, u, r):
    """:func:`range_to_u` on row ``m`` of the range tables, indexed in place (see :func:`interp_m`)."""
    i = int(u)
    j = int(u - (rng[m, i] * (1.0 - (u - i)) + rng[m, i + 1] * (u - i) - r) * rinvd[m, i])
    if j < 0:
        j = 0
    while j > 0 and rng[m, j] > r:
        j -= 1
    while rng[m, j + 1] < r:
        j += 1
    return j + (r - rng[m, j]) * rinvd[m, j]


@_jit
def energy_after(rng_row, rcut, ln_e0, inv_dln, u, path):
    """CSDA slowing down over ``path`` (nm) from grid coordinate ``u`` (= (ln E - ln E_grid0) / dlnE).

    Returns (E, u) after the path, or (-1, -1) if the residual range falls below the cut-off's."""
    i = int(u)
    f = u - i
    r = rng_row[i] * (1.0 - f) + rng_row[i + 1] * f - path
    if r <= rcut:
        return -1.0, -1.0
    j = i
    while j > 0 and rng_row[j] > r:
        j -= 1
    un = j + (r - rng_row[j]) / (rng_row[j + 1] - rng_row[j])
    return math.exp(ln_e0 + un / inv_dln), un


LEVEL_SHIFT = 4  # a voxel code is material | (block level << LEVEL_SHIFT) (``stack.block_levels``)
MAT_MASK = (1 << LEVEL_SHIFT) - 1


@_jit
def lookup(vol, iz, iy, ix, backing, repeat_last):
    """The material at voxel (iz, iy, ix) (also beyond the last slice); ``vol`` may hold block codes."""
    nz = vol.shape[0]
    if iz < nz:
        return vol[iz, iy, ix] & MAT_MASK
    if repeat_last:
        return vol[nz - 1, iy, ix] & MAT_MASK
    return backing


@_jit
def lookup_code(vol, iz, iy, ix, backing, repeat_last):
    """The voxel code at (iz, iy, ix): material | (level << LEVEL_SHIFT) inside the volume (``stack.block_levels``;
    a plain material volume has level 0 everywhere), the bare material beyond it (blocks never extend past the
    last slice)."""
    nz = vol.shape[0]
    if iz < nz:
        return vol[iz, iy, ix]
    if repeat_last:
        return vol[nz - 1, iy, ix] & MAT_MASK
    return backing


@_jit_inline
def _step_periodic(b0, nbk, u, d, n):
    """The boundary step along one periodic axis (x or y) of :func:`transport_body`: the index of the cell beyond
    the exit plane of the cell [b0, b0 + nbk) when moving along u, and that plane's coordinate, wrapped (index n
    -> 0 at coordinate 0, index -1 -> n - 1 at n d). Selects, no branches (see the caller)."""
    i = b0 + nbk if u > 0.0 else b0 - 1
    p = i * d if u > 0.0 else b0 * d
    p = 0.0 if i == n else p
    i = 0 if i == n else i
    p = n * d if i < 0 else p
    i = n - 1 if i < 0 else i
    return i, p


@_jit
def _clampi(i, lo, hi):
    if i < lo:
        return lo
    if i > hi:
        return hi
    return i


@_jit
def mu_table(muq, mat, j, u, ang_scale, ang_off, rga, xi):
    """mu = (1 - cos theta)/2 from the tabulated inverse CDF (see ``tables.py``) for uniforms ``rga`` and ``xi``:
    the angular-grid energy is picked stochastically between the two neighbours (``rga``), then mu = q v /
    (xi + q v), v = 1 - xi, with the odds ratio q linear in t = 1 - xi^(1/4). ``muq`` may be float32."""
    nang = muq.shape[2]
    npr = muq.shape[3]
    ua = u * ang_scale + ang_off
    if ua <= 0.0:
        ga = 0
    elif ua >= nang - 1:
        ga = nang - 1
    else:
        # grid point a + 1 with probability ua - a (branch-free: floor(ua + R), R uniform)
        ga = int(ua + 1.0 - rga)
        if ga > nang - 1:
            ga = nang - 1
    tk = (1.0 - float(math.sqrt(math.sqrt(np.float32(xi))))) * (npr - 1)  # t to ~1e-7: q moves by < 1e-7 of a cell
    k = int(tk)
    if k > npr - 2:
        k = npr - 2
    f = tk - k
    q0 = float(muq[mat, j, ga, k])
    q = q0 + f * (float(muq[mat, j, ga, k + 1]) - q0)
    qv = q * (1.0 - xi)
    return qv / (xi + qv)


@_jit
def sample_mu_table(muq, mat, j, u, ang_scale, ang_off, s0, s1):
    """:func:`mu_table` with its two uniforms drawn from the stream (s0, s1); returns (mu, s0, s1)."""
    r, s0, s1 = next_uniform(s0, s1)
    xi, s0, s1 = next_uniform(s0, s1)
    return mu_table(muq, mat, j, u, ang_scale, ang_off, r, xi), s0, s1


@_jit
def sample_mu_analytic(prut, acoef, mat, j, u, ln_e0, inv_dln, s0, s1):
    """The analytic Browning / screened-Rutherford rule (validation mode): mu = a R / (1 + a - R) with
    probability prut, else mu = R."""
    r, s0, s1 = next_uniform(s0, s1)
    r2, s0, s1 = next_uniform(s0, s1)
    if r <= interp_mj(prut, mat, j, u):
        a = acoef[mat, j] / math.exp(ln_e0 + u / inv_dln)
        mu = a * r2 / (1.0 + a - r2)
    else:
        mu = r2
    if mu > 1.0:
        mu = 1.0
    return mu, s0, s1


@_jit
def max_range(rng, reject):
    """Largest CSDA path from each grid energy down to the grid's lowest energy over *any* sequence of the
    materials: on every grid interval the steepest material's path (the range tables are piecewise linear in
    the grid coordinate). Binary collisions only shorten it. With ``reject`` False: +inf (no range rejection)."""
    nm, ng = rng.shape
    out = np.zeros(ng)
    for g in range(1, ng):
        if not reject:
            out[g] = _BIG
            continue
        best = 0.0
        for m in range(nm):
            d = rng[m, g] - rng[m, g - 1]
            if d > best:
                best = d
        out[g] = out[g - 1] + best
    if not reject:
        out[0] = _BIG
    return out


@_jit
def _advance(x, y, z, ux, uy, uz, d, dz, dy, dx, nx, ny, kface, lateral, idz, idy, idx):
    """Move by ``d`` along u and recompute the voxel indices (periodic in x and y; ``id*`` = 1 / voxel edge)."""
    x += d * ux
    y += d * uy
    z += d * uz
    ix = 0
    iy = 0
    if lateral:
        lx = nx * dx
        ly = ny * dy
        x -= lx * math.floor(x * (idx / nx))
        y -= ly * math.floor(y * (idy / ny))
        ix = int(x * idx)
        iy = int(y * idy)
        if ix >= nx:
            ix = nx - 1
        if iy >= ny:
            iy = ny - 1
    iz = int(z * idz)
    if iz < kface:
        iz = kface
    return x, y, z, ix, iy, iz


# ------------------------------------------------------------------------------------------ vacuum (open pores)


@_jit
def matter_layers(vol, nel, backing, repeat_last):
    """Layers without vacuum, for exact range rejection when the geometry holds vacuum (``nel[m] == 0``).

    Returns ``(mdep, mfull)``: ``mfull[i] = 1`` if layer i (``i < nz``) holds no vacuum voxel, ``mfull[nz]`` the
    same for everything beyond the last slice (the backing, or the last slice with ``repeat_last``);
    ``mdep[i]`` = number of full layers among 0..i-1. Both are empty when there is no vacuum anywhere (the
    kernel then uses the depth below the face, as before)."""
    nz, ny, nx = vol.shape
    mfull = np.ones(nz + 1, np.uint8)
    for iz in range(nz):
        full = 1
        for iy in range(ny):
            for ix in range(nx):
                if nel[vol[iz, iy, ix] & MAT_MASK] == 0:  # vol may hold block codes
                    full = 0
                    break
            if full == 0:
                break
        mfull[iz] = full
    if repeat_last:
        mfull[nz] = mfull[nz - 1] if nz > 0 else 1
    else:
        mfull[nz] = 1 if nel[backing] != 0 else 0
    if mfull.min() == 1:
        return np.zeros(0), np.zeros(0, np.uint8)
    mdep = np.zeros(nz + 1)
    for iz in range(nz):
        mdep[iz + 1] = mdep[iz] + mfull[iz]
    return mdep, mfull


@_jit
def matter_depth(z, iz, kface, dz, mdep, mfull):
    """Lower bound of the path *in matter* from depth z (in layer iz >= kface) up to the face.

    Any path to the face crosses every layer between; a layer without vacuum (``mfull``) must be crossed
    from its lower to its upper plane in matter (>= dz), and the current layer's part above z if it is full.
    Layers with vacuum may be crossed through it at no cost in range. Without vacuum this is z - kface dz."""
    nz = mdep.shape[0] - 1
    i = iz if iz < nz else nz
    d = (mdep[i] - mdep[kface]) * dz
    if mfull[i]:
        d += z - i * dz
    return d


@_jit
def vacuum_flight(x, y, z, ux, uy, uz, ix, iy, iz, vol, dz, dy, dx, kface, backing, repeat_last, nel, lateral):
    """Straight flight through vacuum voxels (no collision, no energy loss) from (x, y, z) in voxel (iz, iy, ix).

    Returns ``(status, x, y, z, ix, iy, iz, mat)``: status 0 -- reached voxel (iz, iy, ix) of matter ``mat``
    (position on its boundary plane); 1 -- crossed the face plane upwards (a backscattered electron); 2 -- lost:
    flying down into a vacuum backing (nothing below), parallel to the face (never arrives), or along a channel
    that stays open through the periodic tiling for more than 4 (nx + ny + nz) + 64 voxel crossings (it would
    fly on for ever in the tiled sample, or meet a wall far from the beam)."""
    nz, ny, nx = vol.shape
    ivx = 1.0 / ux if ux != 0.0 else 0.0
    ivy = 1.0 / uy if uy != 0.0 else 0.0
    ivz = 1.0 / uz
    for _ in range(4 * (nx + ny + nz) + 64):
        if iz >= nz and not repeat_last and uz > 0.0:
            return 2, x, y, z, ix, iy, iz, 0
        tx = _BIG
        ty = _BIG
        if lateral:
            if ux > 0.0:
                tx = ((ix + 1) * dx - x) * ivx
            elif ux < 0.0:
                tx = (ix * dx - x) * ivx
            if uy > 0.0:
                ty = ((iy + 1) * dy - y) * ivy
            elif uy < 0.0:
                ty = (iy * dy - y) * ivy
        axis = 2
        dmin = ((iz + (1.0 if uz > 0.0 else 0.0)) * dz - z) * ivz
        if tx < dmin:
            dmin = tx
            axis = 0
        if ty < dmin:
            dmin = ty
            axis = 1
        if not dmin < 0.5 * _BIG:
            return 2, x, y, z, ix, iy, iz, 0
        if axis == 0:
            y += dmin * uy
            z += dmin * uz
            if ux > 0.0:
                ix += 1
                x = ix * dx
                if ix == nx:
                    ix = 0
                    x = 0.0
            else:
                x = ix * dx
                ix -= 1
                if ix < 0:
                    ix = nx - 1
                    x = nx * dx
        elif axis == 1:
            x += dmin * ux
            z += dmin * uz
            if uy > 0.0:
                iy += 1
                y = iy * dy
                if iy == ny:
                    iy = 0
                    y = 0.0
            else:
                y = iy * dy
                iy -= 1
                if iy < 0:
                    iy = ny - 1
                    y = ny * dy
        else:
            x += dmin * ux
            y += dmin * uy
            if uz > 0.0:
                iz += 1
                z = iz * dz
            else:
                z = iz * dz
                iz -= 1
                if iz < kface:
                    return 1, x, y, z, ix, iy, kface, 0
        m = lookup(vol, iz, iy, ix, backing, repeat_last)
        if nel[m] != 0:
            return 0, x, y, z, ix, iy, iz, m
    return 2, x, y, z, ix, iy, iz, 0


@_jit
def _box_distance(x, y, z, jz, jy, jx, dz, dy, dx):
    """Distance from the point (x, y, z) to the box of voxel (jz, jy, jx) (unwrapped indices)."""
    ddx = 0.0
    if x < jx * dx:
        ddx = jx * dx - x
    elif x > (jx + 1) * dx:
        ddx = x - (jx + 1) * dx
    ddy = 0.0
    if y < jy * dy:
        ddy = jy * dy - y
    elif y > (jy + 1) * dy:
        ddy = y - (jy + 1) * dy
    ddz = 0.0
    if z < jz * dz:
        ddz = jz * dz - z
    elif z > (jz + 1) * dz:
        ddz = z - (jz + 1) * dz
    return math.sqrt(ddx * ddx + ddy * ddy + ddz * ddz)


@_jit
def march_out(vol, nel, backing, repeat_last, k, z, y, x, dirs, dz, dy, dx):
    """Fraction of ``dirs`` along which a straight line from (z, y, x) nm reaches the face plane z = k dz through
    vacuum (steps of half the smallest voxel edge; periodic in x, y; blocked by matter or past the stack)."""
    nz, ny, nx = vol.shape
    h = 0.5 * min(dz, min(dy, dx))
    zf = k * dz
    ok = 0
    for m in range(dirs.shape[0]):
        vx, vy, vz = dirs[m, 0], dirs[m, 1], dirs[m, 2]
        pz, py, px = z, y, x
        while True:
            pz += h * vz
            py += h * vy
            px += h * vx
            if pz < zf:
                ok += 1
                break
            iz = int(pz / dz)
            if iz >= nz + 1:
                break
            m_ = lookup(vol, iz, int(math.floor(py / dy)) % ny, int(math.floor(px / dx)) % nx, backing, repeat_last)
            if nel[m_] != 0:
                break
    return ok / dirs.shape[0]


@_jit
def march_cells(vol, nel, backing, repeat_last, k, z, y, x, cells):
    """:func:`march_out` from the centre of voxel (z, y, x) with the rays precomputed (``secondary.view_rays``:
    per direction the cells that the half-voxel march visits, in order, each once, as steps of -1, 0, 1 voxel
    per axis): the same cells are looked up, without the per-step coordinate arithmetic (periodic in x and y by
    one wrap test per step). A ray reaches the face when its next cell lies above slice k."""
    nz, ny, nx = vol.shape
    ok = 0
    for m in range(cells.shape[0]):
        jz = z
        jy = y
        jx = x
        for j in range(cells.shape[1]):
            jz += cells[m, j, 0]
            if jz < k:
                ok += 1
                break
            jy += cells[m, j, 1]
            if jy < 0:
                jy += ny
            elif jy >= ny:
                jy -= ny
            jx += cells[m, j, 2]
            if jx < 0:
                jx += nx
            elif jx >= nx:
                jx -= nx
            if nel[lookup(vol, jz, jy, jx, backing, repeat_last)] != 0:
                break
    return ok / cells.shape[0]


def _march(vol, nel, backing, repeat_last, k, z, y, x, dirs, dz, dy, dx):
    """The view factor's march from voxel (z, y, x): :func:`march_cells` when ``dirs`` holds precomputed rays
    (int32, (n, L, 3)), else :func:`march_out` along the directions ``dirs`` ((n, 3) floats)."""
    if dirs.ndim == 3:
        return march_cells(vol, nel, backing, repeat_last, k, z, y, x, dirs)
    return march_out(vol, nel, backing, repeat_last, k, (z + 0.5) * dz, (y + 0.5) * dy, (x + 0.5) * dx, dirs,
                     dz, dy, dx)


@nb.extending.overload(_march, jit_options={"cache": True, "fastmath": True, "error_model": "numpy"})
def _march_overload(vol, nel, backing, repeat_last, k, z, y, x, dirs, dz, dy, dx):
    if dirs.ndim == 3:
        def impl(vol, nel, backing, repeat_last, k, z, y, x, dirs, dz, dy, dx):
            return march_cells(vol, nel, backing, repeat_last, k, z, y, x, dirs)
    else:
        def impl(vol, nel, backing, repeat_last, k, z, y, x, dirs, dz, dy, dx):
            return march_out(vol, nel, backing, repeat_last, k, (z + 0.5) * dz, (y + 0.5) * dy, (x + 0.5) * dx,
                             dirs, dz, dy, dx)
    return impl


@_jit
def pore_view(vol, nel, backing, repeat_last, k, z, y, x, dirs, dz, dy, dx):
    """View factor of pore voxel (z, y, x) for the face at slice k (``secondary.pore_view_factors``): 0 unless it
    touches matter (26 neighbours in slices >= k), else :func:`march_out` from its centre (``dirs``: the
    directions), or its precomputed form :func:`march_cells` (``dirs``: ``secondary.view_rays``)."""
    nz, ny, nx = vol.shape
    near = False
    for oz in range(-1, 2):
        if z + oz < k:
            continue
        for oy in range(-1, 2):
            for ox in range(-1, 2):
                if nel[lookup(vol, z + oz, (y + oy) % ny, (x + ox) % nx, backing, repeat_last)] != 0:
                    near = True
    if not near:
        return 0.0
    return _march(vol, nel, backing, repeat_last, k, z, y, x, dirs, dz, dy, dx)


@nb.njit(cache=True, parallel=True, error_model="numpy")
def wall_masks(vol, nel, backing, repeat_last, kface, depth):
    """Per voxel of slices kface .. kface + depth - 1 (indices beyond the volume: its backing / last slice; the
    layer nz + 1 stands for all deeper ones), the bit mask of its 26 neighbours that are vacuum (bit
    9 (oz + 1) + 3 (oy + 1) + (ox + 1); neighbours in front of the face, z < kface, never set): what
    :func:`wall_distance` searches, computed once per slice so that a point far from any pore wall costs one
    look-up."""
    nz, ny, nx = vol.shape
    out = np.zeros((depth, ny, nx), np.uint32)
    for j in nb.prange(depth):
        iz = kface + j
        for iy in range(ny):
            for ix in range(nx):
                bits = 0
                for oz in range(-1, 2):
                    if iz + oz < kface:
                        continue
                    for oy in range(-1, 2):
                        for ox in range(-1, 2):
                            if oz == 0 and oy == 0 and ox == 0:
                                continue
                            if nel[lookup(vol, iz + oz, (iy + oy) % ny, (ix + ox) % nx, backing, repeat_last)] == 0:
                                bits |= 1 << (9 * (oz + 1) + 3 * (oy + 1) + ox + 1)
                out[j, iy, ix] = _undominated(bits)
    return out


@_jit
def _undominated(bits):
    """Drop from a neighbour mask the neighbours that cannot be the one the full search picks: neighbour o is
    never nearer than a neighbour o' whose nonzero offsets are a subset of o's (same signs) -- the distance to
    o's box adds the gaps along o's other axes (e.g. a vacuum face neighbour hides edge and corner neighbours on
    its side). Only an o' searched before o (lower bit) hides it: at equal distance (a point on a voxel plane)
    the full search keeps the first one, and so does the masked search (the same view factor)."""
    out = bits
    for b in range(27):
        if not (bits >> b) & 1:
            continue
        oz, oy, ox = b // 9 - 1, (b // 3) % 3 - 1, b % 3 - 1
        for c in range(b):
            if not (bits >> c) & 1:
                continue
            pz, py, px = c // 9 - 1, (c // 3) % 3 - 1, c % 3 - 1
            if (pz == 0 or pz == oz) and (py == 0 or py == oy) and (px == 0 or px == ox):
                out &= ~(1 << b)
                break
    return out


@_jit_se_inline
def _wall_cell(x, y, z, dz, dy, dx, kface, nz, ny, nx, masks):
    """The voxel (iz, iy, ix) of the point and its layer li in ``masks`` (:func:`wall_masks`; -1: outside the
    masked layers or the volume's lateral range, i.e. the full search)."""
    iz = int(z / dz)
    iy = int(y / dy)
    ix = int(x / dx)
    li = iz - kface
    if iz > nz + 1:
        li = nz + 1 - kface
    if not (li >= 0 and li < masks.shape[0] and iy >= 0 and iy < ny and ix >= 0 and ix < nx):
        li = -1
    return iz, iy, ix, li


@_jit_se_inline
def _gaps(x, y, z, iz, iy, ix, dz, dy, dx):
    """The gaps from the point to the neighbour boxes of its voxel along each axis: below (0), within (1) and
    above (2) the point's own slab; the distance to a neighbour box is the root of the sum of its three squared
    gaps."""
    xl = x - ix * dx
    xh = (ix + 1) * dx - x
    yl = y - iy * dy
    yh = (iy + 1) * dy - y
    zl = z - iz * dz
    zh = (iz + 1) * dz - z
    return (max(zl, 0.0), max(-zl, -zh, 0.0), max(zh, 0.0), max(yl, 0.0), max(-yl, -yh, 0.0), max(yh, 0.0),
            max(xl, 0.0), max(-xl, -xh, 0.0), max(xh, 0.0))


@_jit_se_inline
def _gap2(gp, b):
    """Squared distance to neighbour box ``b`` (bit 9 (oz + 1) + 3 (oy + 1) + (ox + 1)) from the gaps ``gp``."""
    oz = b // 9
    oy = (b // 3) % 3
    ox = b % 3
    gz = gp[0] if oz == 0 else (gp[1] if oz == 1 else gp[2])
    gy = gp[3] if oy == 0 else (gp[4] if oy == 1 else gp[5])
    gx = gp[6] if ox == 0 else (gp[7] if ox == 1 else gp[8])
    return gz * gz + gy * gy + gx * gx


@_jit_se_inline
def _wall_view(vol, nel, backing, repeat_last, kface, bz, by, bx, dz, dy, dx, segv):
    """The view factor g of the vacuum voxel (bz, by, bx) that :func:`wall_distance` found (bz < 0: none; 1
    without view layers, 0 deeper than them; entries < 0 computed here on first use)."""
    gbest = 1.0
    if segv is not None and bz >= 0:
        views = segv[0]
        if views.shape[0] > 0:
            rz = bz - kface
            if rz < views.shape[0]:
                gbest = views[rz, by, bx]
                if gbest < 0.0:
                    gbest = pore_view(vol, nel, backing, repeat_last, kface, bz, by, bx, segv[2], dz, dy, dx)
                    views[rz, by, bx] = gbest
            else:
                gbest = 0.0
    return gbest


@_jit_se_inline
def _wall_full(vol, nel, backing, repeat_last, x, y, z, iz, iy, ix, dz, dy, dx, kface, dcap):
    """The full neighbour search of :func:`wall_distance`: (distance, bz, by, bx), bz = -1 when no vacuum
    neighbour is nearer than ``dcap``."""
    nz, ny, nx = vol.shape
    best = dcap
    bz = -1
    by = 0
    bx = 0
    for oz in range(-1, 2):
        jz = iz + oz
        if jz < kface:
            continue
        for oy in range(-1, 2):
            jy = iy + oy
            wy = jy % ny
            for ox in range(-1, 2):
                if oz == 0 and oy == 0 and ox == 0:
                    continue
                jx = ix + ox
                m = lookup(vol, jz, wy, jx % nx, backing, repeat_last)
                if nel[m] != 0:
                    continue
                d = _box_distance(x, y, z, jz, jy, jx, dz, dy, dx)
                if d < best:
                    best = d
                    bz = jz
                    by = wy
                    bx = jx % nx
    return best, bz, by, bx


@_jit_se_inline
def wall_distance(vol, nel, backing, repeat_last, x, y, z, dz, dy, dx, kface, dcap, segv=None):
    """Distance (nm, at most ``dcap``) from the point (x, y, z) to the nearest vacuum voxel among its 26
    neighbours (open-pore walls; the milled half-space z < kface dz is the face's, not counted here). Exact when
    the nearest vacuum is closer than one voxel edge -- the distances that matter for SE escape when the escape
    depth is below the voxel size. Returns (distance, g): g the view factor of that vacuum voxel (the share of SE
    entering it that fly out of the pore), 1 when every SE that leaves a wall counts.

    ``segv``: None (full neighbour search, g = 1) or the tuple (views, masks, dirs) of ``secondary.se_walls``:
    ``masks`` = :func:`wall_masks` of this slice (a point whose voxel has none of its neighbours in vacuum costs
    one look-up; otherwise only the neighbours that can be the nearest are measured, the set bits visited by a
    trailing-zero count; points outside the masked layers take the full search: same result); ``views`` the pore
    view factors (index z - kface, ``secondary.pore_view_factors``; no layers: g = 1; deeper than its layers: 0),
    entries < 0 computed here on first use (:func:`pore_view` with the cosine-law directions ``dirs``; the value
    is a function of the voxel only, so concurrent threads write the same number)."""
    nz, ny, nx = vol.shape
    if segv is not None:
        iz, iy, ix, li = _wall_cell(x, y, z, dz, dy, dx, kface, nz, ny, nx, segv[1])
        if li >= 0:
            bits = np.int64(segv[1][li, iy, ix])
            if bits == 0:
                return dcap, 1.0
            gp = _gaps(x, y, z, iz, iy, ix, dz, dy, dx)
            best2 = dcap * dcap
            bb = -1
            while bits != 0:
                b = _trailing_zeros(bits)
                bits &= bits - 1
                d2 = _gap2(gp, b)
                if d2 < best2:
                    best2 = d2
                    bb = b
            if bb < 0:
                return dcap, 1.0
            return math.sqrt(best2), _wall_view(vol, nel, backing, repeat_last, kface, iz + bb // 9 - 1,
                                                (iy + (bb // 3) % 3 - 1) % ny, (ix + bb % 3 - 1) % nx, dz, dy, dx,
                                                segv)
    else:
        iz = int(z / dz)
        iy = int(y / dy)
        ix = int(x / dx)
    best, bz, by, bx = _wall_full(vol, nel, backing, repeat_last, x, y, z, iz, iy, ix, dz, dy, dx, kface, dcap)
    return best, _wall_view(vol, nel, backing, repeat_last, kface, bz, by, bx, dz, dy, dx, segv)


@_jit_se_inline
def wall_distance2(vol, nel, backing, repeat_last, xm, ym, zm, x, y, z, dz, dy, dx, kface, dcap, segv):
    """:func:`wall_distance` of two points, (wm, gm, wb, gb): the same numbers. Two points in one masked voxel
    (a segment's middle and end, ~80 % of the segments in open-pore stacks) share the voxel's look-up and one
    pass over its mask bits."""
    nz, ny, nx = vol.shape
    if segv is not None:
        iz, iy, ix, li = _wall_cell(x, y, z, dz, dy, dx, kface, nz, ny, nx, segv[1])
        jz, jy, jx, lj = _wall_cell(xm, ym, zm, dz, dy, dx, kface, nz, ny, nx, segv[1])
        if li >= 0 and iz == jz and iy == jy and ix == jx:
            bits = np.int64(segv[1][li, iy, ix])
            if bits == 0:
                return dcap, 1.0, dcap, 1.0
            gm = _gaps(xm, ym, zm, iz, iy, ix, dz, dy, dx)
            gb = _gaps(x, y, z, iz, iy, ix, dz, dy, dx)
            bm2 = dcap * dcap
            bb2 = bm2
            km = -1
            kb = -1
            while bits != 0:
                b = _trailing_zeros(bits)
                bits &= bits - 1
                d2 = _gap2(gm, b)
                if d2 < bm2:
                    bm2 = d2
                    km = b
                d2 = _gap2(gb, b)
                if d2 < bb2:
                    bb2 = d2
                    kb = b
            wm = dcap
            vm = 1.0
            if km >= 0:
                wm = math.sqrt(bm2)
                vm = _wall_view(vol, nel, backing, repeat_last, kface, iz + km // 9 - 1, (iy + (km // 3) % 3 - 1) % ny,
                                (ix + km % 3 - 1) % nx, dz, dy, dx, segv)
            wb = dcap
            vb = 1.0
            if kb >= 0:
                wb = math.sqrt(bb2)
                vb = _wall_view(vol, nel, backing, repeat_last, kface, iz + kb // 9 - 1, (iy + (kb // 3) % 3 - 1) % ny,
                                (ix + kb % 3 - 1) % nx, dz, dy, dx, segv)
            return wm, vm, wb, vb
    wm, vm = wall_distance(vol, nel, backing, repeat_last, xm, ym, zm, dz, dy, dx, kface, dcap, segv)
    wb, vb = wall_distance(vol, nel, backing, repeat_last, x, y, z, dz, dy, dx, kface, dcap, segv)
    return wm, vm, wb, vb


# ``se_segment``'s u_new for "all the energy left": exp(ln_e0 + U_ALL / inv_dln) = 0
U_ALL = -1e30
SE_ACC = 9  # length of an SE accumulator that carries the last segment end's wall search (``se_segment``)


@_jit_se
def _escape(d, w, g, lam):
    """max(exp(-d / lam), g exp(-w / lam)): escape through the face at depth d or, with the view factor
    0 <= g <= 1, through a pore wall at distance w (one exponential where the other term cannot win)."""
    if w >= d or g <= 0.0:
        return math.exp(-d / lam)
    if g >= 1.0:
        return math.exp(-w / lam)
    eb = g * math.exp(-w / lam)
    if d - w > 30.0 * lam:  # exp(-d / lam) < 1e-13 exp(-w / lam)
        return eb
    ea = math.exp(-d / lam)
    return ea if ea > eb else eb


@_jit_se
def se_segment(sep, seacc, mat, ln_e0, inv_dln, u_old, u_new, x, y, z, ux, uy, uz, path, zface,
               vol, nel, backing, repeat_last, dz, dy, dx, kface, wall, segv=None):
    """Secondary electrons from one straight segment (``secondary.py`` has the model and its sources).

    The segment of length ``path`` ends at (x, y, z) with direction u; the energy lost on it,
    E(u_old) - E(u_new), is taken as uniform along it. SE produced per keV lost: ``sep[mat, 0]``
    (= 1 / epsilon); escape probability 0.5 exp(-d / lambda), lambda = ``sep[mat, 1]``, d the distance to the
    nearest surface facing vacuum: the face (depth z - zface; the mean of exp(-d / lambda) over the segment is
    then exact) and, with ``wall``, open-pore walls (:func:`wall_distance`; the mean over the segment by
    Simpson's rule on its ends and middle). Tally: ``seacc[0]`` SE1 (the electron is still on its way in: it
    has not yet been deeper below the face than ``sep[mat, 2]`` and has not yet moved back towards the face on
    a segment reaching deeper than lambda), ``seacc[1]`` SE2 (after that: electrons coming back towards the
    surface, i.e. backscattering), ``seacc[2]`` the "on its way out" flag (the caller resets it per electron);
    ``u_new`` = :data:`U_ALL` spends all the energy left (an electron the transport stops following); an accumulator of length ``SE_ACC`` also keeps the last segment end
    and its wall search in ``seacc[3:9]`` (reused when the next segment starts there; the caller sets
    ``seacc[3]`` to 1e300 per electron). ``segv`` (optional, :func:`wall_distance`): the slice's wall masks and
    pore view factors; a wall's escape probability is weighted by the view factor of the vacuum voxel it emits
    into (SE that would hit another wall are lost), and a point takes the larger of its face and wall escape
    probabilities."""
    lam = sep[mat, 1]
    if lam <= 0.0:
        return
    d2 = z - zface
    d1 = d2 - path * uz
    if d1 < 0.0:
        d1 = 0.0
    if d2 < 0.0:
        d2 = 0.0
    dmin = d1 if d1 < d2 else d2
    dmax = d1 if d1 > d2 else d2
    f = -1.0
    if wall:
        cap = 30.0 * lam
        xa = x - path * ux
        ya = y - path * uy
        za = z - path * uz
        if (seacc.shape[0] >= SE_ACC and abs(xa - seacc[3]) < 1e-9 and abs(ya - seacc[4]) < 1e-9
                and abs(za - seacc[5]) < 1e-9 and seacc[8] == cap):
            wa = seacc[6]  # this segment starts where the last one ended: its end point's search
            ga = seacc[7]
        else:
            wa, ga = wall_distance(vol, nel, backing, repeat_last, xa, ya, za, dz, dy, dx, kface, cap, segv)
        if path > 0.0:
            wm, gm, wb, gb = wall_distance2(vol, nel, backing, repeat_last, x - 0.5 * path * ux, y - 0.5 * path * uy,
                                            z - 0.5 * path * uz, x, y, z, dz, dy, dx, kface, cap, segv)
        else:  # energy deposited at one point (a binary collision): the three points coincide
            wm, gm, wb, gb = wa, ga, wa, ga
        if seacc.shape[0] >= SE_ACC:
            seacc[3] = x
            seacc[4] = y
            seacc[5] = z
            seacc[6] = wb
            seacc[7] = gb
            seacc[8] = cap
        # (no wall within the cap at any of the three points: its escape term is below exp(-30), left out)
        if (wa < dmax or wm < dmax or wb < dmax) and (wa < cap or wm < cap or wb < cap):
            pa = _escape(d1, wa, ga, lam)
            pm = _escape(0.5 * (d1 + d2), wm, gm, lam)
            pb = _escape(d2, wb, gb, lam)
            f = (pa + 4.0 * pm + pb) / 6.0
    if f < 0.0 and dmin < 30.0 * lam:
        dd = dmax - dmin
        if dd > 1e-6 * lam:
            f = lam * (math.exp(-dmin / lam) - math.exp(-dmax / lam)) / dd
        else:
            f = math.exp(-dmin / lam)
    if uz < 0.0 and dmax > lam:
        # moving back towards the face from deeper than one escape depth: from now on a backscattering
        # electron (SE2)
        seacc[2] = 1.0
    if f > 0.0:
        de = math.exp(ln_e0 + u_old / inv_dln) - math.exp(ln_e0 + u_new / inv_dln)
        if de > 0.0:
            n = 0.5 * de * sep[mat, 0] * f
            if seacc[2] > 0.0:
                seacc[1] += n
            else:
                seacc[0] += n
    if dmax > sep[mat, 2]:
        seacc[2] = 1.0


@_jit_inline
def _stop(mat, u, path, pos, wall, sep, sec):
    """An electron the transport stops following (cut-off, range rejection, a binary collision taking all its
    energy): with the SE tally (``sep`` not None) all its energy left is spent on its last segment (``path`` long,
    ending at ``pos`` = (x, y, z, ux, uy, uz); :func:`se_segment` with u_new = :data:`U_ALL`; ``wall``: open-pore
    walls emit too). ``sec`` = (seacc, ln_e0, inv_dln, zface, vol, nel, backing, repeat_last, dz, dy, dx, kface,
    segv) as :func:`transport_body` groups them (no-ops without the SE tally)."""
    if sep is not None:
        seacc, ln_e0, inv_dln, zface, vol, nel, backing, repeat_last, dz, dy, dx, kface, segv = sec
        x, y, z, ux, uy, uz = pos
        se_segment(sep, seacc, mat, ln_e0, inv_dln, u, U_ALL, x, y, z, ux, uy, uz, path, zface,
                   vol, nel, backing, repeat_last, dz, dy, dx, kface, wall, segv)


@_jit_inline
def _spend(rr, rc, rng, rinvd, mat, u, path, pos, wall, sep, sec):
    """Spend the pending ``path`` (nm, travelled in ``mat`` since the last update) from the residual range ``rr``:
    returns (alive, rr, u) with the range and the energy-grid coordinate after it (:func:`range_to_u_m`), and the
    SE of the energy lost on that segment tallied (``sep``/``sec``, :func:`_stop`); alive is False when the range
    falls to the cut-off's ``rc`` (then all the energy left is spent on the segment, :func:`_stop`)."""
    rr -= path
    if rr <= rc:
        _stop(mat, u, path, pos, wall, sep, sec)
        return False, rr, u
    un = range_to_u_m(rng, rinvd, mat, u, rr)
    if sep is not None:
        seacc, ln_e0, inv_dln, zface, vol, nel, backing, repeat_last, dz, dy, dx, kface, segv = sec
        x, y, z, ux, uy, uz = pos
        se_segment(sep, seacc, mat, ln_e0, inv_dln, u, un, x, y, z, ux, uy, uz, path, zface,
                   vol, nel, backing, repeat_last, dz, dy, dx, kface, wall, segv)
    return True, rr, un


@_jit_norc
def transport_one(
    x, y, z, ux, uy, uz, e0, s0, s1,
    vol, dz, dy, dx, kface, backing, repeat_last, dist, safe, rstar,
    ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss,
    mdep=None, mfull=None, sep=None, seacc=None, sewall=False, segv=None, rcp=None,
):
    """Follow one electron entering at (x, y, z) with direction u. Returns (escaped, E, ux, uy, uz).

    State: the material ``mat``, its residual CSDA range ``rr`` (tables' ``rng``) at the last update and the
    path ``pend`` travelled since, and the energy-grid coordinate ``u`` at the last update. A laterally uniform
    volume (nx = ny = 1: bulk, films, layer stacks) skips the lateral voxel planes: crossing them changes
    nothing there (periodic copies of the same column).

    Vacuum (materials with ``nel == 0``: open pores, a vacuum backing or substrate): an electron entering it flies
    straight on (:func:`vacuum_flight`) to the next matter voxel, where a new free path is sampled, or out
    through the face (a BSE, with its energy unchanged), or is lost. ``mdep``/``mfull`` (:func:`matter_layers`)
    make range rejection count only the path that must be spent in matter (:func:`matter_depth`); a geometry
    with vacuum must pass them (``run_slice`` and ``run_point`` do), ``None`` means no vacuum.

    Secondary electrons (optional, ``sep``/``seacc``, :func:`se_segment`): the energy lost on each straight
    segment is turned into the expected number of escaping SE and added to ``seacc``; no random number is drawn,
    so the transport (and every BSE tally) is identical with and without it. ``None`` compiles the hooks away.

    ``rcp`` (:func:`reciprocals`): 1/dx, 1/dy, 1/dz, 1/inv_dln computed once by the caller. Without it they are
    divisions on every call (the compiler hoists each x / dx to a reciprocal at the function's entry: ~8
    divisions per electron)."""
    return transport_body((x, y, z, ux, uy, uz, e0, s0, s1),
                          (vol, dz, dy, dx, kface, backing, repeat_last, dist, safe, rstar),
                          (ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef,
                           eloss),
                          mdep, mfull, sep, seacc, sewall, segv, rcp)


@_jit_inline
def transport_body(st, geo, tabs, mdep, mfull, sep, seacc, sewall, segv, rcp):
    """:func:`transport_one` with its arguments grouped: ``st`` = (x, y, z, ux, uy, uz, e0, s0, s1), ``geo`` =
    (vol, dz, dy, dx, kface, backing, repeat_last, dist, safe, rstar), ``tabs`` = the tables
    (``Tables.as_tuple()``); inlined into every caller (no call per electron)."""
    x, y, z, ux, uy, uz, e0, s0, s1 = st
    vol, dz, dy, dx, kface, backing, repeat_last, dist, safe, rstar = geo
    ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss = tabs
    nz, ny, nx = vol.shape
    lateral = nx > 1 or ny > 1
    if rcp is None:
        idx = 1.0 / dx
        idy = 1.0 / dy
        idz = 1.0 / dz
        dln = 1.0 / inv_dln
    else:
        idx = rcp[0]
        idy = rcp[1]
        idz = rcp[2]
        dln = rcp[3]
    ix = int(x * idx)
    iy = int(y * idy)
    if ix >= nx:
        ix = nx - 1
    if iy >= ny:
        iy = ny - 1
    iz = kface
    mat = lookup(vol, iz, iy, ix, backing, repeat_last)
    if nel[mat] == 0:
        # the beam lands on an open pore: straight down to its wall or bottom
        st, x, y, z, ix, iy, iz, mat = vacuum_flight(x, y, z, ux, uy, uz, ix, iy, iz, vol, dz, dy, dx, kface,
                                                     backing, repeat_last, nel, nx > 1 or ny > 1)
        if st != 0:
            return st == 1, e0 if st == 1 else 0.0, ux, uy, uz
    pend = 0.0
    u = (math.log(e0) - ln_e0) * inv_dln
    rr = interp_m(rng, mat, u)
    rc = rcut[mat]
    s, s0, s1 = next_exp(s0, s1)
    s *= interp_m(lam, mat, u)
    if uz == 0.0:
        uz = 1e-300
    skip = safe > 0.0
    nzd = dist.shape[0]
    zface = kface * dz
    # the SE tally's arguments (:func:`_spend`, :func:`_stop`)
    sec = (seacc, ln_e0, inv_dln, zface, vol, nel, backing, repeat_last, dz, dy, dx, kface, segv)
    # block level of the cell the electron is in (0 unless ``vol`` holds ``stack.block_levels`` codes); refreshed
    # at every voxel entry and material change
    lev = lookup_code(vol, iz, iy, ix, backing, repeat_last) >> LEVEL_SHIFT
    while True:
        inside = False  # True: the flight ends within the same-material ball around the voxel (no plane tests)
        if skip:
            # free flight through the same material without voxel stops: every voxel within Chebyshev
            # distance ``rs`` holds this material (``distance_map``) and lies behind the face, so a flight
            # of length <= rs * safe (safe = the smallest voxel edge) cannot reach another material
            rs = int(dist[iz if iz < nzd else nzd - 1, iy, ix])
            if iz - kface < rs:
                rs = iz - kface
            if rs > 0:
                dmin = rs * safe
                if s >= dmin:
                    pend += dmin
                    s -= dmin
                    x, y, z, ix, iy, iz = _advance(x, y, z, ux, uy, uz, dmin, dz, dy, dx, nx, ny, kface, lateral, idz, idy, idx)
                    continue
                inside = True
        # the cell to leave: the voxel (lev 0) or the uniform aligned block of 2^lev voxels around it
        # (``stack.block_levels``; blocks lie inside the volume and never straddle the periodic edges)
        bx0 = (ix >> lev) << lev
        by0 = (iy >> lev) << lev
        bzb = (iz >> lev) << lev
        bz0 = bzb if bzb > kface else kface  # a block cut by the face: its top is the face
        nbk = 1 << lev
        dmin = _BIG
        axis = 2
        if not inside:
            # signed distances to the cell's exit planes along each axis; the flight ends inside the cell when
            # every displacement s u_i falls short of its plane (no division: the plane distances d_i = e_i / u_i
            # are computed only when a plane is reached, fewer than half of the steps)
            # Branch-free: the exit plane along each axis is chosen by selects (after a collision the signs of
            # u_x, u_y, u_z are random: branches on them were mispredicted about half the time), and the flight
            # reaches it when s |u_i| >= |e_i| (e_i the signed offset of that plane; |e_i| is the distance).
            ex = 0.0
            ey = 0.0
            hit = False
            if lateral:
                ex = ((bx0 + nbk) * dx if ux > 0.0 else bx0 * dx) - x
                ey = ((by0 + nbk) * dy if uy > 0.0 else by0 * dy) - y
                hit = (s * abs(ux) >= abs(ex)) | (s * abs(uy) >= abs(ey))
            # uz is never exactly 0 (nudged after each rotation); below the last slice, flying deeper into the
            # backing, there are no planes
            ez = ((bzb + nbk) * dz if uz > 0.0 else bz0 * dz) - z
            zplane = (uz < 0.0) | (iz < nz) | repeat_last
            hit = hit | ((s * abs(uz) >= abs(ez)) & zplane)
            if hit:
                # the nearest exit plane by selects, without a division per axis (t_a < t_b <=> |e_a| |u_b| <
                # |e_b| |u_a|), then one division for it; ties go to z, then x, then y (as the former branches)
                ea = abs(ez) if zplane else _BIG
                aa = abs(uz)
                if lateral:
                    ax_ = abs(ux)
                    ex_ = abs(ex)
                    lt = ex_ * aa < ea * ax_
                    ea = ex_ if lt else ea
                    aa = ax_ if lt else aa
                    axis = 0 if lt else axis
                    ay_ = abs(uy)
                    ey_ = abs(ey)
                    lt = ey_ * aa < ea * ay_
                    ea = ey_ if lt else ea
                    aa = ay_ if lt else aa
                    axis = 1 if lt else axis
                dmin = ea / aa
        if s < dmin:
            # collision inside the current voxel (or the same-material ball): slow down, then scatter
            if inside:
                x, y, z, ix, iy, iz = _advance(x, y, z, ux, uy, uz, s, dz, dy, dx, nx, ny, kface, lateral, idz, idy, idx)
            else:
                # inside a block the voxel indices may go stale; only (index >> lev) is used until the
                # electron leaves the block, and then they are recomputed
                x += s * ux
                y += s * uy
                z += s * uz
            alive, rr, u = _spend(rr, rc, rng, rinvd, mat, u, pend + s, (x, y, z, ux, uy, uz), sewall, sep, sec)
            if not alive:
                return False, 0.0, ux, uy, uz
            pend = 0.0
            # range rejection (exact): no path of the residual length can reach the face, whatever the
            # materials on the way (``rstar`` bounds the path in any material sequence, see ``max_range``)
            dep = z - zface
            if mdep is not None:
                if mdep.shape[0] > 0:
                    dep = matter_depth(z, iz, kface, dz, mdep, mfull)
            if dep > interp_row(rstar, u) * (1.0 + 1e-9) + 1e-9:
                # it cannot come back out, but its energy still makes SE: spent here, escaping through the face
                # only (with the wall search too, mostly deep below the face, the open-pore in-lens stack of
                # benchmarks/se_speed.py cost 2.68 instead of 2.29x its gold/epoxy stack: the view factors of
                # deep pore voxels, where they are small)
                _stop(mat, u, 0.0, (x, y, z, ux, uy, uz), False, sep, sec)
                return False, 0.0, ux, uy, uz
            # target channel (element, elastic or binary) and the angular-grid pick: two 32-bit uniforms from one
            # 64-bit output
            res, s0, s1 = next_u64(s0, s1)
            j = 0
            ne = nel[mat]
            if ne > 1:
                # channels in order of decreasing probability, energy-major (``tables.kernel_layout``)
                # j = the number of interpolated cumulative probabilities below r (they increase with the
                # channel): a branch-free count over contiguous entries instead of a search whose exit is
                # unpredictable (epoxy: 8 channels, ~2 comparisons and a mispredicted branch per collision)
                r = (float(res >> _S32) + 0.5) * _INV32
                ic = int(u)
                fc = u - ic
                for k in range(ne - 1):
                    c0 = cum[mat, ic, k]
                    j += 1 if r > c0 + fc * (cum[mat, ic + 1, k] - c0) else 0
            # polar angle
            if analytic:
                mu, s0, s1 = sample_mu_analytic(prut, acoef, mat, j, u, ln_e0, inv_dln, s0, s1)
            else:
                xi, s0, s1 = next_uniform(s0, s1)
                mu = mu_table(muq, mat, j, u, ang_scale, ang_off, (float(res & _MASK32) + 0.5) * _INV32, xi)
            ct = 1.0 - 2.0 * mu
            if eloss[mat, j] > 0.0:
                # binary collision with an atomic electron: the primary keeps E cos^2(theta), i.e. its grid
                # coordinate drops by ln(cos^2 theta) / dlnE (one logarithm; was exp then log of the energy)
                c2 = ct * ct
                if c2 <= 0.0:
                    _stop(mat, u, 0.0, (x, y, z, ux, uy, uz), sewall, sep, sec)
                    return False, 0.0, ux, uy, uz
                ub = u + math.log(c2) * inv_dln
                if sep is not None:
                    # the knock-on electron's energy is deposited at the collision point
                    se_segment(sep, seacc, mat, ln_e0, inv_dln, u, ub,
                               x, y, z, ux, uy, uz, 0.0, zface, vol, nel, backing, repeat_last, dz, dy, dx,
                               kface, sewall, segv)
                u = ub
                if u <= 0.0:
                    _stop(mat, u, 0.0, (x, y, z, ux, uy, uz), sewall, sep, sec)
                    return False, 0.0, ux, uy, uz
                rr = interp_m(rng, mat, u)
                if rr <= rc:
                    _stop(mat, u, 0.0, (x, y, z, ux, uy, uz), sewall, sep, sec)
                    return False, 0.0, ux, uy, uz
            # azimuth: (cos phi, sin phi) from a uniform point in the unit disc (rejection, no trigonometry)
            # (both coordinates from one 64-bit output, 32 bits each: 1.27 draws per collision instead of 2.54)
            while True:
                res, s0, s1 = next_u64(s0, s1)
                cp = (float(res >> _S32) + 0.5) * _INV31 - 1.0
                sp = (float(res & _MASK32) + 0.5) * _INV31 - 1.0
                q = cp * cp + sp * sp
                if q <= 1.0 and q > 1e-12:
                    break
            # new direction: with sin(theta) = 2 sqrt(mu (1 - mu)), (cp, sp) / sqrt(q) = (cos phi, sin phi) and
            # w = 1 - uz^2, the rotation needs (cp, sp) sin(theta) / sqrt(q w) and cp sin(theta) sqrt(w) / sqrt(q)
            # = cp f w: one square root and one division for all of it, in single precision (f's relative error
            # ~1e-7 tilts the new direction by ~1e-7 of the deflection; the renormalisation below then leaves
            # O(1e-14)): shorter latency on the collision's dependency chain
            if abs(uz) > 0.99999:
                sg = 1.0 if uz > 0.0 else -1.0
                f = 2.0 * float(math.sqrt(np.float32(mu * (1.0 - mu)) / np.float32(q)))
                nux = cp * f
                nuy = sp * f
                nuz = ct * sg
            else:
                w = 1.0 - uz * uz
                f = 2.0 * float(math.sqrt(np.float32(mu * (1.0 - mu)) / np.float32(q * w)))
                nux = ux * ct + (ux * uz * cp - uy * sp) * f
                nuy = uy * ct + (uy * uz * cp + ux * sp) * f
                nuz = uz * ct - cp * f * w
            # renormalise (one Newton step for 1/sqrt(n2) about 1: the norm is off by O(1e-7) (single-precision
            # f), so the residual after the step is O(1e-14))
            nrm = 1.5 - 0.5 * (nux * nux + nuy * nuy + nuz * nuz)
            ux = nux * nrm
            uy = nuy * nrm
            uz = nuz * nrm
            if uz == 0.0:
                uz = 1e-300
            s, s0, s1 = next_exp(s0, s1)
            s *= interp_m(lam, mat, u)
            continue
        # reach the cell boundary. Branch-free over the axis and the direction (both random after a collision:
        # branches on them were mispredicted about half the time): every coordinate moves, the crossed one is set
        # exactly on its plane and its index stepped (wrapped periodically in x and y); the others are recomputed
        # from the position, clamped to the cell (a voxel, lev 0: the same index; in a block the indices may
        # have gone stale and are renewed here)
        pend += dmin
        s -= dmin
        xa = x + dmin * ux
        ya = y + dmin * uy
        za = z + dmin * uz
        # x and y: the stepped index and its plane (wrapped)
        ixs, xp = _step_periodic(bx0, nbk, ux, dx, nx)
        iys, yp = _step_periodic(by0, nbk, uy, dy, ny)
        # z (no wrap; above the face: out)
        izs = bzb + nbk if uz > 0.0 else bz0 - 1
        zp = izs * dz if uz > 0.0 else bz0 * dz
        if axis == 2 and izs < kface:
            alive, rr, u = _spend(rr, rc, rng, rinvd, mat, u, pend, (xa, ya, zface, ux, uy, uz), sewall, sep, sec)
            if not alive:
                return False, 0.0, ux, uy, uz
            return True, math.exp(ln_e0 + u * dln), ux, uy, uz
        cx = _clampi(int(xa * idx), bx0, bx0 + nbk - 1)
        cy = _clampi(int(ya * idy), by0, by0 + nbk - 1)
        cz = _clampi(int(za * idz), bz0, bzb + nbk - 1)
        ix = ixs if axis == 0 else cx
        x = xp if axis == 0 else xa
        iy = iys if axis == 1 else cy
        y = yp if axis == 1 else ya
        iz = izs if axis == 2 else cz
        z = zp if axis == 2 else za
        code = lookup_code(vol, iz, iy, ix, backing, repeat_last)
        lev = code >> LEVEL_SHIFT
        newmat = code & MAT_MASK
        if newmat != mat:
            alive, rr, u = _spend(rr, rc, rng, rinvd, mat, u, pend, (x, y, z, ux, uy, uz), sewall, sep, sec)
            if not alive:
                return False, 0.0, ux, uy, uz
            pend = 0.0
            if nel[newmat] == 0:
                st, x, y, z, ix, iy, iz, newmat = vacuum_flight(x, y, z, ux, uy, uz, ix, iy, iz, vol, dz, dy, dx,
                                                                kface, backing, repeat_last, nel, lateral)
                if st == 1:
                    return True, math.exp(ln_e0 + u * dln), ux, uy, uz
                if st == 2:
                    return False, 0.0, ux, uy, uz
            mat = newmat
            lev = lookup_code(vol, iz, iy, ix, backing, repeat_last) >> LEVEL_SHIFT
            rr = interp_m(rng, mat, u)
            rc = rcut[mat]
            s, s0, s1 = next_exp(s0, s1)
            s *= interp_m(lam, mat, u)


@_jit
def reciprocals(dz, dy, dx, inv_dln):
    """The ``rcp`` argument of :func:`transport_one`."""
    out = np.empty(4)
    out[0] = 1.0 / dx
    out[1] = 1.0 / dy
    out[2] = 1.0 / dz
    out[3] = 1.0 / inv_dln
    return out


@_jit
def _tally(tal, he, ha, e, e0, uy, uz, by, bz, emin, cmin, cmax):
    tal[0] += 1
    k = int(e / e0 * NE_BINS)
    if k >= NE_BINS:
        k = NE_BINS - 1
    he[k] += 1
    cn = -uz
    if cn > 1.0:
        cn = 1.0
    k = int(math.degrees(math.acos(cn)))
    if k >= NA_BINS:
        k = NA_BINS - 1
    ha[k] += 1
    ccol = -(uy * by + uz * bz)  # cosine to the column axis (reversed beam direction)
    if e >= emin and ccol >= cmin and ccol <= cmax:
        tal[1] += 1


@nb.njit(cache=True, fastmath=True, parallel=True, error_model="numpy")
def run_point(
    n, nchunks, seed, stream, e0, x0, y0, by, bz, sigma_x, sigma_y,
    vol, dz, dy, dx, kface, backing, repeat_last,
    emin, cmin, cmax,
    ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss,
):
    """``n`` electrons at one beam position; tallies per fixed chunk (deterministic for any thread count)."""
    tal = np.zeros((nchunks, N_TALLY), dtype=np.int64)
    he = np.zeros((nchunks, NE_BINS), dtype=np.int64)
    ha = np.zeros((nchunks, NA_BINS), dtype=np.int64)
    lx = vol.shape[2] * dx
    ly = vol.shape[1] * dy
    nodist = np.zeros((1, 1, 1), dtype=np.uint8)  # no free-flight skipping (bulk, films, layers)
    rstar = max_range(rng, True)
    mdep, mfull = matter_layers(vol, nel, backing, repeat_last)
    rcp = reciprocals(dz, dy, dx, inv_dln)
    geo = (vol, dz, dy, dx, kface, backing, repeat_last, nodist, 0.0, rstar)
    tabs = (ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss)
    beam = (seed, stream, e0, x0, y0, by, bz, sigma_x, sigma_y, lx, ly, emin, cmin, cmax)
    for c in nb.prange(nchunks):
        _point_chunk((n * c) // nchunks, (n * (c + 1)) // nchunks, beam, geo, tabs, mdep, mfull, rcp, tal[c], he[c],
                     ha[c])
    return tal.sum(axis=0), he.sum(axis=0), ha.sum(axis=0)


@_jit_norc
def _point_chunk(start, stop, beam, geo, tabs, mdep, mfull, rcp, tal, he, ha):
    """Electrons ``start``..``stop - 1`` of :func:`run_point` (the transport inlined: no call per electron)."""
    seed, stream, e0, x0, y0, by, bz, sigma_x, sigma_y, lx, ly, emin, cmin, cmax = beam
    z0 = geo[4] * geo[1]
    for k in range(start, stop):
        s0, s1 = seed_state(seed, stream, 0, k)
        x, y, s0, s1 = _probe(x0, y0, sigma_x, sigma_y, lx, ly, s0, s1)
        esc, e, ux, uy, uz = transport_body((x, y, z0, 0.0, by, bz, e0, s0, s1), geo, tabs, mdep, mfull, None, None,
                                            False, None, rcp)
        if esc:
            _tally(tal, he, ha, e, e0, uy, uz, by, bz, emin, cmin, cmax)


@_jit
def _probe(x0, y0, sigma_x, sigma_y, lx, ly, s0, s1):
    """Gaussian probe offset (Box-Muller), wrapped into the periodic cell."""
    if sigma_x > 0.0 or sigma_y > 0.0:
        r1, s0, s1 = next_uniform(s0, s1)
        r2, s0, s1 = next_uniform(s0, s1)
        rad = math.sqrt(-2.0 * math.log(r1))
        x0 = x0 + sigma_x * rad * math.cos(_TWO_PI * r2)
        y0 = y0 + sigma_y * rad * math.sin(_TWO_PI * r2)
    x = x0 - lx * math.floor(x0 / lx)
    y = y0 - ly * math.floor(y0 / ly)
    if x >= lx:
        x = 0.0
    if y >= ly:
        y = 0.0
    return x, y, s0, s1


@nb.njit(cache=True, fastmath=True, parallel=True, error_model="numpy")
def run_slice(
    kface, n_per_pixel, seed, e0, by, bz, sigma_x, sigma_y,
    vol, dz, dy, dx, backing, repeat_last, dist, safe, reject,
    emin, cmin, cmax,
    ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss,
):
    """Raster the face of slice ``kface`` at the pixel (voxel) centres.

    Returns per-pixel counts of all BSE and of detected BSE, and energy / angle histograms summed over the
    slice (per-row partial sums: deterministic for any thread count).
    """
    nz, ny, nx = vol.shape
    allc = np.zeros((ny, nx), dtype=np.int64)
    det = np.zeros((ny, nx), dtype=np.int64)
    he = np.zeros((ny, NE_BINS), dtype=np.int64)
    ha = np.zeros((ny, NA_BINS), dtype=np.int64)
    lx = nx * dx
    ly = ny * dy
    z0 = kface * dz
    rstar = max_range(rng, reject)
    mdep, mfull = matter_layers(vol, nel, backing, repeat_last)
    rcp = reciprocals(dz, dy, dx, inv_dln)
    geo = (vol, dz, dy, dx, kface, backing, repeat_last, dist, safe, rstar)
    tabs = (ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss)
    beam = (seed, n_per_pixel, e0, by, bz, sigma_x, sigma_y, lx, ly, z0, emin, cmin, cmax)
    for iy in nb.prange(ny):
        tal = np.zeros(N_TALLY, dtype=np.int64)
        # np.int64: numba types the prange index int64 when it first types this loop and uint64 in the parallel
        # loop it then builds, and compiled the row (the whole inlined transport) once for each (~half of this
        # kernel's cold compile time wasted); one type, one compile
        _slice_row(np.int64(iy), beam, geo, tabs, mdep, mfull, rcp, tal, he[iy], ha[iy], allc[iy], det[iy])
    return allc, det, he.sum(axis=0), ha.sum(axis=0)


@_jit_norc
def _slice_row(iy, beam, geo, tabs, mdep, mfull, rcp, tal, he, ha, allc, det):
    """Pixel row ``iy`` of :func:`run_slice` (the transport inlined: no call per electron)."""
    seed, n_per_pixel, e0, by, bz, sigma_x, sigma_y, lx, ly, z0, emin, cmin, cmax = beam
    kface = geo[4]
    dy = geo[2]
    dx = geo[3]
    nx = geo[0].shape[2]
    for ix in range(nx):
        tal[0] = 0
        tal[1] = 0
        pix = iy * nx + ix
        for k in range(n_per_pixel):
            s0, s1 = seed_state(seed, kface, pix, k)
            x, y, s0, s1 = _probe((ix + 0.5) * dx, (iy + 0.5) * dy, sigma_x, sigma_y, lx, ly, s0, s1)
            esc, e, ux, uy, uz = transport_body((x, y, z0, 0.0, by, bz, e0, s0, s1), geo, tabs, mdep, mfull, None,
                                                None, False, None, rcp)
            if esc:
                _tally(tal, he, ha, e, e0, uy, uz, by, bz, emin, cmin, cmax)
        allc[ix] = tal[0]
        det[ix] = tal[1]


@nb.njit(cache=True, fastmath=True, parallel=True, error_model="numpy")
def run_point_se(
    n, nchunks, seed, stream, e0, x0, y0, by, bz, sigma_x, sigma_y,
    vol, dz, dy, dx, kface, backing, repeat_last,
    emin, cmin, cmax,
    ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss,
    sep,
):
    """:func:`run_point` with the secondary-electron tally (``sep``: per-material SE parameters, see
    :func:`se_segment`). The BSE tallies are identical to :func:`run_point`'s (same random numbers); the SE
    yields come back as per-run sums (SE1, SE2) of expected escaping SE."""
    tal = np.zeros((nchunks, N_TALLY), dtype=np.int64)
    he = np.zeros((nchunks, NE_BINS), dtype=np.int64)
    ha = np.zeros((nchunks, NA_BINS), dtype=np.int64)
    se = np.zeros((nchunks, 2), dtype=np.float64)
    lx = vol.shape[2] * dx
    ly = vol.shape[1] * dy
    nodist = np.zeros((1, 1, 1), dtype=np.uint8)
    rstar = max_range(rng, True)
    mdep, mfull = matter_layers(vol, nel, backing, repeat_last)
    rcp = reciprocals(dz, dy, dx, inv_dln)
    geo = (vol, dz, dy, dx, kface, backing, repeat_last, nodist, 0.0, rstar)
    tabs = (ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss)
    beam = (seed, stream, e0, x0, y0, by, bz, sigma_x, sigma_y, lx, ly, emin, cmin, cmax)
    for c in nb.prange(nchunks):
        acc = np.zeros(3, dtype=np.float64)
        _point_chunk_se((n * c) // nchunks, (n * (c + 1)) // nchunks, beam, geo, tabs, mdep, mfull, rcp, sep, acc,
                        tal[c], he[c], ha[c])
        se[c, 0] = acc[0]
        se[c, 1] = acc[1]
    return tal.sum(axis=0), he.sum(axis=0), ha.sum(axis=0), se.sum(axis=0)


@_jit_norc
def _point_chunk_se(start, stop, beam, geo, tabs, mdep, mfull, rcp, sep, acc, tal, he, ha):
    """Electrons ``start``..``stop - 1`` of :func:`run_point_se` (the transport inlined, as in
    :func:`_point_chunk`); the SE sums accumulate in ``acc``."""
    seed, stream, e0, x0, y0, by, bz, sigma_x, sigma_y, lx, ly, emin, cmin, cmax = beam
    z0 = geo[4] * geo[1]
    for k in range(start, stop):
        s0, s1 = seed_state(seed, stream, 0, k)
        x, y, s0, s1 = _probe(x0, y0, sigma_x, sigma_y, lx, ly, s0, s1)
        acc[2] = 0.0
        esc, e, ux, uy, uz = transport_body((x, y, z0, 0.0, by, bz, e0, s0, s1), geo, tabs, mdep, mfull, sep, acc,
                                            False, None, rcp)
        if esc:
            _tally(tal, he, ha, e, e0, uy, uz, by, bz, emin, cmin, cmax)


@nb.njit(cache=True, fastmath=True, parallel=True, error_model="numpy")
def run_slice_se(
    kface, n_per_pixel, seed, e0, by, bz, sigma_x, sigma_y,
    vol, dz, dy, dx, backing, repeat_last, dist, safe, reject,
    emin, cmin, cmax,
    ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss,
    sep, wall, cone, segv,
):
    """:func:`run_slice` with the secondary-electron tally: per-pixel BSE counts (identical to
    :func:`run_slice`'s) and per-pixel sums of expected escaping SE1 and SE2 (``wall``: open-pore walls emit
    too, :func:`se_segment`).

    Detector models (``secondary.py``, ``detectors.py``): ``cone`` = (ax, ay, az, cos_min) counts, per pixel,
    the BSE whose exit direction lies within the cone of axis a (a unit vector) -- the BSE seen by a detector in
    that direction (cos_min > 1: none). For the per-pixel variance of a signal a SE + b BSE_cone + d BSE, the sums
    of s^2, s c and s t over the electrons (s: one electron's expected SE, c: 1 when its BSE is in the cone, t: 1
    when it backscatters at all; the last for the ET detector's SE3 share).
    ``segv``: the tuple (views, masks, dirs) of ``secondary.se_walls`` (:func:`wall_distance`: the slice's
    neighbour masks and the pores' view factors, filled on first use; no view layers: every SE leaving a wall
    counts)."""
    nz, ny, nx = vol.shape
    allc = np.zeros((ny, nx), dtype=np.int64)
    det = np.zeros((ny, nx), dtype=np.int64)
    se1 = np.zeros((ny, nx), dtype=np.float64)
    se2 = np.zeros((ny, nx), dtype=np.float64)
    sesq = np.zeros((ny, nx), dtype=np.float64)
    secone = np.zeros((ny, nx), dtype=np.float64)
    conec = np.zeros((ny, nx), dtype=np.int64)
    sebse = np.zeros((ny, nx), dtype=np.float64)
    he = np.zeros((ny, NE_BINS), dtype=np.int64)
    ha = np.zeros((ny, NA_BINS), dtype=np.int64)
    lx = nx * dx
    ly = ny * dy
    z0 = kface * dz
    rstar = max_range(rng, reject)
    mdep, mfull = matter_layers(vol, nel, backing, repeat_last)
    rcp = reciprocals(dz, dy, dx, inv_dln)
    geo = (vol, dz, dy, dx, kface, backing, repeat_last, dist, safe, rstar)
    tabs = (ln_e0, inv_dln, lam, rng, rinvd, rcut, nel, cum, analytic, ang_scale, ang_off, muq, prut, acoef, eloss)
    beam = (seed, n_per_pixel, e0, by, bz, sigma_x, sigma_y, lx, ly, z0, emin, cmin, cmax)
    for iy in nb.prange(ny):
        tal = np.zeros(N_TALLY, dtype=np.int64)
        acc = np.zeros(SE_ACC, dtype=np.float64)
        # np.int64(iy): one compiled row, as in run_slice
        _slice_row_se(np.int64(iy), beam, geo, tabs, mdep, mfull, rcp, sep, wall, cone, segv, tal, acc, he[iy],
                      ha[iy], (allc[iy], det[iy], se1[iy], se2[iy], sesq[iy], secone[iy], conec[iy], sebse[iy]))
    return allc, det, se1, se2, he.sum(axis=0), ha.sum(axis=0), conec, sesq, secone, sebse


@_jit_norc
def _slice_row_se(iy, beam, geo, tabs, mdep, mfull, rcp, sep, wall, cone, segv, tal, acc, he, ha, out):
    """Pixel row ``iy`` of :func:`run_slice_se` (the transport inlined, as in :func:`_slice_row`); ``out`` = the
    row's (allc, det, se1, se2, sesq, secone, conec, sebse)."""
    seed, n_per_pixel, e0, by, bz, sigma_x, sigma_y, lx, ly, z0, emin, cmin, cmax = beam
    allc, det, se1, se2, sesq, secone, conec, sebse = out
    kface = geo[4]
    dy = geo[2]
    dx = geo[3]
    nx = geo[0].shape[2]
    for ix in range(nx):
        tal[0] = 0
        tal[1] = 0
        acc[0] = 0.0
        acc[1] = 0.0
        nc = 0
        sq = 0.0
        sc = 0.0
        sb = 0.0
        pix = iy * nx + ix
        for k in range(n_per_pixel):
            s0, s1 = seed_state(seed, kface, pix, k)
            x, y, s0, s1 = _probe((ix + 0.5) * dx, (iy + 0.5) * dy, sigma_x, sigma_y, lx, ly, s0, s1)
            acc[2] = 0.0
            acc[3] = 1e300
            before = acc[0] + acc[1]
            esc, e, ux, uy, uz = transport_body((x, y, z0, 0.0, by, bz, e0, s0, s1), geo, tabs, mdep, mfull, sep, acc,
                                                wall, segv, rcp)
            sv = acc[0] + acc[1] - before
            sq += sv * sv
            if esc:
                sb += sv
                _tally(tal, he, ha, e, e0, uy, uz, by, bz, emin, cmin, cmax)
                if ux * cone[0] + uy * cone[1] + uz * cone[2] >= cone[3]:
                    nc += 1
                    sc += sv
        allc[ix] = tal[0]
        det[ix] = tal[1]
        se1[ix] = acc[0]
        se2[ix] = acc[1]
        sesq[ix] = sq
        secone[ix] = sc
        conec[ix] = nc
        sebse[ix] = sb
