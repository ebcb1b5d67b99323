"""The shine-through projection of label volumes: one material per label (issue 17, three or more phases).

Label 0 is the filling (the binary projection's ``pore``: epoxy, another material, or ``vacuum`` for open pores);
labels 1..n-1 are solids, each with its own material. The model is the binary one (:mod:`.projection`,
``docs/fastsim.md``) with the solid's weight taken per material:

    I = w_0 + sum_m (w_m(d) - w_0) F_m        (first non-filling voxel along the beam at depth d),
    I = w_0                                   (none within K slices),

where w_m(d) = eta_net(E, Z_m, d) is material m's backscatter under d nm of the filling (the network; a compound
by Castaing's mass-fraction rule over its elements' curves, w_m = sum_i c_i eta_net(E, Z_i, d), ``compound=
"castaing"``, the default -- or with the mass-weighted mean Z as the binary projection does, ``compound="mean_z"``;
measured against the Monte Carlo in docs/multiphase.md), w_0 the filling's value far from any solid (the mean of
the materials' far values), and F_m the share of material m in
the lateral window (half-width ``spread`` x d) around the hit, in the hit's slice. So each material behind the face
shines through in proportion to its own eta(E, Z, t), and where the beam's footprint covers two solids both count.
Labels that share a material are one phase of the projection (their indicators are summed), so splitting a label
into two of the same material changes nothing; with one solid element this *is* the binary projection (it is
delegated to :func:`fibsynth.fastsim.projection.project`, and the general path reproduces it bit for bit, tested;
for a compound the general path with ``compound="mean_z"`` does).

``normalise="group"``: I' = (I - w_0) / (max_m w_m(0) - w_0): filling 0, the brightest material at the face 1.
``normalise="eta"``: backscatter coefficients.

Open pores (``materials[0] == "vacuum"``): the open-pore model of :func:`.projection.project_open` (the first
wall along the beam through vacuum, Arnal's angle factor, the escape fraction through the pore), with the wall's
own material: its bare-surface eta_net(E, Z_m, 0) and Arnal exponent 9 / sqrt(Z_m).

The ``layered`` method is binary only (its beam attenuation is not a sum over materials).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from fibsynth.errors import FibsynthError


def _check_labels(labels, n: int) -> np.ndarray:
    vol = np.asarray(labels)
    if vol.ndim != 3:
        raise FibsynthError(f"must be 3-D (z, y, x), got shape {vol.shape}", param="labels")
    if vol.dtype == bool:
        vol = vol.astype(np.uint8)
    if not np.issubdtype(vol.dtype, np.integer):
        if vol.size and not np.array_equal(vol, np.round(vol)):
            raise FibsynthError("labels must be integers 0..n-1 (found gray values)", param="labels")
    if vol.size:
        lo, hi = int(vol.min()), int(vol.max())
        if lo < 0 or hi >= n:
            raise FibsynthError(f"has labels {lo}..{hi} but {n} materials were given (one per label 0..{n - 1})",
                                param="labels")
    return np.ascontiguousarray(vol, dtype=np.uint8)


def check_materials(materials: Sequence[str]) -> tuple[str, ...]:
    """One material per label (a sequence or a comma-separated string), label 0 the filling: at least two, none
    empty, only label 0 may be ``vacuum``, every name known (:func:`fibsynth.physics.materials.get_material`).
    Returns the stripped names; a bad one raises one line naming ``materials`` and the label."""
    from fibsynth.physics.materials import get_material, is_vacuum

    if isinstance(materials, str):
        materials = [m.strip() for m in materials.split(",")]
    mats = tuple(str(m).strip() for m in materials)
    if len(mats) < 2:
        raise FibsynthError(f"need one material per label, at least two (got {len(mats)})", param="materials")
    for i, m in enumerate(mats):
        if not m:
            raise FibsynthError(f"label {i} has an empty material name", param="materials")
        if is_vacuum(m) and i > 0:
            raise FibsynthError(f"label {i}: only label 0 (the filling) may be vacuum", param="materials")
        try:
            get_material(m, allow_vacuum=(i == 0))
        except FibsynthError as exc:
            raise FibsynthError(f"label {i}: {exc.message}", param="materials") from None
    return mats


def solid_groups(materials: Sequence[str]) -> list[tuple[str, list[int]]]:
    """The projection's phases: each distinct solid material (labels 1..n-1) with the labels that carry it, in
    order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(materials[1:], start=1):
        groups.setdefault(m, []).append(i)
    return list(groups.items())


COMPOUND_RULES = ("castaing", "mean_z")


def material_curve(model, energy_kev: float, material: str, depths, compound: str = "castaing") -> np.ndarray:
    """eta_net of ``material`` under ``depths`` nm of epoxy: the network at the element's Z, or for a compound
    Castaing's rule sum_i c_i eta_net(E, Z_i, d) (``c_i`` mass fractions; ``compound="mean_z"``: the network at the
    mass-weighted mean Z, :func:`fibsynth.physics.backscatter.effective_z`)."""
    from fibsynth.physics.backscatter import effective_z
    from fibsynth.physics.materials import get_material

    mat = get_material(material, "materials")
    d = np.asarray(depths, float)
    if len(mat.z) == 1 or compound == "mean_z":
        return np.asarray(model.predict(energy_kev, effective_z(mat), d), float)
    return sum(float(c) * np.asarray(model.predict(energy_kev, float(z), d), float)
               for c, z in zip(mat.mass_fractions, mat.z))


