"""Fast SE projection of open-pore stacks (issue 17, item 4): an in-lens secondary-electron image per slice without
electron transport, for a binary structure (1 = solid) whose pores are empty (vacuum).

Model (docs/fastsim.md, "SE projection of open pores"). For the pixel (y, x) of slice k the beam flies through the
open pores to the first solid cell c along its ray (:func:`~fibsynth.fastsim.projection.ray_cells`, the whole stack
behind the face); nothing is seen if it leaves the stack. The electrons that enter the solid at c make SE wherever
they pass within the escape depth (~1 nm) of a surface facing vacuum -- the face and the open-pore walls -- and
an SE that leaves a wall into a pore flies straight out of it with the pore voxel's view factor
(:func:`~fibsynth.physics.montecarlo.secondary.pore_view_factors`, the Monte Carlo's own), else it is lost on
another wall. So

    S = delta_1 B_k(c; sigma_1) / B_flat(sigma_1) + delta_2 B_k(c; sigma_2) / B_flat(sigma_2)  [+ w eta_cone P]

* B_k(.; sigma): the surface density of slice k's sample -- exposed voxel faces of the solid, each weighted by
  the view factor of the vacuum it faces (1 for the milled half-space above the face) -- blurred by a Gaussian of
  width sigma (periodic in x and y), read at c; B_flat the same for a flat face. sigma_1 = ``spread_se1`` x R_KO
  (the primary's first stretch in the solid, where SE1 are made), sigma_2 = ``spread`` x R_KO (the diffusion
  cloud of the electrons that backscatter, SE2); R_KO the Kanaya-Okayama range at E.
* A flat face gives delta_1 + delta_2, the Monte Carlo's bulk SE1 and SE2 at this energy and incidence
  (:func:`flat_face_yields`). Near a pore edge the blurred cloud meets the face and the wall: edge brightening
  from the escape-depth geometry; an inclined wall puts more surface into the cloud (the secant-like rise); a
  pore bottom sees only the share of its SE that flies out (the cosine-law view), and so is dark.
* ``view="all"``: every exposed face counts 1 (every SE that leaves a wall is counted, the Monte Carlo's
  ``pore_view="all"`` and ``--detector se``).
* In-lens BSE share (``bse_weight`` > 0): the open-pore BSE projection (1 at the face) times the fraction of a
  flat face's BSE leaving within ``inlens_bse_theta_deg`` of the column axis (bulk Monte Carlo), times
  ``bse_weight`` -- the in-lens detector model of ``mc stack --detector inlens`` (physics/montecarlo/detectors.py).

No parameter is fitted to stacks except the two spreads (chosen once on one structure, seed 1 of
benchmarks/se_fastpath.py, from 0.05-0.3 x 0.3-0.5, and checked on other structures).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from fibsynth.errors import FibsynthError

DEFAULT_SPREAD = 0.5  # sigma of the SE2 diffusion cloud / R_KO (benchmarks/se_fastpath.py: chosen on seed 1)
DEFAULT_SPREAD_SE1 = 0.2  # sigma of the primary's SE1 zone / R_KO (idem)
# measured mean correction of the SE terms for gold with open pores at 2 keV, 38 degrees, in-lens (the model
# misses SE made on both sides of thin ligaments and along wall-to-wall flights): benchmarks/se_fastpath.py
# --calibrate-on 1 (seed 1's Monte Carlo stack, 60 electrons per pixel); held-out seeds 2-4: scaled mean
# 1.7-1.8 % above the Monte Carlo's (docs/fastsim.md). Not a default: other materials and energies are unmeasured.
# Measured again (se8) after the Monte Carlo's SE parameters changed (1.155 before).
MEAN_SCALE_AU_2KEV = 1.103


@nb.njit(cache=True)
def _hits(vol, k, dj, di, out_z, out_y, out_d):
    """First solid cell along each pixel's ray in slice k: its (z, y) and entry depth; z = -1 if none."""
    nz, ny, nx = vol.shape
    for y in range(ny):
        for x in range(nx):
            out_z[y, x] = -1
            for c in range(dj.size):
                z = k + dj[c]
                if z >= nz:
                    break
                yy = (y + di[c]) % ny
                if vol[z, yy, x] != 0:
                    out_z[y, x] = z
                    out_y[y, x] = yy
                    out_d[y, x] = c
                    break


