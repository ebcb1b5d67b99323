"""Secondary electrons (SE) in the Monte Carlo: an optional tally on top of the BSE transport (issue 17, item 3).

Model (the "Joy" model of SE production and escape: D. C. Joy, *Monte Carlo Modeling for Electron Microscopy and
Microanalysis*, OUP 1995, ch. 8; Y. Lin and D. C. Joy, Surf. Interface Anal. 37 (2005) 895):

* a primary or backscattered electron that loses dE on a path element at depth d below a surface facing vacuum
  produces dE / epsilon secondary electrons there (epsilon: the mean energy spent per SE produced);
* each of them escapes with probability 0.5 exp(-d / lambda) (half of them head towards the surface; lambda is
  the SE escape depth);
* the kernel (:func:`~fibsynth.physics.montecarlo.kernel.se_segment`) adds the *expected* number of escaping SE
  per straight segment (energy loss spread uniformly along it, the mean of exp(-d / lambda) over it exact), and
  the energy of binary collisions (knock-on electrons, deposited at the collision point). No random number is
  drawn, so the electron transport and every BSE tally are bit-identical with the SE tally on or off;
* all the energy an electron loses in the target counts, also what it still has when the transport stops
  following it (below the cut-off energy, or range-rejected: it can no longer reach the face), spent at the point
  where it stops (se8; before, that energy was dropped: the yield then depended on the cut-off, by 7-8 % at
  0.5 keV between a 50 and a 150 eV cut-off);
* SE1: produced by the electron while it is still on its way in -- before it first turns back towards the face
  from deeper than one escape depth lambda, and before it has been deeper than 5 lambda; SE2: produced after
  that (a backscattering electron on its way out). With this split SE2 / SE1 = beta eta with beta 2.7-3.6 for C,
  Al, Cu and Au at 3 keV, the classic delta = delta_1 (1 + beta eta) picture (H. Seiler, J. Appl. Phys. 54
  (1983) R1); the depth-only split used before (se4-se7) counted the SE of electrons that turn back within the
  top 5 lambda as SE1 and gave Au an SE2 share level with Cu's.

Parameters, per element, from the two numbers every SE-yield compilation gives: the maximum yield delta_m and the
energy E_m where it occurs. In the constant-loss model with a range R = b E^1.67 (the model behind the universal
yield curve delta / delta_m = 1.28 (E / E_m)^-0.67 (1 - exp(-1.614 (E / E_m)^1.67)), Lin & Joy 2005), the yield
delta = (lambda E / (2 epsilon R)) (1 - exp(-R / lambda)) peaks where R(E_m) = 1.614 lambda, with
delta_m = 0.248 E_m / epsilon. Hence

    lambda = R_KO(E_m) / 1.614       (Kanaya-Okayama range, exponent 1.67: ``stopping.kanaya_okayama_range_nm``)
    epsilon = 0.248 E_m / delta_m * k

with one scale ``k`` per element (``EPSILON_SCALE``) that brings the Monte Carlo's yield at E_m onto delta_m (the
Monte Carlo electron does not lose all its energy on a straight path: it backscatters, diffuses and adds SE2).
Its value was measured once with ``benchmarks/se_yield.py --calibrate`` and is stored below; the yields at
0.5-5 keV are then predictions, compared with measurements in docs/montecarlo.md.

Surfaces: only the milled face (the plane z = kface dz) is an SE-emitting surface; SE produced next to an
open-pore wall are counted by their depth below the face (not done: emission from pore walls).
"""

from __future__ import annotations

import functools
import math

import numba as nb
import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.physics.materials import Material, is_vacuum, symbol
from fibsynth.physics.montecarlo.kernel import MAT_MASK
from fibsynth.physics.montecarlo.kernel import pore_view as _pore_view_at  # one voxel; `pore_view` is an option here
from fibsynth.physics.stopping import kanaya_okayama_range_nm

