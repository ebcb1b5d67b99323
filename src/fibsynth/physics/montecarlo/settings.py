"""Settings of the electron Monte Carlo, one object per concern, shared by both backends (numba and torch).

* :class:`Physics`  -- elastic model, angular sampling, binary collisions, absorption cut-off;
* :class:`Beam`     -- energy, angle of incidence, probe size;
* :class:`Detector` -- which backscattered electrons count as signal;
* :class:`StackGeometry` -- the materials of a voxel stack (solid, pore, what lies beyond the last slice);
* :class:`StackSettings` -- a FIB-SEM stack run: the four above plus electrons per pixel, seed and dose.

Conventions: lengths in nm, energies in keV, z is the depth / milling direction (+z into the sample), the face
is the plane z = const. The beam is tilted within the y-z plane: direction (0, sin a, cos a) for incidence
angle a to the face normal (0 = normal incidence; the usual 52-degree stage tilt gives a = 38 degrees).

Validation happens here, once (pydantic); library functions and the CLI do not re-check these ranges.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator, model_serializer, model_validator

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError
from fibsynth.physics.elastic import MODELS as ELASTIC_MODELS
from fibsynth.physics.elastic import canonical_model
from fibsynth.physics.materials import param_name
from fibsynth.physics.montecarlo.detectors import SignalDetector

E_MIN_KEV = 0.2
E_MAX_KEV = 30.0
INCIDENCE_MAX_DEG = 85.0
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
ANGULAR_SAMPLING = ("table", "analytic")


def check_energy(energy_kev: float, param: str = "energy_kev") -> float:
    """``energy_kev`` as a float inside the engine's range, else a one-line error naming ``param``."""
    e = float(energy_kev)
    if not (E_MIN_KEV <= e <= E_MAX_KEV):
        raise FibsynthError(f"beam energy must be in [{E_MIN_KEV}, {E_MAX_KEV}] keV (got {energy_kev})",
                            param=param_name(param))
    return e


def check_incidence(incidence_deg: float, param: str = "incidence_deg") -> float:
    a = float(incidence_deg)
    if not (0.0 <= a <= INCIDENCE_MAX_DEG):
        raise FibsynthError(f"angle of incidence must be in [0, {INCIDENCE_MAX_DEG:g}] degrees (got {incidence_deg})",
                            param=param_name(param))
    return a


def beam_direction(incidence_deg: float) -> tuple[float, float]:
    """(by, bz): the beam's unit direction (0, sin a, cos a)."""
    a = math.radians(incidence_deg)
    return math.sin(a), math.cos(a)


class Physics(StrictModel):
    """Physics options: elastic model and the energy below which an electron is absorbed.

    ``elastic``: one of :data:`fibsynth.physics.elastic.MODELS` -- ``mott`` (the default Mott-quality model,
    ``elastic.MOTT_DEFAULT``), ``browning`` (Browning et al. 1994 fit to Mott cross sections), ``mott-pwa``
    (Dirac partial-wave tables, ``physics/mott_tables.py``) or Joy's screened ``rutherford``.
    ``angular_sampling``: ``table`` (tabulated inverse CDF, the default and the only choice for ``mott-pwa``)
    or ``analytic`` (the closed-form Browning / Rutherford rule; a validation mode, slower, elastic only).
    ``inelastic_deflection``: binary collisions with atomic electrons (EGS-style Z(Z+1) channel,
    ``montecarlo/tables.py``); on by default, needs tabulated sampling."""

    elastic: str = "mott"
    cutoff_kev: float = Field(0.05, ge=0.02, le=1.0)
    angular_sampling: str = Field("table", pattern="^(" + "|".join(ANGULAR_SAMPLING) + ")$")
    inelastic_deflection: bool = True

    @field_validator("elastic")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in ELASTIC_MODELS:
            raise ValueError(f"must be one of {', '.join(ELASTIC_MODELS)}")
        return v

    @model_validator(mode="after")
    def _pwa_tabulated(self) -> "Physics":
        if canonical_model(self.elastic) == "mott-pwa" and self.angular_sampling != "table":
            raise ValueError("mott-pwa has no analytic angular rule: angular_sampling must be 'table'")
        if self.inelastic_deflection and self.angular_sampling != "table":
            raise ValueError("inelastic_deflection is tabulated: angular_sampling 'analytic' needs "
                             "inelastic_deflection=False")
        return self

    def record(self) -> dict[str, Any]:
        """The parameter record of a run with these physics (the same for every backend)."""
        return {"elastic": self.elastic, "angular_sampling": self.angular_sampling, "cutoff_kev": self.cutoff_kev,
                "inelastic_deflection": self.inelastic_deflection}


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

    @field_validator("theta_max_deg")
    @classmethod
    def _order(cls, v: float, info) -> float:
        lo = info.data.get("theta_min_deg")
        if lo is not None and v < lo:
            raise ValueError(f"the maximum polar angle must be >= the minimum ({lo:g} degrees)")
        return v

    def cos_bounds(self) -> tuple[float, float]:
        return math.cos(math.radians(self.theta_max_deg)), math.cos(math.radians(self.theta_min_deg))

    @property
    def counts_all(self) -> bool:
        return (self.e_min_kev, self.theta_min_deg, self.theta_max_deg) == (0.0, 0.0, 180.0)