def surface_density(vol: np.ndarray, k: int, depth: int, view: np.ndarray | None = None) -> np.ndarray:
    """Exposed faces per voxel (0..6) of slice k's sample over ``depth`` slices from the face: solid voxels
    next to vacuum (pores, the milled half-space above the face); periodic in y and x; below the stack the last
    slice continues. With ``view`` (the pores' view factors, index z - k) each exposed face counts with the view
    factor of the vacuum voxel it faces (1 for the milled half-space)."""
    nz = vol.shape[0]
    zs = np.minimum(np.arange(k, k + depth + 1), nz - 1)
    sub = vol[zs].astype(np.float32)
    vac = 1.0 - sub
    if view is not None:
        g = np.zeros_like(sub)
        n = min(view.shape[0], g.shape[0])
        g[:n] = view[:n]
        vac = vac * g
    pad = np.concatenate([np.ones((1,) + sub.shape[1:], np.float32), vac], axis=0)  # milled above the face
    core = sub
    s = core * pad[:-1]  # the face above
    below = np.concatenate([pad[2:], pad[-1:]], axis=0)
    s += core * below
    for ax in (1, 2):
        for sh in (1, -1):
            s += core * np.roll(vac, sh, axis=ax)
    return s[:depth]


def project_se(structure: np.ndarray, voxel_zyx, energy_kev: float, *, solid: str = "gold",
               incidence_deg: float = 38.0, slices: tuple[int, int] | None = None,
               spread: float = DEFAULT_SPREAD, spread_se1: float = DEFAULT_SPREAD_SE1, view: str = "straight",
               bse_weight: float = 1.0,
               inlens_bse_theta_deg: float = 10.0, yields: tuple[float, float, float] | None = None,
               electrons: int = 4000, seed: int = 0, scale: float = 1.0, components: bool = False
               ) -> tuple[np.ndarray, dict]:
    """In-lens SE images of slices ``k0:k1`` of a binary open-pore structure (see the module docstring).
    ``yields`` = (delta_1, delta_2, eta_cone) of the flat face at this energy and incidence; ``None``: measured
    with the bulk Monte Carlo (``electrons``, ``seed``; a few seconds). ``scale`` multiplies the SE terms (1 =
    the model; :data:`MEAN_SCALE_AU_2KEV` is the factor measured against the Monte Carlo for gold at 2 keV, see
    docs/fastsim.md). Returns (images float32, record).

    ``components``: also the image's parts, ``record["components"]`` (k1 - k0, 4, ny, nx) float32: the SE1 term,
    the SE2 term, the in-lens BSE share (their sum is the image, up to float rounding) and the depth (nm, along
    the face normal) of the first solid cell on each pixel's ray (the stack's depth below slice k where the beam
    meets nothing) -- the paired SE translator's inputs (:mod:`fibsynth.fastsim.translator`). The images are the
    same with or without it."""
    from scipy import ndimage

    from fibsynth.config import VoxelSize
    from fibsynth.fastsim.projection import ray_cells
    from fibsynth.physics.montecarlo.secondary import PORE_VIEW_DEPTH, pore_view_factors
    from fibsynth.physics.backscatter import kanaya_okayama_range_nm
    from fibsynth.physics.montecarlo.settings import check_energy, check_incidence

    vol = np.ascontiguousarray(structure)
    if vol.ndim != 3:
        raise FibsynthError(f"must be 3-D (z, y, x), got shape {vol.shape}", param="structure")
    if vol.size and not np.isin(np.unique(vol), (0, 1)).all():
        raise FibsynthError("must be binary (0 = open pore, 1 = solid)", param="structure")
    vol = vol.astype(np.uint8)
    e = check_energy(energy_kev)
    a = check_incidence(incidence_deg)
    for name, v in (("spread", spread), ("spread_se1", spread_se1)):
        if not (0.0 < v <= 5.0):
            raise FibsynthError(f"must be in (0, 5] (got {v})", param=name)
    if view not in ("all", "straight"):
        raise FibsynthError(f"must be straight or all (got {view!r})", param="view")
    if not (0.0 < scale <= 10.0):
        raise FibsynthError(f"must be in (0, 10] (got {scale})", param="scale")
    dz, dy, dx = VoxelSize.coerce(voxel_zyx, param="voxel_zyx").zyx()
    nz, ny, nx = vol.shape
    k0, k1 = slices if slices is not None else (0, nz)
    if not (0 <= k0 < k1 <= nz):
        raise FibsynthError(f"need 0 <= K0 < K1 <= {nz} (got {k0}:{k1})", param="slices")
    if yields is None:
        yields = flat_face_yields(solid, e, a, inlens_bse_theta_deg, electrons, seed)
    d1, d2, eta_cone = (float(v) for v in yields)
    r_ko = kanaya_okayama_range_nm(solid, e)
    sig = spread * r_ko
    sig_vox = (sig / dz, sig / dy, sig / dx)
    depth = int(min(nz + 4 * sig_vox[0] + 2, nz + 64))
    cells = ray_cells(nz, dz, dy, a)
    dj = cells[:, 0].astype(np.int64)
    di = cells[:, 1].astype(np.int64)
    # the flat face's blurred surface density at its first layer
    sig1 = spread_se1 * r_ko
    sig1_vox = (sig1 / dz, sig1 / dy, sig1 / dx)
    flat = np.zeros((depth, 8, 8), np.float32)
    flat[0] = 1.0
    b_flat = float(ndimage.gaussian_filter(flat, sig_vox, mode=("constant", "wrap", "wrap"))[0, 0, 0])
    b_flat1 = float(ndimage.gaussian_filter(flat, sig1_vox, mode=("constant", "wrap", "wrap"))[0, 0, 0])
    nel = np.array([0, 1], np.int64)  # label 0 vacuum, 1 solid; below the stack the last slice continues
    p_open = None
    if bse_weight > 0 and eta_cone > 0:
        from fibsynth.fastsim.projection import project

        p_open, _ = project(vol, (dz, dy, dx), e, incidence_deg=a, solid=solid, pore="vacuum", slices=(k0, k1))
    out = np.zeros((k1 - k0, ny, nx), np.float32)
    parts = np.zeros((k1 - k0, 4, ny, nx), np.float32) if components else None
    hz = np.empty((ny, nx), np.int64)
    hy = np.empty((ny, nx), np.int64)
    hc = np.empty((ny, nx), np.int64)
    # the blurs are read only at each pixel's first solid cell (depth zi below the face): a Gaussian truncated at
    # scipy's 4 sigma reads at most r slices deeper, so the surface density is built and blurred over
    # max(zi) + r + 1 slices instead of all `depth` -- the values read are the same to the bit (z is filtered first,
    # and x and y act within each slice; the view factors of slice i enter the density of slices i - 1 .. i + 1)
    r1 = int(4.0 * float(sig1_vox[0]) + 0.5)
    r2 = int(4.0 * float(sig_vox[0]) + 0.5)
    for k in range(k0, k1):
        _hits(vol, k, dj, di, hz, hy, hc)
        hit = hz >= 0
        zi = np.where(hit, hz - k, 0)
        zmax = int(zi.max())
        c2 = min(depth, zmax + max(r1, r2) + 1)
        c1 = min(c2, zmax + r1 + 1)
        gv = (pore_view_factors(vol, k, (dz, dy, dx), nel, 0, True, depth=min(PORE_VIEW_DEPTH, c2 + 1))
              if view == "straight" else None)
        sd = surface_density(vol, k, c2, gv)
        blur1 = ndimage.gaussian_filter(sd[:c1], sig1_vox, mode=("constant", "wrap", "wrap"))
        blur2 = ndimage.gaussian_filter(sd, sig_vox, mode=("constant", "wrap", "wrap"))
        yi = np.where(hit, hy, 0)
        xi = np.broadcast_to(np.arange(nx), (ny, nx))
        img = scale * (d1 * blur1[zi, yi, xi] / b_flat1 + d2 * blur2[zi, yi, xi] / b_flat)
        if p_open is not None:  # (before 2026-11-29 23:50 UTC this share was added after the image was stored)
            img = img + np.float32(bse_weight * eta_cone) * p_open[k - k0]
        out[k - k0] = np.where(hit, img, 0.0)
        if parts is not None:
            parts[k - k0, 0] = np.where(hit, scale * d1 * blur1[zi, yi, xi] / b_flat1, 0.0)
            parts[k - k0, 1] = np.where(hit, scale * d2 * blur2[zi, yi, xi] / b_flat, 0.0)
            if p_open is not None:
                parts[k - k0, 2] = np.where(hit, np.float32(bse_weight * eta_cone) * p_open[k - k0], 0.0)
            parts[k - k0, 3] = np.where(hit, zi * dz, (nz - k) * dz)
    record = {"model": "SE projection of open pores (fastsim/se_projection.py)", "energy_kev": e,
              "incidence_deg": a, "solid": solid, "pore": "vacuum", "delta_1": d1, "delta_2": d2,
              "eta_cone": eta_cone, "bse_weight": bse_weight, "inlens_bse_theta_deg": inlens_bse_theta_deg,
              "spread": spread, "sigma_nm": sig, "spread_se1": spread_se1, "sigma_se1_nm": sig1, "range_ko_nm": r_ko, "view": view, "slices": [k0, k1],
              "scale": float(scale)}
    if parts is not None:
        record["components"] = parts
    return out, record


def flat_face_yields(solid: str, energy_kev: float, incidence_deg: float, inlens_bse_theta_deg: float = 10.0,
                     electrons: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """(delta_1, delta_2, eta_cone) of a flat bulk face at this energy and incidence from the Monte Carlo:
    SE1, SE2 per primary and the fraction of primaries backscattered within ``inlens_bse_theta_deg`` of the
    column axis."""
    from fibsynth.physics.montecarlo.secondary import bulk_se_yield
    from fibsynth.physics.montecarlo.settings import Detector

    r = bulk_se_yield(solid, energy_kev, electrons, seed=seed, incidence_deg=incidence_deg,
                      detector=Detector(theta_max_deg=inlens_bse_theta_deg))
    return r.se1, r.se2, r.bse.detected / r.bse.electrons