def _weights(model, e, material, depths, d_far, compound):
    """:func:`.projection.depth_weights` with :func:`material_curve` (same running minimum)."""
    grid = np.concatenate([np.asarray(depths, float), [d_far]])
    eta = material_curve(model, e, material, grid, compound)
    w, w_none = eta[:-1], float(eta[-1])
    if w.size and w[0] > w_none:
        order = np.argsort(grid[:-1], kind="stable")
        ws = np.minimum.accumulate(w[order])
        w = np.empty_like(ws)
        w[order] = np.maximum(ws, w_none)
    return w, w_none


def project_labels(labels: np.ndarray, voxel_zyx, energy_kev: float, materials: Sequence[str], *,
                   slices_behind: int | None = None, incidence_deg: float = 38.0, model=None,
                   normalise: str = "group", slices: tuple[int, int] | None = None, spread: float | None = None,
                   solid_depth: float | None = None, compound: str = "castaing") -> tuple[np.ndarray, dict]:
    """Project a label volume (z, y, x; label i = ``materials[i]``, label 0 the filling) into one float32 image
    per slice; returns the images and a record (module docstring). With one distinct solid material this is
    :func:`fibsynth.fastsim.projection.project` of ``labels > 0``."""
    from fibsynth.fastsim.projection import DEFAULT_SPREAD, project
    from fibsynth.physics.materials import get_material

    if compound not in COMPOUND_RULES:
        raise FibsynthError(f"must be one of {', '.join(COMPOUND_RULES)} (got {compound!r})", param="compound")
    mats = check_materials(materials)
    vol = _check_labels(labels, len(mats))
    spread = DEFAULT_SPREAD if spread is None else spread
    groups = solid_groups(mats)
    if len(groups) == 1 and (compound == "mean_z" or len(get_material(groups[0][0]).z) == 1):
        img, rec = project((vol > 0).astype(np.uint8), voxel_zyx, energy_kev, slices_behind=slices_behind,
                           incidence_deg=incidence_deg, solid=groups[0][0], pore=mats[0], model=model,
                           normalise=normalise, slices=slices, spread=spread, solid_depth=solid_depth)
        rec = {**rec, "materials": list(mats), "phases": [{"material": groups[0][0], "labels": groups[0][1]}]}
        return img, rec
    return _project_materials(vol, mats, voxel_zyx, energy_kev, slices_behind=slices_behind,
                              incidence_deg=incidence_deg, model=model, normalise=normalise, slices=slices,
                              spread=spread, solid_depth=solid_depth, compound=compound)