class Beam(StrictModel):
    """Primary beam: energy, angle of incidence to the face normal (in the y-z plane) and Gaussian probe FWHM.

    The default incidence, 38 degrees, is the usual 52-degree FIB-SEM stage tilt (stacks); bulk and film runs
    take their incidence as an argument (default 0, normal incidence)."""

    energy_kev: float = Field(ge=E_MIN_KEV, le=E_MAX_KEV)
    incidence_deg: float = Field(38.0, ge=0.0, le=INCIDENCE_MAX_DEG)
    probe_fwhm_nm: float = Field(0.0, ge=0.0, le=1e4)

    def direction(self) -> tuple[float, float]:
        return beam_direction(self.incidence_deg)

    def probe_sigmas(self) -> tuple[float, float]:
        """(sigma_x, sigma_y) of the probe on the face: the y width is stretched by 1 / cos(incidence)."""
        _, bz = self.direction()
        sig = self.probe_fwhm_nm * FWHM_TO_SIGMA
        return sig, sig / bz


MAX_LABELS = 255  # labels of a structure (uint8 voxels; 255 leaves room for a backing material index)


class StackGeometry(StrictModel):
    """Materials of a voxel stack and what lies beyond its last slice.

    Two forms:

    * binary (the default): ``solid`` (voxels = 1) and ``pore`` (voxels = 0);
    * one material per label: ``materials`` lists the material of label 0, 1, ..., n-1 (n >= 2), e.g.
      ``materials=["epoxy", "Au", "Ni"]`` for a structure with labels 0..2. ``materials=[pore, solid]`` is the
      binary form (same materials, same tables: the same images for the same seeds). ``solid`` and ``pore`` are
      not given with it.

    ``backing``: ``pore`` (label 0's material), ``solid`` (label 1's; only with two labels), ``repeat`` (the last
    slice repeated) or another material.

    ``pore="vacuum"`` (any label of the label form, and a ``vacuum`` backing): open, non-infiltrated pores -- empty
    voxels that electrons cross in straight lines without losing energy (``kernel.vacuum_flight``); numba backend
    only."""

    solid: str = "gold"
    pore: str = "epoxy"
    backing: str = "pore"
    materials: tuple[str, ...] | None = None

    @field_validator("materials")
    @classmethod
    def _label_list(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if not 2 <= len(v) <= MAX_LABELS:
            raise ValueError(f"needs one material per label, 2 to {MAX_LABELS} of them (got {len(v)})")
        if any(not str(m).strip() for m in v):
            raise ValueError("an empty material name")
        return tuple(str(m).strip() for m in v)

    @model_validator(mode="after")
    def _one_form(self) -> "StackGeometry":
        if self.materials is not None:
            both = sorted({"solid", "pore"} & self.model_fields_set)
            if both:
                raise FibsynthError(f"give materials (one per label) or {' and '.join(both)}, not both",
                                    param="materials")
            if self.backing == "solid" and len(self.materials) != 2:
                raise FibsynthError(f"'solid' is ambiguous with {len(self.materials)} labels: name the material "
                                    "(or use pore = label 0's, or repeat)", param="backing")
        return self

    @model_serializer(mode="wrap")
    def _binary_dump(self, handler):
        # the binary form dumps as it always did (no ``materials`` key): work-store keys, cache keys and the image
        # metadata of binary stacks are unchanged
        # the label form dumps without solid / pore (they are not given with it): it validates back (dask tasks)
        out = handler(self)
        if isinstance(out, dict) and "materials" in out:
            if out["materials"] is None:
                out.pop("materials")
            else:
                out.pop("solid", None)
                out.pop("pore", None)
        return out

    def label_materials(self) -> tuple[str, ...]:
        """The material of each label 0..n-1 (``(pore, solid)`` in the binary form)."""
        return self.materials if self.materials is not None else (self.pore, self.solid)

    @property
    def n_labels(self) -> int:
        return len(self.label_materials())

    @property
    def open_pores(self) -> bool:
        """True when the pores (label 0) are empty (``pore="vacuum"``, or ``materials[0] == "vacuum"``)."""
        from fibsynth.physics.materials import is_vacuum

        return is_vacuum(self.label_materials()[0])


# the flat field names of StackSettings before it was composed (kept as constructor keywords and read-only
# attributes for one release): flat name -> (part, field of the part)
_FLAT: dict[str, tuple[str, str]] = {
    "energy_kev": ("beam", "energy_kev"),
    "incidence_deg": ("beam", "incidence_deg"),
    "probe_fwhm_nm": ("beam", "probe_fwhm_nm"),
    "elastic": ("physics", "elastic"),
    "cutoff_kev": ("physics", "cutoff_kev"),
    "angular_sampling": ("physics", "angular_sampling"),
    "inelastic_deflection": ("physics", "inelastic_deflection"),
    "detector_emin_kev": ("detector", "e_min_kev"),
    "detector_theta_min_deg": ("detector", "theta_min_deg"),
    "detector_theta_max_deg": ("detector", "theta_max_deg"),
    "solid": ("geometry", "solid"),
    "pore": ("geometry", "pore"),
    "backing": ("geometry", "backing"),
    "materials": ("geometry", "materials"),
}


class StackSettings(StrictModel):
    """A FIB-SEM stack simulation: ``beam``, ``physics``, ``detector`` and ``geometry`` plus the run's
    ``electrons_per_pixel``, ``seed`` and ``shot_noise_dose`` (0 = the binomial image; D > 0: Poisson(D p) / D).

    For one release the flat keywords of the old layout are accepted and read, e.g.
    ``StackSettings(energy_kev=2, electrons_per_pixel=100, solid="gold", detector_emin_kev=1)`` and
    ``settings.energy_kev``; new code writes ``StackSettings(beam=Beam(energy_kev=2), ...)``."""

    beam: Beam
    physics: Physics = Physics()
    detector: Detector = Detector()
    geometry: StackGeometry = StackGeometry()
    electrons_per_pixel: int = Field(ge=1, le=10**8)
    seed: int = Field(0, ge=0, lt=2**63)
    shot_noise_dose: float = Field(0.0, ge=0.0)
    signal: SignalDetector | None = None

    @model_serializer(mode="wrap")
    def _bse_dump(self, handler):
        # the BSE detector (signal None) dumps as it always did: work-store keys and metadata of BSE stacks unchanged
        out = handler(self)
        if isinstance(out, dict) and out.get("signal", 0) is None:
            out.pop("signal")
        return out

    @property
    def detector_kind(self) -> str:
        """``bse`` or the SE detector's kind (``se``, ``inlens``, ``et``)."""
        return "bse" if self.signal is None else self.signal.kind

    @model_validator(mode="before")
    @classmethod
    def _flat_keywords(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(k in _FLAT for k in data):
            return data
        out = dict(data)
        parts: dict[str, dict] = {}
        for flat, (part, name) in _FLAT.items():
            if flat in out:
                parts.setdefault(part, {})[name] = out.pop(flat)
        for part, values in parts.items():
            given = out.get(part)
            if isinstance(given, StrictModel):
                given = given.model_dump(exclude_unset=True)  # what was given, not the defaults beside it
            out[part] = {**(given or {}), **values}
        return out

    def __getattr__(self, name: str) -> Any:
        # read access to the old flat names (settings.energy_kev, settings.solid, ...)
        flat = _FLAT.get(name)
        if flat is not None:
            return getattr(getattr(self, flat[0]), flat[1])
        return super().__getattr__(name)

    def record(self) -> dict[str, Any]:
        """The flat parameter record written into an image's metadata (one key per setting)."""
        out: dict[str, Any] = {flat: getattr(getattr(self, part), name) for flat, (part, name) in _FLAT.items()}
        if out["materials"] is None:  # the binary form: the record it always had
            del out["materials"]
        else:  # the label form: its materials, not the unused solid / pore defaults
            out["materials"] = list(out["materials"])
            del out["solid"], out["pore"]
        out.update(electrons_per_pixel=self.electrons_per_pixel, seed=self.seed, shot_noise_dose=self.shot_noise_dose)
        if self.signal is not None:  # an SE detector: its kind and parameters (BSE records are unchanged)
            out.update(self.signal.record())
        return out
