"""What both backends share: the set-up of a run (materials, geometry, tables, beam and detector numbers), the
result type and the parameter record. A backend (``engine`` for numba, ``backend_torch`` for PyTorch) supplies only
its transport.

* :func:`layer_setup` -- a point beam on a laterally infinite stack of layers (bulk, film);
* :func:`stack_materials`, :func:`slice_tables`, :func:`slice_beam` -- a FIB-SEM stack (:class:`StackSettings`);
* :class:`BseResult` and :func:`layer_record` -- the result of a point-beam run and its parameter record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.physics.materials import Material, get_material
from fibsynth.physics.montecarlo.settings import (
    Detector,
    Physics,
    StackSettings,
    beam_direction,
    check_energy,
    check_incidence,
)

LATERAL_INFINITE_NM = 1e9  # lateral voxel size of laterally infinite (bulk / film) targets
BACKENDS = ("numba", "torch")
MAX_ELECTRONS = 10**10  # primaries of one point-beam run


def check_backend(backend: str, device: str | None = None) -> str:
    """Validate a backend name and its device (``device`` applies to the torch backend only)."""
    if backend not in BACKENDS:
        raise FibsynthError(f"must be numba or torch (got {backend!r})", param="backend")
    if backend == "numba" and device not in (None, "auto"):
        raise FibsynthError("applies to the torch backend only", param="device")
    return backend


def build_physics_tables(materials: list[Material], physics: Physics):
    """The transport tables (:class:`~fibsynth.physics.montecarlo.tables.Tables`) of ``materials`` under
    ``physics`` -- every option passed, for both backends (the numba kernel takes ``.as_tuple()``, the torch
    backend ``backend_torch.TorchTables``)."""
    from fibsynth.physics.montecarlo.tables import build_tables

    return build_tables(materials, physics.elastic, physics.cutoff_kev, physics.angular_sampling,
                        physics.inelastic_deflection)


# ------------------------------------------------------------------------------------------ point beam on layers


def layer_column(layers, substrate):
    """A laterally infinite stack of layers ``[(material, thickness_nm), ...]`` on ``substrate`` as a voxel column.

    Returns ``(materials, vol, dz, substrate_id, layers)`` with ``layers`` as ``[(material_id, thickness_nm)]``:
    one layer is one voxel; several are resolved on a grid of the thinnest layer's thickness (all thicknesses must
    be integer multiples of it); no layer is a bulk target (one voxel of "infinite" thickness).
    """
    mats: list[Material] = []
    names: dict[str, int] = {}

    def mid(m) -> int:
        mm = get_material(m, allow_vacuum=True)  # vacuum layers / substrate: films over empty space
        key = mm.describe()
        if key not in names:
            names[key] = len(mats)
            mats.append(mm)
        return names[key]

    sub = mid(substrate)
    if any(not float(t) >= 0 for _, t in layers):
        raise FibsynthError("layer thickness must be >= 0 nm", param="thickness_nm")
    ids = [(mid(m), float(t)) for m, t in layers if float(t) > 0]
    if not ids:
        return mats, np.full((1, 1, 1), sub, dtype=np.uint8), LATERAL_INFINITE_NM, sub, ids
    if len(ids) == 1:
        return mats, np.full((1, 1, 1), ids[0][0], dtype=np.uint8), ids[0][1], sub, ids
    dz = min(t for _, t in ids)
    counts = [int(round(t / dz)) for _, t in ids]
    if any(abs(c * dz - t) > 1e-6 * t for c, (_, t) in zip(counts, ids)):
        raise FibsynthError("layer thicknesses must be integer multiples of the thinnest layer", param="thickness_nm")
    col = np.concatenate([np.full(c, m) for c, (m, _) in zip(counts, ids)])
    return mats, col.astype(np.uint8).reshape(-1, 1, 1), dz, sub, ids


@dataclass
class LayerSetup:
    """Everything a backend needs for a point beam on layers: materials, the voxel column, tables (numpy),
    beam direction, detector bounds, and the (backend-independent) parameter record."""

    materials: list
    vol: np.ndarray
    dz: float
    substrate_id: int
    layers: list
    tables: object
    e0: float
    incidence_deg: float
    by: float
    bz: float
    emin: float
    cmin: float
    cmax: float
    electrons: int
    record: dict


def layer_setup(layers, substrate, energy_kev: float, electrons: int, *, seed: int = 0,
                physics: Physics | None = None, detector: Detector | None = None,
                incidence_deg: float = 0.0) -> LayerSetup:
    """Validate the inputs of a layer run and build its tables and parameter record (both backends)."""
    physics = physics or Physics()
    detector = detector or Detector()
    e0 = check_energy(energy_kev)
    a = check_incidence(incidence_deg)
    if not 1 <= int(electrons) <= MAX_ELECTRONS:
        raise FibsynthError(f"must be in [1, {MAX_ELECTRONS}] (got {electrons})", param="electrons")
    if not 0 <= int(seed) < 2**63:
        raise FibsynthError(f"must be in [0, 2^63) (got {seed})", param="seed")
    mats, vol, dz, sub, ids = layer_column(layers, substrate)
    by, bz = beam_direction(a)
    cmin, cmax = detector.cos_bounds()
    record = layer_record(mats, ids, sub, e0, a, physics, seed)
    return LayerSetup(mats, vol, float(dz), sub, ids, build_physics_tables(mats, physics), e0, a, by, bz,
                      float(detector.e_min_kev), cmin, cmax, int(electrons), record)


def layer_record(mats, layers, sub, e0: float, incidence_deg: float, physics: Physics, seed: int) -> dict:
    """The parameter record of a point-beam run (``BseResult.parameters``), the same for both backends."""
    return {
        "layers": [(mats[m].describe(), t) for m, t in layers],
        "substrate": mats[sub].describe(),
        "energy_kev": e0,
        "incidence_deg": incidence_deg,
        **physics.record(),
        "seed": seed,
    }


@dataclass
class BseResult:
    """Backscatter tallies of a point-beam run. Standard errors are binomial: sqrt(eta (1 - eta) / N)."""

    electrons: int
    backscattered: int
    detected: int
    energy_hist: np.ndarray
    angle_hist: np.ndarray
    seconds: float
    parameters: dict = field(default_factory=dict)

    @property
    def eta(self) -> float:
        return self.backscattered / self.electrons

    @property
    def eta_std(self) -> float:
        return binomial_std(self.eta, self.electrons)

    @property
    def detected_fraction(self) -> float:
        return self.detected / self.electrons

    @property
    def detected_std(self) -> float:
        return binomial_std(self.detected_fraction, self.electrons)

    @property
    def electrons_per_second(self) -> float:
        return self.electrons / self.seconds if self.seconds > 0 else float("nan")


def binomial_std(p, n):
    """Binomial standard error sqrt(p (1 - p) / n) of a fraction measured with n electrons."""
    return np.sqrt(np.asarray(p) * (1.0 - np.asarray(p)) / n) if np.ndim(p) else math.sqrt(p * (1.0 - p) / n)


# ------------------------------------------------------------------------------------------ FIB-SEM stack


def stack_materials(settings: StackSettings) -> tuple[list[Material], int, bool]:
    """(materials, backing index, repeat_last) of a stack: index i = the material of label i (binary form: 0 =
    pore, 1 = solid), then a backing material if it is none of the labels' (index n). The pore (any label of the
    label form) and the backing may be ``vacuum`` (open pores; ``materials.VACUUM_MATERIAL``)."""
    g = settings.geometry
    if g.materials is None:
        mats = [get_material(g.pore, "pore", allow_vacuum=True), get_material(g.solid, "solid")]
    else:
        mats = [get_material(m, "materials", allow_vacuum=True) for m in g.materials]
        if all(m.is_vacuum for m in mats):
            raise FibsynthError("every label is vacuum: at least one must be matter", param="materials")
    repeat = False
    if g.backing == "pore":
        backing = 0
    elif g.backing == "solid":
        backing = 1  # StackGeometry allows it with two labels only
    elif g.backing == "repeat":
        backing, repeat = 0, True
    else:
        mats.append(get_material(g.backing, "backing", allow_vacuum=True))
        backing = len(mats) - 1
    return mats, backing, repeat


def check_labels(vol: np.ndarray, settings: StackSettings, param: str = "structure") -> None:
    """A structure's labels against the stack's materials: every voxel value must name a material (binary form:
    0 = pore, 1 = solid; ``materials``: 0..n-1). One line naming ``param`` otherwise."""
    g = settings.geometry
    n = g.n_labels
    top = int(vol.max()) if vol.size else 0
    if top < n:
        return
    if g.materials is None:
        raise FibsynthError(f"must be binary (0 = pore, 1 = solid); it has labels up to {top}: give one material "
                            "per label (materials)", param=param)
    raise FibsynthError(f"has labels up to {top} but {n} materials were given (labels 0..{n - 1})",
                        param=(param, "materials"))


def has_vacuum(mats: list[Material]) -> bool:
    """Whether any of ``mats`` is vacuum (open pores, a vacuum backing or substrate)."""
    return any(m.is_vacuum for m in mats)


def slice_tables(settings: StackSettings, mats: list):
    """Transport tables for the stack's materials ``mats`` (from :func:`stack_materials`) with its physics."""
    return build_physics_tables(mats, settings.physics)


def slice_beam(settings: StackSettings) -> tuple[float, float, float, float, float, float]:
    """(by, bz, sigma_x, sigma_y, cmin, cmax): beam direction, Gaussian probe widths on the face (the y width
    stretched by the tilt) and the detector's bounds on the cosine to the column axis."""
    cmin, cmax = settings.detector.cos_bounds()
    by, bz = settings.beam.direction()
    sig_x, sig_y = settings.beam.probe_sigmas()
    return by, bz, sig_x, sig_y, cmin, cmax


def slice_record(settings: StackSettings) -> dict:
    """The parameter record of a stack run (flat, one key per setting), the same for both backends."""
    return settings.record()