def _project_materials(vol: np.ndarray, mats: tuple[str, ...], voxel_zyx, energy_kev: float, *,
                       slices_behind, incidence_deg, model, normalise, slices, spread, solid_depth,
                       compound: str = "castaing") -> tuple[np.ndarray, dict]:
    """The general path (any number of solid materials; also used by the tests on binary volumes)."""
    from fibsynth.config import VoxelSize
    from fibsynth.fastsim.network import load_model
    from fibsynth.fastsim.projection import (DEFAULT_SOLID_DEPTH, MAX_SLICES_BEHIND, _project, _summed_area,
                                             _summed_area_f, default_slices_behind, depth_smoothed,
                                             ray_cells)
    from fibsynth.physics.backscatter import effective_z, kanaya_okayama_range_nm
    from fibsynth.physics.materials import get_material, is_vacuum
    from fibsynth.physics.montecarlo.engine import check_energy, check_incidence

    e = check_energy(energy_kev)
    a = check_incidence(incidence_deg)
    if not (0.0 <= spread <= 10.0):
        raise FibsynthError(f"must be in [0, 10] (got {spread})", param="spread")
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
    pore = mats[0]
    k_def = default_slices_behind(e, dz, pore) if not is_vacuum(pore) else min(MAX_SLICES_BEHIND, nz)
    k = k_def if slices_behind is None else int(slices_behind)
    if not (1 <= k <= MAX_SLICES_BEHIND):
        raise FibsynthError(f"must be in [1, {MAX_SLICES_BEHIND}] (got {slices_behind})", param="slices_behind")
    model = model if model is not None else load_model()
    groups = solid_groups(mats)
    zs = [effective_z(get_material(m, "materials")) for m, _ in groups]
    if is_vacuum(pore):
        return _project_open_labels_call(vol, mats, groups, zs, (dz, dy, dx), e, a, k0, k1, model=model,
                                    normalise=normalise, slices_behind=k, compound=compound)
    cells = ray_cells(k, dz, dy, a)
    d_far = max(k * dz, float(kanaya_okayama_range_nm(pore, e)))
    ws, fars = [], []
    for m, _ in groups:
        w, far = _weights(model, e, m, cells[:, 2], d_far, compound)
        ws.append(w)
        fars.append(far)
    w_none = fars[0] if len(fars) == 1 else float(np.mean(fars))
    tops = [float(w[0]) for w in ws]
    if normalise == "group":
        span = max(abs(t - w_none) for t in tops)
        if not span > 0:
            raise FibsynthError(f"the network gives no contrast between {', '.join(mats[1:])} and {pore} at {e} keV",
                                param="materials")
        ws = [(w - w_none) / span for w in ws]
        w_none_out = 0.0
    else:
        span = 1.0
        w_none_out = w_none
    ry = np.rint(spread * cells[:, 2] / dy).astype(np.int64)
    rx = np.rint(spread * cells[:, 2] / dx).astype(np.int64)
    windowed = spread > 0 and bool(ry.any() or rx.any())
    zmax = min(nz, k1 + int(cells[:, 0].max()))
    hit = np.ascontiguousarray(vol[k0:zmax] > 0, dtype=np.uint8)
    dj, di = cells[:, 0].astype(np.int64), cells[:, 1].astype(np.int64)
    total = None
    part = np.empty((k1 - k0,) + vol.shape[1:], np.float32)
    for (mat, labs), w in zip(groups, ws):
        ind = np.isin(vol, labs).astype(np.uint8)
        length = sd * float(kanaya_okayama_range_nm(mat, e))
        if length > 0:  # the material's share of the first nanometres below each voxel
            zext = min(nz, zmax + int(math.ceil(3.0 * length / dz)) + 1)
            dens = depth_smoothed(ind[k0:zext], dz, length)[: zmax - k0]
            sat = _summed_area_f(dens) if windowed else np.zeros((1, 1, 1))
        else:
            dens = np.ascontiguousarray(ind[k0:zmax])
            sat = _summed_area(dens) if windowed else np.zeros((1, 1, 1), np.int32)
        _project(hit, dens, sat, 0, k1 - k0, dj, di, ry, rx, w.astype(np.float32), np.float32(w_none_out), part)
        if total is None:
            total = part.copy()
        else:  # I = w_0 + sum_m (I_m - w_0): each material's own contrast added
            total += part - np.float32(w_none_out)
    record = {"method": "window", "energy_kev": e, "slices_behind": k, "slices_behind_default": k_def,
              "incidence_deg": a, "materials": list(mats), "pore": pore, "normalise": normalise,
              "phases": [{"material": m, "labels": labs, "Z": z, "eta_surface": t}
                         for (m, labs), z, t in zip(groups, zs, tops)],
              "compound": compound, "eta_pore": w_none, "depth_far_nm": d_far, "group_span": span, "spread": spread, "solid_depth": sd,
              "cells": cells.tolist(), "weights": [w.tolist() for w in ws], "slices": [k0, k1]}
    return total, record


def _project_open_labels_call(vol, mats, groups, zs, voxel_zyx, e, a, k0, k1, *, model, normalise, slices_behind,
                              compound="castaing"):
    from fibsynth.fastsim.projection import (MAX_SLICES_BEHIND, N_ESCAPE_DIRECTIONS, _project_open, escape_directions,
                                             ray_cells)

    dz, dy, dx = voxel_zyx
    nz = vol.shape[0]
    k = int(slices_behind)
    tops = [float(material_curve(model, e, m, [0.0], compound)[0]) for m, _ in groups]
    n = len(mats)
    p_arr = np.zeros(n, np.float64)
    scale = np.zeros(n, np.float64)
    ref = max(tops) if normalise == "group" else 1.0
    for (m, labs), z, t in zip(groups, zs, tops):
        p_arr[labs] = 9.0 / math.sqrt(z)
        scale[labs] = t / ref
    cells = ray_cells(k, dz, dy, a)
    by, bz = math.sin(math.radians(a)), math.cos(math.radians(a))
    out = np.empty((k1 - k0,) + vol.shape[1:], np.float32)
    max_steps = int(4 * (vol.shape[0] * dz + vol.shape[1] * dy + vol.shape[2] * dx) / (0.5 * min(dz, dy, dx)))
    hit = np.ascontiguousarray(vol > 0, dtype=np.uint8)
    _project_open(hit, vol, k0, k1, cells[:, 0].astype(np.int64), cells[:, 1].astype(np.int64),
                         cells[:, 2].copy(), float(dz), float(dy), float(dx), by, bz, p_arr, scale,
                         escape_directions(), max_steps, out)
    record = {"energy_kev": e, "slices_behind": k, "slices_behind_default": min(MAX_SLICES_BEHIND, nz),
              "incidence_deg": a, "materials": list(mats), "pore": "vacuum", "normalise": normalise,
              "phases": [{"material": m, "labels": labs, "Z": z, "eta_surface": t, "arnal_exponent": 9.0 / math.sqrt(z)}
                         for (m, labs), z, t in zip(groups, zs, tops)],
              "eta_pore": 0.0, "open_pores": True, "escape_directions": N_ESCAPE_DIRECTIONS, "cells": cells.tolist(),
              "slices": [k0, k1]}
    return out, record
