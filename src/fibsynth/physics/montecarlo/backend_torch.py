"""The torch backend of the Monte Carlo: a vectorised (PyTorch) transport, for CUDA or the CPU.

It supplies only the transport; settings (``settings.py``), the set-up of a run, its tables and its parameter
record (``setup.py``) are the numba backend's. (This module was ``montecarlo/gpu.py``; that name remains as a
deprecated alias.)

The numba kernel (:mod:`fibsynth.physics.montecarlo.kernel`) follows one electron at a time. Here a batch of
electrons is held as a structure of arrays (voxel index ``ix, iy, iz``, position *inside* the current voxel
``px, py, pz``, direction ``ux, uy, uz``, energy as the ln-E grid coordinate ``u``, material, remaining free
flight ``s``, pixel index, electron id, alive flag) and every iteration advances every live electron by one
event, branch-free (``torch.where``):

* the distances to the next x, y, z voxel planes are computed exactly (Amanatides-Woo, as in the kernel; the
  beyond-volume backing is one semi-infinite voxel unless the last slice is repeated);
* if the remaining free flight ``s`` ends before the nearest plane, the electron moves to its collision point,
  else to the plane (the crossing coordinate is set exactly, the index stepped, x/y wrapped periodically);
* the CSDA energy loss of the step is applied through the tabulated range, ``R(E') = R(E) - step`` (inverted
  with ``searchsorted``). The kernel accumulates the path of same-material boundary crossings and applies it
  at the next collision / material change; applying it per step is the same thing, because the range-table
  inversion is additive (``R^-1(R^-1(R(E) - a) ... - b) = R^-1(R(E) - a - b)``), and an electron whose
  residual range falls below the cut-off's is absorbed at the same point of its history either way;
* at a collision the element is drawn from ``cum``, the polar angle from the element's tabulated angular
  distribution (or, with ``Physics(angular_sampling="analytic")``, the closed-form Browning / screened-Rutherford
  rule), the azimuth uniformly, the direction rotated, and a new free flight drawn with the mean free
  path at the new energy; at a boundary into another material the rest of the flight is resampled there
  (memorylessness), at a boundary into the same material the flight continues;
* an electron crossing the face plane ``z = kface dz`` towards the vacuum is a BSE and is tallied through the
  detector model (energy threshold, polar acceptance about the column axis), exactly as ``kernel._tally``.

Every ``compact_every`` iterations the live set is compacted (``torch.nonzero``) and refilled with new
electrons, so the batch stays full and memory is bounded by ``batch`` whatever the number of electrons.

Precision: float32 by default on every device (what a GPU runs fast; the CPU tests therefore exercise the
same arithmetic); ``dtype=torch.float64`` is available. Positions are kept relative to the current voxel, so
float32 keeps sub-picometre resolution in nanometre voxels; the inversion of the range table is searched in
float64. Random numbers: ``torch.Generator`` (Philox on CUDA, Mersenne Twister on the CPU) seeded from
(seed, stream) by splitmix64. Results are reproducible for a given device, batch and dtype, and are
*statistically* (not bitwise) equal to the numba kernel's, which uses other random streams.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.physics.materials import Material
from fibsynth.physics.montecarlo.kernel import NA_BINS, NE_BINS
from fibsynth.physics.montecarlo.setup import (
    LATERAL_INFINITE_NM,
    BseResult,
    layer_setup,
    slice_beam,
    slice_tables,
    stack_materials,
)

_BIG = 1e30
# FIBSYNTH_TORCH_CHECK=1: every table / voxel gather checks its indices on the host and names the table that an
# out-of-range index would have read (a device-side assert on CUDA names nothing; costs a sync per gather)
_CHECK = os.environ.get("FIBSYNTH_TORCH_CHECK", "") == "1"
_MASK64 = (1 << 64) - 1
_POLAR = 0.99999  # |uz| above which the rotation uses the polar-axis formula (as in the kernel)


def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def torch_seed(seed: int, stream: int = 0, tag: int = 0) -> int:
    """A 63-bit generator seed from (seed, stream, tag), mixed by splitmix64 like the kernel's streams."""
    h = _splitmix64(int(seed) & _MASK64)
    h = _splitmix64(h ^ (int(stream) & _MASK64))
    h = _splitmix64(h ^ (int(tag) & _MASK64))
    return h >> 1