# delta_m, E_m (keV): CRC Handbook of Chemistry and Physics, table "Secondary electron emission" (elements;
# compiled from Bruining, Hachenberg & Brauer). C is graphite. See docs/montecarlo.md for the caveats.
SE_PEAK = {
    6: (1.0, 0.30),
    13: (1.0, 0.30),
    14: (1.1, 0.25),
    29: (1.3, 0.60),
    79: (1.4, 0.80),
}
X_PEAK = 1.614  # R(E_m) / lambda at the maximum of the constant-loss yield with R ~ E^1.67
DELTA_M_FACTOR = 0.5 * (1.0 - np.exp(-X_PEAK)) / X_PEAK  # delta_m = DELTA_M_FACTOR * E_m / epsilon (= 0.248)
ZONE_LAMBDAS = 5.0  # SE1 / SE2 split: the first pass ends deeper than this many escape depths (exp(-5) < 1 %)
# measured Monte Carlo corrections (lambda scale, epsilon scale) of the analytic values, 1.0 = analytic:
# ``benchmarks/se_yield.py --calibrate --electrons 3000`` (the MC yield curve peaks at E_m with the value delta_m;
# measured 2026-11-30 (se8) after the kernel stopped dropping the energy of electrons that end below the cut-off
# or are range-rejected; the same procedure on the kernel before gave (0.41, 0.43), (0.35, 0.33), (0.32, 0.28),
# (0.34, 0.33), (0.35, 0.26): the scales stored until then within 0.02)
SCALES: dict[int, tuple[float, float]] = {6: (0.664, 0.772), 13: (0.56, 0.566), 14: (0.556, 0.519),
                                          29: (0.485, 0.482), 79: (0.443, 0.337)}


def element_parameters(z: int, density: float | None = None, scales: tuple[float, float] | None = None
                       ) -> tuple[float, float]:
    """(epsilon in keV, lambda in nm) of element ``z`` at ``density`` (g/cm^3; default the element's natural);
    ``scales`` = (lambda scale, epsilon scale) replaces the stored :data:`SCALES` (calibration)."""
    from fibsynth.physics.materials import get_material

    if z not in SE_PEAK:
        have = ", ".join(symbol(k) for k in sorted(SE_PEAK))
        raise FibsynthError(f"no secondary-electron parameters for {symbol(z)} (have {have})", param="material")
    dm, em = SE_PEAK[z]
    mat = get_material(symbol(z))
    if density is not None:
        mat = Material(mat.name, mat.z, mat.count, float(density))
    ls, es = scales if scales is not None else SCALES.get(z, (1.0, 1.0))
    lam = kanaya_okayama_range_nm(mat, em) / X_PEAK * ls
    eps = DELTA_M_FACTOR * em / dm * es
    return eps, lam


def material_parameters(material: Material, scales=None) -> tuple[float, float]:
    """(epsilon keV, lambda nm) of a material: an element's own; a compound takes those of its element with the
    largest mass fraction (an approximation: e.g. epoxy -> carbon), scaled to the compound's density for lambda."""
    if len(material.z) == 1:
        return element_parameters(material.z[0], material.density, scales)
    w = np.asarray(material.count, dtype=float) * material.a
    z = material.z[int(np.argmax(w))]
    return element_parameters(z, material.density, scales)


def se_table(materials: list[Material], scales=None) -> np.ndarray:
    """Kernel parameters ``sep[m] = (1 / epsilon [1/keV], lambda [nm], SE1 zone depth [nm])``; vacuum rows 0."""
    sep = np.zeros((len(materials), 3), dtype=np.float64)
    for m, mat in enumerate(materials):
        if is_vacuum(mat) or len(mat.z) == 0:
            continue
        eps, lam = material_parameters(mat, scales)
        sep[m] = (1.0 / eps, lam, ZONE_LAMBDAS * lam)
    return sep


def universal_yield(e_kev, delta_m: float, e_m: float):
    """The semi-empirical universal law (Lin & Joy 2005) -- for comparison only, not used by the Monte Carlo."""
    x = np.asarray(e_kev, dtype=float) / e_m
    return delta_m * 1.28 * x**-0.67 * (1.0 - np.exp(-1.614 * x**1.67))


class SeResult:
    """SE and BSE yields of a point-beam run: ``se1``, ``se2``, ``delta`` (= se1 + se2) per primary electron,
    ``bse`` (the :class:`~fibsynth.physics.montecarlo.setup.BseResult` of the same electrons: the transport is
    the one of ``run_layers``), and the run's parameter record (with the SE parameters)."""

    def __init__(self, bse, se1: float, se2: float, parameters: dict):
        self.bse = bse
        self.se1 = float(se1)
        self.se2 = float(se2)
        self.parameters = parameters

    @property
    def delta(self) -> float:
        return self.se1 + self.se2

    @property
    def eta(self) -> float:
        return self.bse.eta


