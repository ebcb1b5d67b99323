"""Isotropy errors of a segmented volume without ground truth (paper Sec. 2.7.2, Eqs. 7 and 8).

* ``e_tpcf``: Eq. 7 on the directional two-point correlation S2 along x, y, z (raw S2 as in the paper);
  ``e_tpcf_centered`` is the same on the auto-covariance S2 - phi^2 (drops the phi^2 plateau, which is
  identical in all directions and only inflates the norms in the denominator).
* ``e_lpf``: Eq. 7 on the directional lineal path function L.
* ``e_diameter``: Eq. 8 on the mean ligament diameters D_xy, D_xz, D_yz (2D local thickness in every slice of
  that orientation, averaged over all solid pixels of all such slices; xz / yz pixels are anisotropic).

Anisotropic voxels: each directional function is computed on its own lag grid ``k h_axis`` (nm) and linearly
interpolated onto a common grid ``r_i = i * h_max`` (h_max = the coarsest voxel size, i.e. the z lags for
FIB-SEM data) for i = 1..n with ``r_n <= r_max``; lag 0 is excluded (S2(0) = L(0) = phi in every direction).
``r_max = min(lag_diameters * D_mean, lag_fraction * shortest edge of the volume in nm)`` with D_mean the mean
of the three planar ligament diameters (defaults: 3 diameters, a quarter of the shortest edge).

Distributed (``scheduler`` / ``workers`` of :func:`isotropy_report`): the three planar diameters and then the six
directional functions (S2 and L along z, y, x) are independent; each is one dask.distributed task on the
in-memory volume, which is scattered to the workers once. The functions called are the same as in one process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.metrics.correlation import directional_lineal_path, directional_tpcf
from fibsynth.metrics.thickness import planar_mean_diameter

AXES = {"z": 0, "y": 1, "x": 2}


def _voxel(voxel_size: Sequence[float] | float) -> tuple[float, float, float]:
    from fibsynth.config import VoxelSize

    return VoxelSize.coerce(voxel_size, param="voxel_size").zyx()


def _binary(volume: Any) -> np.ndarray:
    a = volume.compute() if hasattr(volume, "compute") else volume
    a = np.asarray(a)
    if a.ndim != 3:
        raise FibsynthError(f"isotropy needs a 3D (z, y, x) volume, got shape {a.shape}")
    if min(a.shape) < 4:
        raise FibsynthError(f"isotropy needs at least 4 voxels along each axis, got shape {a.shape}")
    if a.dtype != np.bool_:
        if a.min() < 0 or a.max() > 1:
            raise FibsynthError("isotropy needs a binary volume (0 = pore, 1 = solid)")
        a = a != 0
    return np.ascontiguousarray(a)


_PLANES = ("xy", "xz", "yz")


def _plane_diameter(a: np.ndarray, plane: str, vs: tuple[float, float, float]) -> float:
    """Mean 2D ligament diameter (nm) over all slices of one orientation of the boolean (z, y, x) volume."""
    hz, hy, hx = vs
    if plane == "xy":
        return planar_mean_diameter(a, (hy, hx))  # slices a[k]: (y, x)
    if plane == "xz":
        return planar_mean_diameter(np.ascontiguousarray(a.transpose(1, 0, 2)), (hz, hx))  # a[:, j]: (z, x)
    return planar_mean_diameter(np.ascontiguousarray(a.transpose(2, 0, 1)), (hz, hy))  # a[:, :, i]: (z, y)


def _directional(a: np.ndarray, kind: str, ax: int, vs: tuple[float, float, float], k: int):
    fn = directional_tpcf if kind == "tpcf" else directional_lineal_path
    return fn(a, vs, ax, k)


def _run(a: np.ndarray, a_ref: Any, client: Any, tasks: list[tuple[Any, tuple]]) -> list:
    """``[fn(a, *args) for fn, args in tasks]``, here or as dask tasks on the scattered copy ``a_ref``."""
    if client is None:
        return [fn(a, *args) for fn, args in tasks]
    return client.gather([client.submit(fn, a_ref, *args, pure=False) for fn, args in tasks])


def _diameters(a: np.ndarray, vs: tuple[float, float, float], a_ref: Any = None, client: Any = None) -> dict[str, float]:
    d = _run(a, a_ref, client, [(_plane_diameter, (p, vs)) for p in _PLANES])
    return {f"D_{p}_nm": float(v) for p, v in zip(_PLANES, d)}


def _functions(a: np.ndarray, vs: tuple[float, float, float], max_lag_nm: float, a_ref: Any = None,
               client: Any = None) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    jobs = [(kind, name, ax, int(math.ceil(max_lag_nm / vs[ax] - 1e-9)))
            for name, ax in AXES.items() for kind in ("tpcf", "lpf")]
    res = _run(a, a_ref, client, [(_directional, (kind, ax, vs, k)) for kind, _, ax, k in jobs])
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"tpcf": {}, "lpf": {}}
    for (kind, name, _, _), r in zip(jobs, res):
        out[kind][name] = r
    return out


def planar_ligament_diameters(volume: Any, voxel_size: Sequence[float] | float) -> dict[str, float]:
    """Mean ligament diameter (nm) in the xy, xz and yz planes: 2D local thickness of every slice of that
    orientation, averaged over all solid pixels of all slices (entirely solid slices are skipped)."""
    return _diameters(_binary(volume), _voxel(voxel_size))


def directional_functions(
    volume: Any, voxel_size: Sequence[float] | float, max_lag_nm: float | None = None
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """S2 and L along x, y, z on each axis' own lags: ``{"tpcf": {"x": (lags_nm, f), ...}, "lpf": {...}}``.

    Lags reach ``max_lag_nm`` (default: half the shortest edge in nm), capped at N - 1 voxels per axis.
    """
    a = _binary(volume)
    vs = _voxel(voxel_size)
    if max_lag_nm is None:
        max_lag_nm = 0.5 * min(n * h for n, h in zip(a.shape, vs))
    return _functions(a, vs, max_lag_nm)


def l2_anisotropy_error(fx: np.ndarray, fy: np.ndarray, fz: np.ndarray) -> float:
    """Paper Eq. 7: 0.5 * sum over d in (x, y) of 2 ||f_d - f_z|| / (||f_d|| + ||f_z||); 0 = isotropic, at most 2."""

    def term(f: np.ndarray, g: np.ndarray) -> float:
        den = np.linalg.norm(f) + np.linalg.norm(g)
        return 0.0 if den == 0 else float(2.0 * np.linalg.norm(f - g) / den)

    return 0.5 * (term(fx, fz) + term(fy, fz))


def diameter_error(d_xy: float, d_xz: float, d_yz: float) -> float:
    """Paper Eq. 8: 0.5 (|D_xz - D_xy| + |D_yz - D_xy|) / D_xy."""
    if not d_xy > 0:
        return float("nan")
    return 0.5 * (abs(d_xz - d_xy) + abs(d_yz - d_xy)) / d_xy


def common_lags(voxel_size: Sequence[float] | float, r_max_nm: float) -> np.ndarray:
    """Common comparison grid r_i = i * h_max, i = 1..n, r_n <= r_max (at least one lag)."""
    h = max(_voxel(voxel_size))
    n = max(1, int(math.floor(r_max_nm / h + 1e-9)))
    return np.arange(1, n + 1) * h


def on_grid(funcs: dict[str, tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> dict[str, np.ndarray]:
    """Linear interpolation of each directional function onto the common nm grid."""
    out = {}
    for name, (lags, f) in funcs.items():
        if grid[-1] > lags[-1] + 1e-9:
            raise FibsynthError(f"lag grid reaches {grid[-1]:.4g} nm but the {name} function stops at {lags[-1]:.4g}")
        out[name] = np.interp(grid, lags, f)
    return out


def isotropy_report(
    volume: Any,
    voxel_size: Sequence[float] | float,
    *,
    lag_diameters: float = 3.0,
    lag_fraction: float = 0.25,
    return_functions: bool = False,
    scheduler: Any = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """All isotropy errors of a binary (z, y, x) volume with voxel size (z, y, x) nm.

    Returns e_tpcf, e_tpcf_centered, e_lpf, e_diameter, D_xy_nm, D_xz_nm, D_yz_nm, solid_fraction, the lag grid
    (lag_step_nm, lag_max_nm, n_lags); with ``return_functions`` also ``functions`` (each axis' own lags) and
    ``on_grid`` (the compared values).

    ``scheduler`` (address or Client) / ``workers`` (local processes): the three planar diameters, then the six
    directional functions, run as separate dask.distributed tasks (:mod:`fibsynth.distributed`); every worker
    that runs one gets a copy of the (in-memory) volume.
    """
    from fibsynth.distributed import check_options, dask_client

    check_options(scheduler, workers)
    a = _binary(volume)
    vs = _voxel(voxel_size)
    if not (lag_diameters > 0 and 0 < lag_fraction <= 1):
        raise FibsynthError("lag_diameters must be > 0 and lag_fraction in (0, 1]")
    phi = float(np.count_nonzero(a) / a.size)
    if phi in (0.0, 1.0):
        raise FibsynthError(f"isotropy is undefined for a volume that is entirely {'solid' if phi else 'pore'}")
    with dask_client(scheduler, workers) as client:
        a_ref = client.scatter(a) if client is not None else None
        diam = _diameters(a, vs, a_ref, client)
        d_mean = float(np.nanmean(list(diam.values())))
        edge_nm = min(n * h for n, h in zip(a.shape, vs))
        r_max = min(lag_diameters * d_mean, lag_fraction * edge_nm) if math.isfinite(d_mean) else lag_fraction * edge_nm
        grid = common_lags(vs, r_max)
        funcs = _functions(a, vs, float(grid[-1]), a_ref, client)
    tp = on_grid(funcs["tpcf"], grid)
    lp = on_grid(funcs["lpf"], grid)
    rep: dict[str, Any] = {
        "e_tpcf": l2_anisotropy_error(tp["x"], tp["y"], tp["z"]),
        "e_tpcf_centered": l2_anisotropy_error(tp["x"] - phi**2, tp["y"] - phi**2, tp["z"] - phi**2),
        "e_lpf": l2_anisotropy_error(lp["x"], lp["y"], lp["z"]),
        "e_diameter": diameter_error(diam["D_xy_nm"], diam["D_xz_nm"], diam["D_yz_nm"]),
        **diam,
        "solid_fraction": phi,
        "lag_step_nm": float(grid[1] - grid[0]) if grid.size > 1 else float(grid[0]),
        "lag_max_nm": float(grid[-1]),
        "n_lags": int(grid.size),
        "voxel_size_nm": {"z": vs[0], "y": vs[1], "x": vs[2]},
    }
    if return_functions:
        rep["functions"] = funcs
        rep["on_grid"] = {"lags_nm": grid, "tpcf": tp, "lpf": lp}
    return rep