def pick_device(device=None):
    """``None``/``"auto"``: CUDA when available, else the CPU; otherwise ``torch.device(device)``."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise FibsynthError(f"expected auto, cpu, cuda or cuda:N (got {device!r})", param="device") from None
    if dev.type not in ("cpu", "cuda"):
        raise FibsynthError(f"expected auto, cpu, cuda or cuda:N (got {device!r})", param="device")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FibsynthError(f"no CUDA device is available to torch (got {device!r})", param="device")
    return dev


def default_batch(device) -> int:
    return 1_000_000 if device.type == "cuda" else 100_000


class TorchTables:
    """The numpy :class:`~fibsynth.physics.montecarlo.tables.Tables` as flat tensors on ``device``."""

    def __init__(self, tabs, device, dtype):
        import torch

        nm, g = tabs.lam_inv.shape
        self.nm, self.g = nm, g
        self.jmax = tabs.cum.shape[1]
        self.nel_max = int(tabs.nel.max())
        self.ln_e0 = float(tabs.ln_e0)
        self.inv_dln = float(tabs.inv_dln)
        kw = dict(device=device, dtype=dtype)
        self.lam = torch.as_tensor(tabs.lam_inv.ravel(), **kw)
        self.rng = torch.as_tensor(tabs.rng.ravel(), **kw)
        # rows made globally increasing by a per-material offset, for one float64 searchsorted over all rows
        span = float(tabs.rng.max()) * 2.0 + 1.0
        self.rng_off = span
        self.rng_sorted = torch.as_tensor((tabs.rng + span * np.arange(nm)[:, None]).ravel(), device=device,
                                          dtype=torch.float64)
        self.rcut = torch.as_tensor(tabs.rcut, **kw)
        self.cum = torch.as_tensor(tabs.cum.ravel(), **kw)
        self.prut = torch.as_tensor(tabs.prut.ravel(), **kw)
        self.acoef = torch.as_tensor(tabs.acoef.ravel(), **kw)
        el = getattr(tabs, "eloss", None)
        self.eloss = torch.as_tensor((np.zeros_like(tabs.acoef) if el is None else el).ravel() > 0, device=device)
        # vacuum rows (open pores, a vacuum backing or substrate: ``nel == 0``, all-zero tables): crossed in straight
        # flight by :func:`transport`; ``has_vacuum`` False keeps the matter-only code path (no extra operation)
        vac = np.asarray(tabs.nel) == 0
        self.has_vacuum = bool(vac.any())
        self.vac = torch.as_tensor(vac, device=device)
        # tabulated angular distribution (the kernel's default sampling, and the only one for mott-pwa):
        # muq[m, j, a, k] odds-ratio rows on the angular energy grid, flattened per (m, j) row
        self.analytic = bool(getattr(tabs, "analytic", 0))
        muq = np.asarray(tabs.muq)
        self.n_el_muq, self.n_ang, self.n_prob = int(muq.shape[1]), int(muq.shape[2]), int(muq.shape[3])
        self.muq = torch.as_tensor(muq.reshape(-1), **kw)
        self.ang_scale = float(tabs.ang_scale)
        self.ang_off = float(tabs.ang_off)

    def interp(self, flat, row, u):
        """Linear interpolation of table rows ``row`` (int tensor) at grid coordinates ``u``."""
        import torch

        # a NaN grid coordinate (an electron whose energy went undefined) reads row start, not memory outside the
        # table: NaN -> integer is INT64_MIN on the CPU and device-defined on CUDA
        i = torch.nan_to_num(u.floor(), nan=0.0).clamp(0, self.g - 2)
        f = u - i
        idx = row * self.g + i.long()
        if _CHECK:
            _check_index(idx, flat.numel() - 1, "interp", u)
        return flat[idx] * (1.0 - f) + flat[idx + 1] * f

    def invert_range(self, mat, r):
        """Grid coordinate u with R_mat(u) = r (piecewise-linear inverse of the range table)."""
        import torch

        key = r.double() + self.rng_off * mat.double()
        j = torch.searchsorted(self.rng_sorted, key, right=True) - 1 - mat * self.g
        j = j.clamp(0, self.g - 2)
        idx = mat * self.g + j
        if _CHECK:
            _check_index(idx, self.rng.numel() - 1, "invert_range", r)
        lo = self.rng[idx]
        hi = self.rng[idx + 1]
        return j.to(r.dtype) + (r - lo) / (hi - lo)


class _Geometry:
    def __init__(self, vol, dz, dy, dx, kface, backing, repeat_last, device):
        import torch

        if isinstance(vol, torch.Tensor):  # already uploaded (reuse across the slices of a stack)
            self.vol = vol.to(device=device, dtype=torch.uint8).contiguous().view(-1)
        else:
            self.vol = torch.as_tensor(np.ascontiguousarray(vol, dtype=np.uint8).ravel(), device=device)
        self.nz, self.ny, self.nx = vol.shape
        self.dz, self.dy, self.dx = float(dz), float(dy), float(dx)
        self.kface = int(kface)
        self.backing = int(backing)
        self.repeat_last = bool(repeat_last)

    def lookup(self, iz, iy, ix):
        import torch

        izc = iz.clamp(0, self.nz - 1)
        idx = (izc * self.ny + iy.clamp(0, self.ny - 1)) * self.nx + ix.clamp(0, self.nx - 1)
        if _CHECK:
            _check_index(idx, self.vol.numel(), "voxel lookup")
        m = self.vol[idx].long()
        if not self.repeat_last:
            m = torch.where(iz >= self.nz, torch.full_like(m, self.backing), m)
        return m


def _check_index(idx, size: int, what: str, coord=None) -> None:
    """FIBSYNTH_TORCH_CHECK mode: raise (naming the table) if any of ``idx`` lies outside [0, size)."""
    import torch

    bad = (idx < 0) | (idx >= size)
    if bool(bad.any()):
        nonfinite = "" if coord is None else f"; non-finite coordinates among them: {int((~torch.isfinite(coord[bad])).sum())}"
        raise RuntimeError(f"torch transport: {int(bad.sum())} index(es) outside {what} (size {size}): "
                           f"min {int(idx.min())}, max {int(idx.max())}{nonfinite}")


def sample_mu_table(tt: TorchTables, row, u, r_row, xi):
    """``row`` = material * (elements per material in ``muq``) + element. mu = (1 - cos theta)/2 from the tabulated inverse CDF, exactly as ``kernel.sample_mu_table``: the
    angular-grid energy is picked stochastically between its two neighbours (``r_row``), then
    mu = q v / (xi + q v), v = 1 - xi, with the odds ratio q linear in t = 1 - xi^(1/4)."""
    import torch

    ua = u * tt.ang_scale + tt.ang_off
    ga = torch.nan_to_num(torch.floor(ua + 1.0 - r_row), nan=0.0).clamp(0, tt.n_ang - 1).long()
    tk = (1.0 - torch.sqrt(torch.sqrt(xi))) * (tt.n_prob - 1)
    k = torch.nan_to_num(torch.floor(tk), nan=0.0).clamp(0, tt.n_prob - 2)
    f = tk - k
    base = (row * tt.n_ang + ga) * tt.n_prob + k.long()
    if _CHECK:
        _check_index(base, tt.muq.numel() - 1, "angular table (muq)", u)
    q0 = tt.muq[base]
    q = q0 + f * (tt.muq[base + 1] - q0)
    qv = q * (1.0 - xi)
    return qv / (xi + qv)


def scatter(tt: TorchTables, mat, u, e, ux, uy, uz, rr):
    """One elastic collision for every electron: target element from ``cum``, polar angle from the element's
    angular distribution (the tabulated inverse CDF, or the analytic Browning / Rutherford rule when the tables
    were built with ``angular="analytic"``), uniform azimuth; returns the new unit
    direction and the fraction of the energy kept (cos^2 theta for binary-collision channels, else 1). ``u``: energy grid coordinate, ``e``: energy (keV), ``rr``: uniforms, shape (>= 4, n)."""
    import torch

    j = torch.zeros_like(mat)
    for jj in range(tt.nel_max - 1):
        j = j + (rr[0] > tt.interp(tt.cum, mat * tt.jmax + jj, u)).long()
    row = mat * tt.jmax + j
    # 1 - cos(theta) directly (not 1 - ct^2 from a rounded ct): sin(theta) stays accurate for small angles
    if tt.analytic:
        a = tt.acoef[row] / e
        r2 = rr[2]
        omc = torch.where(rr[1] <= tt.interp(tt.prut, row, u), 2.0 * a * r2 / (1.0 + a - r2), 2.0 * r2)
    else:
        # xi in (0, 1] as in the kernel (1 - a uniform in [0, 1)): CUDA's float32 uniforms can be exactly 0, and at
        # xi = 0 a binary channel's row (q = 0 at its last point) gives mu = 0 / 0 = NaN, an electron with NaN
        # coordinates whose table indices are undefined (one candidate for the H200's out-of-bounds gather)
        omc = 2.0 * sample_mu_table(tt, mat * tt.n_el_muq + j, u, rr[1], 1.0 - rr[2])
    omc = omc.clamp(0.0, 2.0)
    ct = 1.0 - omc
    stt = torch.sqrt(omc * (2.0 - omc))
    phi = (2.0 * math.pi) * rr[3]
    cp, sp = torch.cos(phi), torch.sin(phi)
    # sqrt(1 - uz^2) as sqrt(ux^2 + uy^2): equal for a unit vector, and accurate near the pole in float32
    tmp = torch.sqrt(ux * ux + uy * uy).clamp_min(1e-30)
    nux = ux * ct + stt * (ux * uz * cp - uy * sp) / tmp
    nuy = uy * ct + stt * (uy * uz * cp + ux * sp) / tmp
    nuz = uz * ct - stt * cp * tmp
    pole = uz.abs() > _POLAR
    nux = torch.where(pole, stt * cp, nux)
    nuy = torch.where(pole, stt * sp, nuy)
    nuz = torch.where(pole, ct * torch.sign(uz), nuz)
    nrm = torch.rsqrt(nux * nux + nuy * nuy + nuz * nuz)
    # binary collisions with atomic electrons (``eloss`` channels): the primary keeps E cos^2(theta)
    keep = torch.where(tt.eloss[row], ct * ct, torch.ones_like(ct))
    return nux * nrm, nuy * nrm, nuz * nrm, keep


def _count(acc, bins, mask):
    """``acc[b] += number of i with mask[i] and bins[i] == b`` (``bins`` integer, 0 <= bins < len(acc)), without
    reading anything back to the host: ``bincount`` sizes its output from ``bins.max()`` (a device-to-host copy,
    i.e. a synchronisation, on CUDA) and ``bins[mask]`` needs the count of ``mask``; ``histc`` with a fixed range
    does neither, and it skips values outside the range (the electrons not in ``mask``). Exact: bin centres
    b + 0.5 in float64, counts are integers below 2^53."""
    import torch

    n = acc.numel()
    v = torch.where(mask, bins.to(torch.float64) + 0.5, -1.0)
    acc += torch.histc(v, bins=n, min=0.0, max=float(n)).to(acc.dtype)


_STATE = ("ix", "iy", "iz", "px", "py", "pz", "ux", "uy", "uz", "u", "s", "mat", "pix", "eid")


def transport(
    geom: _Geometry,
    tt: TorchTables,
    *,
    total: int,
    e0: float,
    by: float,
    bz: float,
    x0: float = 0.0,
    y0: float = 0.0,
    n_per_pixel: int = 0,
    sigma_x: float = 0.0,
    sigma_y: float = 0.0,
    emin: float = 0.0,
    cmin: float = -1.0,
    cmax: float = 1.0,
    generator,
    batch: int,
    compact_every: int = 8,
    max_iterations: int = 10_000_000,
    diagnostics: bool = False,
) -> dict[str, Any]:
    """Transport ``total`` electrons through ``geom``; returns the tallies (numpy) and counters.

    Point beam at (x0, y0) when ``n_per_pixel == 0``; otherwise electron ``k`` belongs to pixel
    ``k // n_per_pixel`` (row-major over the face) and enters at that pixel's centre. ``sigma_x/sigma_y``:
    Gaussian probe. With ``diagnostics`` every electron's energy is checked to never increase from one event to
    the next and every electron id is checked to terminate exactly once (costs memory ~ ``total``).
    """
    import torch

    dev = geom.vol.device
    dtype = tt.lam.dtype
    g = geom
    lx, ly = g.nx * g.dx, g.ny * g.dy
    npix = g.ny * g.nx if n_per_pixel else 1
    u0 = (math.log(e0) - tt.ln_e0) * tt.inv_dln
    gen = generator
    # open pores (vacuum materials in the tables): straight flight, the numba kernel's ``vacuum_flight`` one voxel
    # crossing per iteration; ``vc`` counts an electron's crossings since it entered vacuum (the kernel's limit)
    vac_on = tt.has_vacuum
    vlim = 4 * (g.nx + g.ny + g.nz) + 64
    keys = _STATE + (("vc",) if vac_on else ())
    inf = float("inf")

    def launch(start: int, m: int) -> dict:
        eid = torch.arange(start, start + m, device=dev, dtype=torch.int64)
        if n_per_pixel:
            pix = eid // n_per_pixel
            cx = ((pix % g.nx).double() + 0.5) * g.dx
            cy = ((pix // g.nx).double() + 0.5) * g.dy
        else:
            pix = torch.zeros_like(eid)
            cx = torch.full((m,), float(x0), device=dev, dtype=torch.float64)
            cy = torch.full((m,), float(y0), device=dev, dtype=torch.float64)
        if sigma_x > 0.0 or sigma_y > 0.0:
            r = torch.rand((2, m), generator=gen, device=dev, dtype=torch.float64)
            rad = torch.sqrt(-2.0 * torch.log1p(-r[0]))
            cx = cx + sigma_x * rad * torch.cos(2.0 * math.pi * r[1])
            cy = cy + sigma_y * rad * torch.sin(2.0 * math.pi * r[1])
        x = cx - lx * torch.floor(cx / lx)
        y = cy - ly * torch.floor(cy / ly)
        x = torch.where(x >= lx, torch.zeros_like(x), x)
        y = torch.where(y >= ly, torch.zeros_like(y), y)
        ix = torch.floor(x / g.dx).long().clamp(0, g.nx - 1)
        iy = torch.floor(y / g.dy).long().clamp(0, g.ny - 1)
        iz = torch.full((m,), g.kface, device=dev, dtype=torch.int64)
        mat = g.lookup(iz, iy, ix)
        u = torch.full((m,), u0, device=dev, dtype=dtype)
        rf = torch.rand((m,), generator=gen, device=dev, dtype=dtype)
        s = -torch.log1p(-rf) / tt.interp(tt.lam, mat, u)
        extra = {}
        if vac_on:  # the beam lands on an open pore: no collision before the next wall (lam_inv = 0 there)
            s = torch.where(tt.vac[mat], inf, s)
            extra["vc"] = torch.zeros((m,), device=dev, dtype=torch.int32)
        return {**extra,
            "ix": ix, "iy": iy, "iz": iz,
            "px": (x - ix.double() * g.dx).to(dtype), "py": (y - iy.double() * g.dy).to(dtype),
            "pz": torch.zeros((m,), device=dev, dtype=dtype),
            "ux": torch.zeros((m,), device=dev, dtype=dtype),
            "uy": torch.full((m,), by, device=dev, dtype=dtype),
            "uz": torch.full((m,), bz, device=dev, dtype=dtype),
            "u": u, "s": s, "mat": mat, "pix": pix, "eid": eid,
        }

    i64 = dict(device=dev, dtype=torch.int64)
    n_all = torch.zeros(npix, **i64)
    n_det = torch.zeros(npix, **i64)
    he = torch.zeros(NE_BINS, **i64)
    ha = torch.zeros(NA_BINS, **i64)
    n_abs = torch.zeros((), **i64)
    n_events = torch.zeros((), **i64)
    n_trans = torch.zeros((), **i64)
    n_lost = torch.zeros((), **i64)
    n_vac = torch.zeros((), **i64)
    if diagnostics:
        e_last = torch.full((total,), e0 * (1 + 1e-6), device=dev, dtype=torch.float64)
        n_term = torch.zeros(total, **i64)
        n_increase = torch.zeros((), **i64)

    m0 = min(batch, total)
    st = launch(0, m0)
    launched = m0
    alive = torch.ones(m0, device=dev, dtype=torch.bool)
    it = 0
    u_park = torch.tensor(u0, device=dev, dtype=dtype)
    while True:
        if it % compact_every == 0 and it > 0:
            keep = torch.nonzero(alive).squeeze(1)
            n_live = int(keep.numel())
            if n_live < alive.numel():
                st = {k: v[keep] for k, v in st.items()}
            free = batch - n_live
            if launched < total and (free >= max(1, batch // 8) or n_live == 0):
                m = min(free, total - launched)
                new = launch(launched, m)
                launched += m
                st = {k: torch.cat([st[k], new[k]]) for k in keys}
                n_live += m
            if n_live == 0:
                break
            alive = torch.ones(n_live, device=dev, dtype=torch.bool)
        it += 1
        if it > max_iterations:
            raise RuntimeError(f"transport did not finish within {max_iterations} iterations")
        ix, iy, iz = st["ix"], st["iy"], st["iz"]
        px, py, pz = st["px"], st["py"], st["pz"]
        ux, uy, uz = st["ux"], st["uy"], st["uz"]
        u, s, mat = st["u"], st["s"], st["mat"]
        n = ux.numel()
        n_events += alive.sum()

        # distances to the next voxel planes (exact; +inf-like where the direction is parallel)
        tx = torch.where(ux > 0, g.dx - px, -px) / ux
        tx = torch.where(ux == 0, torch.full_like(tx, _BIG), tx)
        ty = torch.where(uy > 0, g.dy - py, -py) / uy
        ty = torch.where(uy == 0, torch.full_like(ty, _BIG), ty)
        tz = torch.where(uz > 0, g.dz - pz, -pz) / uz
        open_end = (uz > 0) & (iz >= g.nz) if not g.repeat_last else torch.zeros_like(alive)
        tz = torch.where((uz == 0) | open_end, torch.full_like(tz, _BIG), tz)
        ax0 = (tx <= ty) & (tx <= tz)
        ax1 = ~ax0 & (ty <= tz)
        ax2 = ~ax0 & ~ax1
        dmin = torch.minimum(torch.minimum(tx, ty), tz).clamp_min(0.0)
        collide = s < dmin
        step = torch.where(collide, s, dmin)
        bound = ~collide

        # CSDA energy loss over the step, in the current material
        r = tt.interp(tt.rng, mat, u) - step
        dead = r <= tt.rcut[mat]
        un = torch.minimum(tt.invert_range(mat, r), u)  # min(): rounding must never raise the energy
        if vac_on:
            # in vacuum: no energy loss, no cut-off (the vacuum row's range is 0: r, un are meaningless there);
            # every plane out of reach (parallel to the face): lost, as in the kernel's vacuum_flight
            inv = tt.vac[mat]
            dead = dead & ~inv
            un = torch.where(inv, u, un)
            par = inv & ~(dmin < 0.5 * _BIG)
            n_vac += (alive & inv).sum()
        # electrons terminated earlier (awaiting compaction) may carry NaNs: park them at E0 (never tallied)
        un = torch.where(alive, un, u_park)
        e = torch.exp(tt.ln_e0 + un / tt.inv_dln)

        # move; on a boundary set the crossed coordinate exactly and step the voxel index
        px = px + step * ux
        py = py + step * uy
        pz = pz + step * uz
        bx, byy, bzz = bound & ax0, bound & ax1, bound & ax2
        sx = torch.where(ux > 0, 1, -1)
        sy = torch.where(uy > 0, 1, -1)
        sz = torch.where(uz > 0, 1, -1)
        ix = torch.where(bx, torch.remainder(ix + sx, g.nx), ix)
        iy = torch.where(byy, torch.remainder(iy + sy, g.ny), iy)
        iz = torch.where(bzz, iz + sz, iz)
        zero = torch.zeros_like(px)
        px = torch.where(bx, torch.where(ux > 0, zero, zero + g.dx), px.clamp(0.0, g.dx))
        py = torch.where(byy, torch.where(uy > 0, zero, zero + g.dy), py.clamp(0.0, g.dy))
        pz_in = pz.clamp_min(0.0)
        if not g.repeat_last:
            pz_in = torch.where(iz >= g.nz, pz_in, pz_in.clamp_max(g.dz))
        else:
            pz_in = pz_in.clamp_max(g.dz)
        pz = torch.where(bzz, torch.where(uz > 0, zero, zero + g.dz), pz_in)

        # terminations: absorbed (residual range below the cut-off's) or escaped through the face (BSE)
        absorbed = alive & dead
        esc = alive & ~dead & bzz & (iz < g.kface)
        n_abs += absorbed.sum()
        newmat = g.lookup(iz, iy, ix)
        if vac_on:
            # the numba kernel's vacuum exits other than the face: flying down into a vacuum backing
            # (``transmitted``), or parallel to the face / more than ``vlim`` crossings along a channel open
            # through the periodic tiling (``lost``)
            esc = esc & ~par
            newvac = tt.vac[newmat]
            vc = st["vc"]
            vc = torch.where(bound & inv, vc + 1, torch.where(bound & newvac, torch.zeros_like(vc), vc))
            live = alive & ~dead & ~esc
            if g.repeat_last:
                gone = torch.zeros_like(live)
            else:
                gone = live & bound & newvac & (iz >= g.nz) & (uz > 0)
            lost = live & ~gone & (par | (bound & inv & newvac & (vc >= vlim)))
            n_trans += gone.sum()
            n_lost += lost.sum()
            st["vc"] = vc
            ended = absorbed | esc | gone | lost
        else:
            ended = absorbed | esc
        if diagnostics:
            live = alive & ~dead
            eid = st["eid"]
            n_increase += (live & (e.double() > e_last[eid])).sum()
            e_last[eid[live]] = e[live].double()
            n_term.index_add_(0, eid[ended], torch.ones_like(eid[ended]))
        # tallies of the escaped electrons without a host-device synchronisation: boolean-mask indexing
        # (``e[esc]``) and ``bincount`` (it reads the largest index back to size its output) each wait for the
        # device; ``_count`` bins every electron's value with the others pushed out of ``histc``'s range
        ccol = (-(uy * by + uz * bz)).clamp(-1.0, 1.0)
        det = esc & (e >= emin) & (ccol >= cmin) & (ccol <= cmax)
        pix = st["pix"]
        _count(n_all, pix, esc)
        _count(n_det, pix, det)
        _count(he, (e / e0 * NE_BINS).long().clamp(0, NE_BINS - 1), esc)
        ang = torch.rad2deg(torch.arccos((-uz).clamp(-1.0, 1.0)))
        _count(ha, ang.long().clamp(0, NA_BINS - 1), esc)
        alive = alive & ~dead & ~esc
        if vac_on:
            alive = alive & ~gone & ~lost

        # collision: element, polar angle, azimuth, rotation (computed for all, kept where collide)
        rr = torch.rand((5, n), generator=gen, device=dev, dtype=dtype)
        # electrons that ended in this step are parked at E0 before the collision tables are read
        un = torch.where(alive, un, u_park)
        e = torch.where(alive, e, torch.full_like(e, e0))
        nux, nuy, nuz, keep = scatter(tt, mat, un, e, ux, uy, uz, rr)
        binary = collide & (keep < 1.0)
        ub = ((torch.log(e * keep) - tt.ln_e0) * tt.inv_dln).clamp_min(0.0)  # u = 0: below the cut-off
        un = torch.where(binary, torch.minimum(ub, un), un)
        ux = torch.where(collide, nux, ux)
        uy = torch.where(collide, nuy, uy)
        uz = torch.where(collide, nuz, uz)

        # boundary into another material: the rest of the flight is resampled there (in vacuum: none)
        changed = bound & (newmat != mat)
        mat = torch.where(changed, newmat, mat)
        lam_inv = tt.interp(tt.lam, mat, un)
        s = torch.where(collide | changed, -torch.log1p(-rr[4]) / lam_inv, s - dmin)
        if vac_on:
            s = torch.where(tt.vac[mat], inf, s)

        st.update(ix=ix, iy=iy, iz=iz, px=px, py=py, pz=pz, ux=ux, uy=uy, uz=uz, u=un, s=s, mat=mat)

    out = {
        "launched": launched,
        "all": n_all.cpu().numpy(),
        "detected": n_det.cpu().numpy(),
        "energy_hist": he.cpu().numpy(),
        "angle_hist": ha.cpu().numpy(),
        "absorbed": int(n_abs),
        # down into a vacuum backing / substrate (0 without vacuum: the backing is then semi-infinite matter)
        "transmitted": int(n_trans),
        "events": int(n_events),
        "iterations": it,
    }
    if vac_on:
        out["lost"] = int(n_lost)  # parallel to the face, or endless channels (the kernel's limit)
        out["vacuum_events"] = int(n_vac)  # iterations spent crossing vacuum voxels (part of ``events``)
    if diagnostics:
        out["energy_increases"] = int(n_increase)
        out["terminations_per_electron"] = n_term.cpu().numpy()
    return out


def _dtype(dtype):
    import torch

    if dtype is None:
        return torch.float32
    if dtype not in (torch.float32, torch.float64):
        raise FibsynthError("must be torch.float32 or torch.float64", param="dtype")
    return dtype


class _threads:
    """Set torch's CPU thread count for the duration of a call (and restore it). numba's OpenMP layer and torch
    share libgomp, so a numba ``parallel`` call can change torch's count behind its back; on a loaded machine
    oversubscribed OpenMP regions are very slow, which is why the tests and benchmark pin ``threads``."""

    def __init__(self, dev, n):
        self.n = None if (n is None or dev.type != "cpu") else int(n)

    def __enter__(self):
        import torch

        if self.n is not None:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        if self.n is not None:
            torch.set_num_threads(self.old)


def _sync(dev):
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_layers_torch(
    layers: list[tuple[str | Material, float]],
    substrate: str | Material,
    energy_kev: float,
    electrons: int,
    *,
    seed: int = 0,
    physics=None,
    detector=None,
    incidence_deg: float = 0.0,
    stream: int = 0,
    device=None,
    dtype=None,
    batch: int | None = None,
    diagnostics: bool = False,
    threads: int | None = None,
) -> BseResult:
    """:func:`fibsynth.physics.montecarlo.engine.run_layers` on the torch backend; returns a ``BseResult``.

    Set-up, tables and the parameter record are the numba engine's (:func:`setup.layer_setup`); ``parameters``
    adds the backend, device, dtype, batch, the absorbed / transmitted counts and the number of transport
    events (``events``)."""
    import torch

    su = layer_setup(layers, substrate, energy_kev, electrons, seed=seed, physics=physics, detector=detector,
                     incidence_deg=incidence_deg)
    dev = pick_device(device)
    dt = _dtype(dtype)
    batch = int(batch or default_batch(dev))
    if batch < 1:
        raise FibsynthError(f"must be >= 1 (got {batch})", param="batch")
    lat = LATERAL_INFINITE_NM
    with torch.inference_mode(), _threads(dev, threads):
        tt = TorchTables(su.tables, dev, dt)
        geom = _Geometry(su.vol, su.dz, lat, lat, 0, su.substrate_id, False, dev)
        gen = torch.Generator(device=dev)
        gen.manual_seed(torch_seed(seed, stream))
        _sync(dev)
        t0 = time.perf_counter()
        res = transport(geom, tt, total=su.electrons, e0=su.e0, by=su.by, bz=su.bz, x0=0.5 * lat, y0=0.5 * lat,
                        emin=su.emin, cmin=su.cmin, cmax=su.cmax, generator=gen, batch=batch,
                        diagnostics=diagnostics)
        _sync(dev)
        seconds = time.perf_counter() - t0
    params = {
        **su.record,
        "backend": "torch",
        "device": str(dev),
        "dtype": str(dt).replace("torch.", ""),
        "batch": batch,
        "absorbed": res["absorbed"],
        "transmitted": res["transmitted"],
        "events": res["events"],
        "iterations": res["iterations"],
    }
    for key in ("lost", "vacuum_events"):  # geometries with vacuum (a free-standing film, vacuum layers)
        if key in res:
            params[key] = res[key]
    if diagnostics:
        params["energy_increases"] = res["energy_increases"]
        params["terminations_per_electron"] = res["terminations_per_electron"]
    return BseResult(electrons=su.electrons, backscattered=int(res["all"][0]), detected=int(res["detected"][0]),
                     energy_hist=res["energy_hist"], angle_hist=res["angle_hist"], seconds=seconds, parameters=params)


def bulk_eta_torch(material, energy_kev, electrons, *, seed=0, device=None, physics=None, detector=None,
                   incidence_deg=0.0, dtype=None, batch=None, stream=0, diagnostics=False, threads=None):
    """Backscatter coefficient of a bulk target on the torch backend (``BseResult``, like ``engine.bulk_eta``)."""
    return run_layers_torch([], material, energy_kev, electrons, seed=seed, physics=physics, detector=detector,
                            incidence_deg=incidence_deg, stream=stream, device=device, dtype=dtype, batch=batch,
                            diagnostics=diagnostics, threads=threads)


def film_eta_torch(film, substrate, thickness_nm, energy_kev, electrons, *, seed=0, device=None, physics=None,
                   detector=None, incidence_deg=0.0, stream=0, dtype=None, batch=None, diagnostics=False,
                   threads=None):
    """Backscatter coefficient of a film on a substrate on the torch backend (like ``engine.film_eta``)."""
    if not float(thickness_nm) >= 0:
        raise FibsynthError(f"must be >= 0 nm (got {thickness_nm})", param="thickness_nm")
    return run_layers_torch([(film, thickness_nm)], substrate, energy_kev, electrons, seed=seed, physics=physics,
                            detector=detector, incidence_deg=incidence_deg, stream=stream, device=device,
                            dtype=dtype, batch=batch, diagnostics=diagnostics, threads=threads)


def simulate_slice_torch(vol, voxel_zyx: tuple[float, float, float], k: int, settings, device=None,
                         *, tables=None, dtype=None, batch: int | None = None,
                         diagnostics: bool = False, threads: int | None = None) -> dict[str, Any]:
    """:func:`fibsynth.physics.montecarlo.stack.simulate_slice` on the torch backend.

    Same inputs (material-index volume, voxel size (z, y, x) in nm, slice ``k``, ``StackSettings``) and the same
    outputs: per-pixel counts of all BSE (``all``) and of detected BSE (``detected``), and the slice's energy /
    angle histograms; plus ``absorbed``, ``transmitted``, ``launched``, ``events``, ``seconds``, ``device``.
    To reuse work across the slices of a stack, ``vol`` may be a uint8 tensor already on the device and
    ``tables`` a prebuilt :class:`TorchTables` (same device and dtype, materials from ``setup.stack_materials``)."""
    import torch

    if not isinstance(vol, torch.Tensor):
        vol = np.ascontiguousarray(vol, dtype=np.uint8)
    if vol.ndim != 3:
        raise FibsynthError(f"must be 3-D (z, y, x), got shape {tuple(vol.shape)}", param="structure")
    nz, ny, nx = vol.shape
    if not (0 <= int(k) < nz):
        raise FibsynthError(f"slice {k} outside 0..{nz - 1}", param="slices")
    dev = pick_device(device)
    dt = _dtype(dtype)
    batch = int(batch or default_batch(dev))
    if getattr(settings, "signal", None) is not None:
        raise FibsynthError(f"the {settings.signal.kind} detector (secondary electrons) runs on the numba backend "
                            "only", param="backend")
    mats, backing, repeat = stack_materials(settings)
    if int(np.prod(vol.shape)) and int(vol.max()) >= len(mats):
        raise FibsynthError(f"material index {int(vol.max())} in the volume, but only {len(mats)} materials",
                            param="structure")
    by, bz, sig_x, sig_y, cmin, cmax = slice_beam(settings)
    dz, dy, dx = (float(v) for v in voxel_zyx)
    npp = int(settings.electrons_per_pixel)
    with torch.inference_mode(), _threads(dev, threads):
        tt = tables if tables is not None else TorchTables(slice_tables(settings, mats), dev, dt)
        geom = _Geometry(vol, dz, dy, dx, int(k), backing, repeat, dev)
        gen = torch.Generator(device=dev)
        gen.manual_seed(torch_seed(settings.seed, int(k), 0x51CE))
        _sync(dev)
        t0 = time.perf_counter()
        res = transport(geom, tt, total=ny * nx * npp, e0=float(settings.beam.energy_kev), by=by, bz=bz,
                        n_per_pixel=npp, sigma_x=sig_x, sigma_y=sig_y, emin=float(settings.detector.e_min_kev),
                        cmin=cmin, cmax=cmax, generator=gen, batch=batch, diagnostics=diagnostics)
        _sync(dev)
        seconds = time.perf_counter() - t0
    out = {
        "k": int(k),
        "all": res["all"].reshape(ny, nx),
        "detected": res["detected"].reshape(ny, nx),
        "energy_hist": res["energy_hist"],
        "angle_hist": res["angle_hist"],
        "absorbed": res["absorbed"],
        "transmitted": res["transmitted"],
        "launched": res["launched"],
        "events": res["events"],
        "seconds": seconds,
        "device": str(dev),
    }
    for key in ("lost", "vacuum_events"):  # open pores / a vacuum backing
        if key in res:
            out[key] = res[key]
    if diagnostics:
        out["energy_increases"] = res["energy_increases"]
        out["terminations_per_electron"] = res["terminations_per_electron"]
    return out