def run_layers_se(layers, substrate, energy_kev: float, electrons: int, *, seed: int = 0, physics=None,
                  detector=None, incidence_deg: float = 0.0, stream: int = 0, se_scales=None) -> SeResult:
    """SE yield (and the BSE tallies) of a point beam on layers over ``substrate`` (numba backend)."""
    import time

    from fibsynth.physics.montecarlo import kernel
    from fibsynth.physics.montecarlo.engine import N_CHUNKS
    from fibsynth.physics.montecarlo.setup import LATERAL_INFINITE_NM, BseResult, layer_setup

    su = layer_setup(layers, substrate, energy_kev, electrons, seed=seed, physics=physics, detector=detector,
                     incidence_deg=incidence_deg)
    sep = se_table(su.materials, se_scales)
    lat = LATERAL_INFINITE_NM
    t0 = time.perf_counter()
    tal, he, ha, se = kernel.run_point_se(
        su.electrons, N_CHUNKS, int(seed), int(stream), su.e0, 0.5 * lat, 0.5 * lat, su.by, su.bz, 0.0, 0.0,
        su.vol, su.dz, lat, lat, 0, su.substrate_id, False,
        su.emin, su.cmin, su.cmax, *su.tables.as_tuple(), sep,
    )
    dt = time.perf_counter() - t0
    record = {**su.record, "backend": "numba", "secondary": {
        "model": "Joy/Lin-Joy: dE/epsilon produced, 0.5 exp(-d/lambda) escape, face only",
        "epsilon_kev": [float(1.0 / r[0]) if r[0] > 0 else None for r in sep],
        "lambda_nm": [float(r[1]) for r in sep]}}
    bse = BseResult(electrons=su.electrons, backscattered=int(tal[0]), detected=int(tal[1]), energy_hist=he,
                    angle_hist=ha, seconds=dt, parameters=record)
    n = su.electrons
    return SeResult(bse, se[0] / n, se[1] / n, record)


def bulk_se_yield(material, energy_kev: float, electrons: int, *, seed: int = 0, physics=None, detector=None,
                  incidence_deg: float = 0.0, stream: int = 0, se_scales=None) -> SeResult:
    """Total SE yield delta = SE1 + SE2 of a bulk target (:class:`SeResult`)."""
    if is_vacuum(material):
        raise FibsynthError("vacuum has no atoms: a bulk target needs matter", param="material")
    return run_layers_se([], material, energy_kev, electrons, seed=seed, physics=physics, detector=detector,
                         incidence_deg=incidence_deg, stream=stream, se_scales=se_scales)


PORE_VIEW_DIRECTIONS = 128  # cosine-law directions per pore voxel for its view factor (Hammersley set)
PORE_VIEW_DEPTH = 64  # slices below the face with view factors (deeper pore voxels: 0)


def view_directions(n_directions: int = PORE_VIEW_DIRECTIONS) -> np.ndarray:
    """Cosine-law directions about the face's outward normal (-z): sin^2 theta uniform, azimuth by the golden
    ratio (a deterministic Hammersley-type set); shape (n, 3) as (ux, uy, uz)."""
    i = np.arange(n_directions)
    s2 = (i + 0.5) / n_directions
    phi = 2.0 * np.pi * ((i * 0.6180339887498949) % 1.0)
    st = np.sqrt(s2)
    return np.ascontiguousarray(np.stack([st * np.cos(phi), st * np.sin(phi), -np.sqrt(1.0 - s2)], axis=1))


def _ray_cells_py(dirs, dz, dy, dx, depth, out):
    # the half-voxel march of kernel.march_out from the centre of voxel (0, 0, 0), step by step with the same
    # arithmetic; each cell it enters is written once (consecutive repeats and the start cell dropped), up to
    # the first cell ``depth`` slices above. Returns the number of cells per ray (out=None: only counts them).
    h = 0.5 * min(dz, min(dy, dx))
    n = dirs.shape[0]
    lens = np.zeros(n, np.int64)
    for m in range(n):
        vx, vy, vz = dirs[m, 0], dirs[m, 1], dirs[m, 2]
        pz, py, px = 0.5 * dz, 0.5 * dy, 0.5 * dx
        lz, ly, lx = 0, 0, 0
        j = 0
        while True:
            pz += h * vz
            py += h * vy
            px += h * vx
            cz = int(math.floor(pz / dz))
            cy = int(math.floor(py / dy))
            cx = int(math.floor(px / dx))
            if cz != lz or cy != ly or cx != lx:
                if out is not None:  # the step from the previous cell: -1, 0 or 1 per axis (h <= half a voxel)
                    out[m, j, 0] = cz - lz
                    out[m, j, 1] = cy - ly
                    out[m, j, 2] = cx - lx
                j += 1
                lz, ly, lx = cz, cy, cx
            if cz <= -depth:
                break
        lens[m] = j  # (rows after the last are zero: never reached, the last cell is above every face)
    return lens


_ray_cells = nb.njit(cache=True, fastmath=True, error_model="numpy")(_ray_cells_py)


