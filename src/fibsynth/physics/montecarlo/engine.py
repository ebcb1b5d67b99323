"""Python API of the electron Monte Carlo: beam, detector, bulk and film targets, single slices.

Conventions: lengths in nm, energies in keV, z is the depth / milling direction (+z into the sample), the face
is the plane z = const. The beam is tilted within the y-z plane: direction (0, sin a, cos a) for incidence
angle a to the face normal (0 = normal incidence; the usual 52-degree stage tilt gives a = 38 degrees).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field, model_validator

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError
from fibsynth.physics.materials import Material, get_material

E_MIN_KEV = 0.2
E_MAX_KEV = 30.0
LATERAL_INFINITE_NM = 1e9  # lateral voxel size of laterally infinite (bulk / film) targets
N_CHUNKS = 256  # fixed work partition of point-beam runs: tallies do not depend on the thread count


class Detector(StrictModel):
    """Which backscattered electrons count as signal.

    ``e_min_kev``: energy filter (only BSE with E >= e_min are detected, like an energy-selective in-lens
    detector). ``theta_min_deg``/``theta_max_deg``: acceptance in the polar angle between the exit direction and
    the column axis (the reversed beam direction; equals the angle to the face normal at normal incidence).
    The default detects every BSE.
    """

    e_min_kev: float = Field(0.0, ge=0.0, le=E_MAX_KEV)
    theta_min_deg: float = Field(0.0, ge=0.0, le=180.0)
    theta_max_deg: float = Field(180.0, ge=0.0, le=180.0)

    @model_validator(mode="after")
    def _order(self) -> "Detector":
        if self.theta_max_deg < self.theta_min_deg:
            raise ValueError("theta_max_deg must be >= theta_min_deg")
        return self

    def cos_bounds(self) -> tuple[float, float]:
        return math.cos(math.radians(self.theta_max_deg)), math.cos(math.radians(self.theta_min_deg))


class Physics(StrictModel):
    """Physics options: elastic model and the energy below which an electron is absorbed.

    ``elastic``: ``mott`` (the default Mott-quality model, ``elastic.MOTT_DEFAULT``), ``browning`` (Browning et
    al. 1994 fit to Mott cross sections), ``mott-pwa`` (Dirac partial-wave tables, ``physics/mott_tables.py``)
    or Joy's screened ``rutherford``. ``angular_sampling``: ``table`` (tabulated inverse CDF, the default and
    the only choice for ``mott-pwa``) or ``analytic`` (the closed-form Browning / Rutherford rule; a validation
    mode, slower, elastic only). ``inelastic_deflection``: deflection of the primary by collisions with atomic
    electrons (EGS-style Z(Z+1) channel, ``montecarlo/tables.py``); on by default, needs tabulated sampling."""

    elastic: str = Field("mott", pattern="^(mott|browning|rutherford|mott-pwa)$")
    cutoff_kev: float = Field(0.05, ge=0.02, le=1.0)
    angular_sampling: str = Field("table", pattern="^(table|analytic)$")
    inelastic_deflection: bool = True

    @model_validator(mode="after")
    def _pwa_tabulated(self) -> "Physics":
        from fibsynth.physics.elastic import canonical_model

        if canonical_model(self.elastic) == "mott-pwa" and self.angular_sampling != "table":
            raise ValueError("mott-pwa has no analytic angular rule: angular_sampling must be 'table'")
        if self.inelastic_deflection and self.angular_sampling != "table":
            raise ValueError("inelastic_deflection is tabulated: angular_sampling 'analytic' needs "
                             "inelastic_deflection=False")
        return self


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


def check_energy(energy_kev: float, option: str = "--energy-kev") -> float:
    e = float(energy_kev)
    if not (E_MIN_KEV <= e <= E_MAX_KEV):
        raise FibsynthError(f"{option}: beam energy must be in [{E_MIN_KEV}, {E_MAX_KEV}] keV (got {energy_kev})")
    return e


def check_incidence(incidence_deg: float, option: str = "--incidence-deg") -> float:
    a = float(incidence_deg)
    if not (0.0 <= a <= 85.0):
        raise FibsynthError(f"{option}: angle of incidence must be in [0, 85] degrees (got {incidence_deg})")
    return a


def beam_direction(incidence_deg: float) -> tuple[float, float]:
    a = math.radians(incidence_deg)
    return math.sin(a), math.cos(a)


def _tables(materials: list[Material], physics: Physics):
    from fibsynth.physics.montecarlo.tables import build_tables

    return build_tables(materials, physics.elastic, physics.cutoff_kev, physics.angular_sampling,
                        physics.inelastic_deflection).as_tuple()


def layer_column(layers, substrate):
    """A laterally infinite stack of layers ``[(material, thickness_nm), ...]`` on ``substrate`` as a voxel column.

    Returns ``(materials, vol, dz, substrate_id, layers)`` with ``layers`` as ``[(material_id, thickness_nm)]``:
    one layer is one voxel; several are resolved on a grid of the thinnest layer's thickness (all thicknesses must
    be integer multiples of it); no layer is a bulk target (one voxel of "infinite" thickness). Shared by the numba
    engine and the torch path.
    """
    mats: list[Material] = []
    names: dict[str, int] = {}

    def mid(m) -> int:
        mm = get_material(m)
        key = mm.describe()
        if key not in names:
            names[key] = len(mats)
            mats.append(mm)
        return names[key]

    sub = mid(substrate)
    if any(not float(t) >= 0 for _, t in layers):
        raise FibsynthError("layer thickness must be >= 0 nm")
    ids = [(mid(m), float(t)) for m, t in layers if float(t) > 0]
    if not ids:
        return mats, np.full((1, 1, 1), sub, dtype=np.uint8), LATERAL_INFINITE_NM, sub, ids
    if len(ids) == 1:
        return mats, np.full((1, 1, 1), ids[0][0], dtype=np.uint8), ids[0][1], sub, ids
    dz = min(t for _, t in ids)
    counts = [int(round(t / dz)) for _, t in ids]
    if any(abs(c * dz - t) > 1e-6 * t for c, (_, t) in zip(counts, ids)):
        raise FibsynthError("layer thicknesses must be integer multiples of the thinnest layer")
    col = np.concatenate([np.full(c, m) for c, (m, _) in zip(counts, ids)])
    return mats, col.astype(np.uint8).reshape(-1, 1, 1), dz, sub, ids


def run_layers(
    layers: list[tuple[str | Material, float]],
    substrate: str | Material,
    energy_kev: float,
    electrons: int,
    *,
    seed: int = 0,
    physics: Physics | None = None,
    detector: Detector | None = None,
    incidence_deg: float = 0.0,
    stream: int = 0,
) -> BseResult:
    """Point beam on a laterally infinite stack of layers ``[(material, thickness_nm), ...]`` on ``substrate``.

    Implemented as a voxel column (one voxel per layer would need equal thicknesses, so layers are resolved on
    a grid of the greatest common thickness when there are several; one layer is one voxel).
    """
    from fibsynth.physics.montecarlo import kernel

    physics = physics or Physics()
    detector = detector or Detector()
    e0 = check_energy(energy_kev)
    a = check_incidence(incidence_deg)
    if electrons < 1:
        raise FibsynthError(f"--electrons must be >= 1 (got {electrons})")
    mats, vol, dz, sub, layers = layer_column(layers, substrate)
    tabs = _tables(mats, physics)
    by, bz = beam_direction(a)
    cmin, cmax = detector.cos_bounds()
    lat = LATERAL_INFINITE_NM
    t0 = time.perf_counter()
    tal, he, ha = kernel.run_point(
        int(electrons), N_CHUNKS, int(seed), int(stream), e0, 0.5 * lat, 0.5 * lat, by, bz, 0.0, 0.0,
        vol, float(dz), lat, lat, 0, sub, False,
        float(detector.e_min_kev), cmin, cmax, *tabs,
    )
    dt = time.perf_counter() - t0
    return BseResult(
        electrons=int(electrons),
        backscattered=int(tal[0]),
        detected=int(tal[1]),
        energy_hist=he,
        angle_hist=ha,
        seconds=dt,
        parameters={
            "layers": [(mats[m].describe(), t) for m, t in layers],
            "substrate": mats[sub].describe(),
            "energy_kev": e0,
            "incidence_deg": a,
            "elastic": physics.elastic,
            "angular_sampling": physics.angular_sampling,
            "cutoff_kev": physics.cutoff_kev,
            "inelastic_deflection": physics.inelastic_deflection,
            "seed": seed,
        },
    )


def bulk_eta(material, energy_kev, electrons, *, seed=0, physics=None, detector=None, incidence_deg=0.0):
    """Backscatter coefficient of a bulk target (:class:`BseResult`)."""
    return run_layers([], material, energy_kev, electrons, seed=seed, physics=physics, detector=detector,
                      incidence_deg=incidence_deg)


def film_eta(film, substrate, thickness_nm, energy_kev, electrons, *, seed=0, physics=None, detector=None,
             incidence_deg=0.0, stream=0):
    """Backscatter coefficient of a film of ``thickness_nm`` on a substrate (:class:`BseResult`)."""
    if not thickness_nm >= 0:
        raise FibsynthError(f"--thickness-nm must be >= 0 (got {thickness_nm})")
    return run_layers([(film, thickness_nm)], substrate, energy_kev, electrons, seed=seed, physics=physics,
                      detector=detector, incidence_deg=incidence_deg, stream=stream)