@functools.lru_cache(maxsize=16)
def view_rays(voxel_zyx: tuple, n_directions: int = PORE_VIEW_DIRECTIONS, depth: int = PORE_VIEW_DEPTH) -> np.ndarray:
    """The view-factor rays (``kernel.march_cells``) for voxels of size ``voxel_zyx``: per cosine-law direction
    (:func:`view_directions`) the cells that the half-voxel march of ``kernel.march_out`` from a voxel centre
    visits, in order, each once, until ``depth`` slices above, as steps from one cell to the next (dz, dy, dx in
    -1, 0, 1; int8, shape (n, L, 3); the first from the start voxel). Marching these cells from any pore voxel gives ``march_out``'s view factor (the same cells up to
    floating-point ties of a coordinate on a voxel plane: identical on every pore voxel of the tested volumes)
    without its per-step arithmetic. Cached per voxel size: do not write to it."""
    dz, dy, dx = (float(v) for v in voxel_zyx)
    dirs = view_directions(n_directions)
    lens = _ray_cells(dirs, dz, dy, dx, int(depth), None)
    out = np.zeros((dirs.shape[0], int(lens.max()), 3), np.int8)
    _ray_cells(dirs, dz, dy, dx, int(depth), out)
    return out


# "no rays": the ``dirs`` of a ``segv`` without view layers, typed like :func:`view_rays`' (int8, 3-D) so that
# kernel.run_slice_se sees one argument type for pore_view "all", "straight" and no walls and numba compiles it
# once (its compilation takes ~1 min of CPU: a float (0, 3) placeholder here made a second variant)
_NO_RAYS = np.zeros((0, 1, 3), np.int8)

WALL_MASK_DEPTH = 128  # slices below the face with precomputed neighbour masks (deeper points: the full search)


def se_walls(vol: np.ndarray, k: int, nel: np.ndarray, backing: int, repeat_last: bool, pore_view: str,
             depth: int = PORE_VIEW_DEPTH, mask_depth: int = WALL_MASK_DEPTH, voxel_zyx=None) -> tuple:
    """What the SE kernel needs for open-pore walls in slice ``k`` (``kernel.wall_distance``), computed once per
    slice instead of per SE: the bit masks of each voxel's vacuum neighbours (``kernel.wall_masks``, the slices
    k .. k + ``mask_depth`` - 1 and the backing layer) and, for ``pore_view="straight"``, the pore view factors of
    the slices k .. k + ``depth`` - 1 to be filled on first use (-1 = not yet; the values are those of
    :func:`pore_view_factors`), with the cosine-law directions -- or, given ``voxel_zyx``, their precomputed rays
    (:func:`view_rays`: the same view factors without the per-step arithmetic of the march).
    ``pore_view="all"``: no view layers (g = 1)."""
    from fibsynth.physics.montecarlo import kernel

    nz, ny, nx = vol.shape
    masks = kernel.wall_masks(vol, nel, int(backing), bool(repeat_last), int(k), int(min(mask_depth, nz + 2 - k)))
    if pore_view == "straight":
        views = np.full((max(min(depth, nz - k), 1), ny, nx), -1.0)
        dirs = view_directions() if voxel_zyx is None else view_rays(tuple(float(v) for v in voxel_zyx), depth=depth)
    else:  # no view layers (dirs never read): dirs of the same type as "straight"'s, one compiled kernel for both
        views = np.zeros((0, ny, nx))
        dirs = np.zeros((0, 3)) if voxel_zyx is None else _NO_RAYS
    return views, masks, dirs


def pore_view_factors(vol: np.ndarray, k: int, voxel_zyx, nel: np.ndarray, backing: int, repeat_last: bool,
                      depth: int = PORE_VIEW_DEPTH, n_directions: int = PORE_VIEW_DIRECTIONS) -> np.ndarray:
    """View factors of the open pores of slice k's sample: for every vacuum voxel within ``depth`` slices below
    the face that touches matter (26 neighbours; the others are never looked up and stay 0), the fraction of
    cosine-law directions about the face's outward normal (-z) along which a straight line from its centre leaves
    through the face plane without meeting matter. An SE emitted from a wall into that
    voxel escapes the pore with this probability (the others hit another wall and are lost: SE3 not modelled);
    at the face opening of a flat wall it is 1/2, the cosine-law share of a wall's emission that goes up. Matter
    voxels: 0. Shape (min(depth, nz - k), ny, nx); index z - k."""
    dz, dy, dx = (float(v) for v in voxel_zyx)
    nz, ny, nx = vol.shape
    dirs = view_rays((dz, dy, dx), n_directions, depth)
    return _view_kernel(np.ascontiguousarray(vol, dtype=np.uint8), int(k), int(min(depth, nz - k)),
                        np.ascontiguousarray(nel), int(backing), bool(repeat_last), dirs, dz, dy, dx)


def _view_kernel_py(vol, k, depth, nel, backing, repeat_last, dirs, dz, dy, dx):
    nz, ny, nx = vol.shape
    out = np.zeros((max(depth, 1), ny, nx), np.float64)
    for j in nb.prange(depth):
        z = k + j
        for y in range(ny):
            for x in range(nx):
                if nel[vol[z, y, x] & MAT_MASK] != 0:
                    continue
                # 0 unless the pore voxel touches matter (only those are ever looked up), else march_out
                out[j, y, x] = _pore_view_at(vol, nel, backing, repeat_last, k, z, y, x, dirs, dz, dy, dx)
    return out


def simulate_slice_se(vol: np.ndarray, voxel_zyx, k: int, settings, *, walls: bool = True,
                      range_rejection: bool = True, tables: tuple | None = None, cone=None,
                      blocks: np.ndarray | None = None, pore_view: str = "all") -> dict:
    """SE image of slice ``k`` of a stack (an in-lens-type SE detector: every escaping SE counted).

    Same geometry, beam and transport as :func:`~fibsynth.physics.montecarlo.stack.simulate_slice` (whose BSE
    counts come back unchanged under ``all``/``detected``); ``se1``/``se2`` are the expected SE per primary
    electron and pixel, ``se`` their sum. ``walls``: open-pore walls emit SE too (a vacuum pore material),
    otherwise only the face. SE that leave a wall into a pore are all counted (no re-absorption by the opposite
    wall, no collection efficiency): an upper bound of what an in-lens detector sees from inside a pore.

    ``cone`` (ax, ay, az, cos_min): also count per pixel the BSE leaving within that cone (``cone``; a detector's
    direct view, :meth:`SignalDetector.cone <fibsynth.physics.montecarlo.detectors.SignalDetector.cone>`), with
    the per-electron sums ``se_sq`` (of SE^2), ``se_cone`` (of SE for electrons whose BSE is in the cone) and
    ``se_bse`` (of SE for electrons that backscatter) for
    the standard error of a detector signal. ``blocks``: the volume's block codes (``stack.block_levels``) for
    block tracking (the same tallies). ``pore_view="straight"``: SE leaving an open-pore wall count only with the
    view factor of the pore voxel they enter (:func:`pore_view_factors`: straight flight out of the pore, those
    that meet another wall are lost); ``"all"`` (default): every SE leaving a wall counts."""
    from fibsynth.physics.montecarlo import kernel
    from fibsynth.physics.montecarlo.setup import slice_beam, slice_tables, stack_materials

    mats, backing, repeat = stack_materials(settings)
    if tables is None:
        tables = slice_tables(settings, mats).as_tuple()
    sep = se_table(mats)
    by, bz, sig_x, sig_y, cmin, cmax = slice_beam(settings)
    dz, dy, dx = (float(v) for v in voxel_zyx)
    vol = np.ascontiguousarray(vol if blocks is None else blocks, dtype=np.uint8)
    has_vac = any(m.is_vacuum for m in mats)
    n = int(settings.electrons_per_pixel)
    cone = np.array([0.0, 0.0, -1.0, 2.0]) if cone is None else np.asarray(cone, dtype=np.float64)
    if pore_view not in ("all", "straight"):
        raise FibsynthError(f"must be all or straight (got {pore_view!r})", param="pore_view")
    if walls and has_vac:
        segv = se_walls(vol, int(k), tables[6], backing, repeat, pore_view, voxel_zyx=(dz, dy, dx))
    else:
        segv = (np.zeros((0, 1, 1)), np.zeros((1, 1, 1), np.uint32), _NO_RAYS)
    allc, detc, se1, se2, he, ha, conec, sesq, secone, sebse = kernel.run_slice_se(
        int(k), n, int(settings.seed), float(settings.beam.energy_kev), by, bz,
        sig_x, sig_y, vol, dz, dy, dx, backing, repeat, np.zeros((1, 1, 1), np.uint8), 0.0, bool(range_rejection),
        float(settings.detector.e_min_kev), cmin, cmax, *tables, sep, bool(walls and has_vac), cone, segv,
    )
    return {"k": int(k), "all": allc, "detected": detc, "se1": se1 / n, "se2": se2 / n, "se": (se1 + se2) / n,
            "energy_hist": he, "angle_hist": ha, "cone": conec, "se_sq": sesq, "se_cone": secone,
            "se_bse": sebse}


_view_kernel = nb.njit(cache=True, parallel=True)(_view_kernel_py)
