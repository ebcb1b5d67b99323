"""Structures of three or more phases: label volumes (uint8) with values 0..n-1, one phase (material) per label.

Two generators (``docs/structure.md``, "Several phases"):

* ``two-field`` -- two solid phases and a pore, e.g. a fuel-cell anode (Ni, YSZ, pore): two independent
  leveled-wave fields (:mod:`.leveled_wave`). Field A is the solid network (solid fraction ``f1 + f2``,
  ligament ``ligament_nm[0]``); field B (its own seed stream, ligament ``ligament_nm[1]``, solid fraction
  ``f2 / (f1 + f2)``) splits it: label 0 = not A (pore), 2 = A and B, 1 = A and not B. Both fields are leveled
  on their own samples, and being independent, the expected fractions are ``f0, f1, f2``; the realised ones are
  measured and recorded.
* ``particles`` -- particles in a matrix, e.g. a battery electrode (active material and carbon-binder
  particles in an infiltrated pore space): label 0 is the matrix, labels 1..n-1 are spheres of radius
  ``particle_radius_nm[i-1]`` (overlapping, periodic in x, y and z) placed at uniform random centres, phase by
  phase, into the matrix left by the phases before, until phase i reaches its fraction (overshoot: at most one
  sphere). Later phases are therefore cut by earlier ones where they meet.

Seeds: ``numpy.random.SeedSequence(seed).spawn(k)`` gives one stream per field or particle phase.
``VolumeMeta.materials`` records the phase of each label (``phases``), ``parameters`` the requested and measured
fractions; user volumes with labels 0..n-1 come in through :func:`import_labels`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from fibsynth.config import StrictModel, VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.structure.leveled_wave import DEFAULT_WAVES, LeveledWave, LWMConfig

KINDS = ("two-field", "particles")
MAX_PHASES = 255

#: recorded phases when none are given: a Ni / YSZ fuel-cell anode (8 mol% yttria-stabilised zirconia,
#: Zr0.852 Y0.148 O1.926 at 5.9 g/cm^3) and a LiCoO2 / carbon-binder battery electrode, both epoxy-infiltrated
DEFAULT_PHASES = {
    "two-field": ("epoxy", "Ni", "Zr0.852Y0.148O1.926:5.9"),
    "particles": ("epoxy", "LiCoO2:5.05", "graphite"),
}


class MultiphaseConfig(StrictModel):
    """Inputs of an n-phase structure (labels 0..n-1)."""

    shape: tuple[int, int, int] = Field(description="volume shape (z, y, x) in voxels")
    voxel_size: VoxelSize = Field(description="voxel size in nm")
    kind: Literal["two-field", "particles"] = Field("two-field", description="generator: two-field or particles")
    fractions: tuple[float, ...] = Field(description="volume fraction of each label 0..n-1 (sum 1)")
    ligament_nm: tuple[float, ...] = Field((40.0,), description="two-field: ligament of field A (solid network) "
                                           "and of field B (the split); one value: both")
    particle_radius_nm: tuple[float, ...] = Field((20.0,), description="particles: sphere radius of labels "
                                                  "1..n-1; one value: all")
    phases: tuple[str, ...] | None = Field(None, description="material (or name) of each label 0..n-1")
    waves: int = Field(DEFAULT_WAVES, ge=1, le=100_000, description="plane waves per field")
    seed: int = Field(0, ge=0, description="random seed")

    @field_validator("shape")
    @classmethod
    def _shape_ok(cls, v):
        return LWMConfig._shape_ok(v)

    @model_validator(mode="after")
    def _consistent(self) -> "MultiphaseConfig":
        f = self.fractions
        n = len(f)
        if not 2 <= n <= MAX_PHASES:
            raise FibsynthError(f"needs one fraction per label, 2 to {MAX_PHASES} of them (got {n})",
                                param="fractions")
        if any(not 0.0 < x < 1.0 for x in f):
            raise FibsynthError(f"each fraction must be in (0, 1) (got {list(f)})", param="fractions")
        if abs(sum(f) - 1.0) > 1e-6:
            raise FibsynthError(f"fractions must sum to 1 (got {sum(f):.6g})", param="fractions")
        if self.kind == "two-field":
            if n != 3:
                raise FibsynthError(f"two-field makes 3 phases (pore and two solids): give 3 fractions (got {n})",
                                    param="fractions")
            if len(self.ligament_nm) not in (1, 2):
                raise FibsynthError("give one or two values (field A, field B)", param="ligament_nm")
        else:
            if len(self.particle_radius_nm) not in (1, n - 1):
                raise FibsynthError(f"give one radius or one per particle phase ({n - 1})",
                                    param="particle_radius_nm")
            small = min(self.voxel_size.zyx())
            if any(not r >= small for r in self.particle_radius_nm):
                raise FibsynthError(f"radii must be at least one voxel ({small:g} nm)", param="particle_radius_nm")
            if any(2 * r > min(s * v for s, v in zip(self.shape, self.voxel_size.zyx()))
                   for r in self.particle_radius_nm):
                raise FibsynthError("a particle is wider than the volume: use smaller radii or a larger shape",
                                    param="particle_radius_nm")
        if self.phases is not None:
            if len(self.phases) != n:
                raise FibsynthError(f"give one phase per label ({n}; got {len(self.phases)})", param="phases")
            if any(not str(p).strip() for p in self.phases):
                raise FibsynthError("an empty phase name", param="phases")
        return self

    @property
    def n_phases(self) -> int:
        return len(self.fractions)

    def phase_names(self) -> tuple[str, ...] | None:
        if self.phases is not None:
            return tuple(str(p).strip() for p in self.phases)
        default = DEFAULT_PHASES[self.kind]
        return default if len(default) == self.n_phases else None


class Multiphase:
    """An n-phase structure model: :meth:`labels` (uint8, 0..n-1) and :meth:`meta`."""

    def __init__(self, config: MultiphaseConfig):
        self.config = config
        self.fields: tuple[LeveledWave, ...] = ()
        c = config
        if c.kind == "two-field":
            la, lb = (c.ligament_nm * 2)[:2]
            f0, f1, f2 = c.fractions
            common = dict(shape=c.shape, voxel_size=c.voxel_size, waves=c.waves, seed=c.seed)
            try:
                cfg_a = LWMConfig.build(None, solid_fraction=f1 + f2, ligament_nm=la, **common)
                cfg_b = LWMConfig.build(None, solid_fraction=f2 / (f1 + f2), ligament_nm=lb, **common)
            except FibsynthError as exc:  # a ligament under two voxels: the same one line, naming ligament_nm
                raise FibsynthError(exc.message, param="ligament_nm") from None
            sa, sb = np.random.SeedSequence(c.seed).spawn(2)
            self.fields = (LeveledWave(cfg_a, np.random.default_rng(sa)),
                           LeveledWave(cfg_b, np.random.default_rng(sb)))
        self._measured: dict | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.config.shape

    def labels(self) -> np.ndarray:
        """The label volume (uint8, values 0..n-1)."""
        t0 = time.perf_counter()
        out = self._two_field() if self.config.kind == "two-field" else self._particles()
        counts = np.bincount(out.ravel(), minlength=self.config.n_phases)
        self._measured = {"fractions_measured": (counts / out.size).tolist(),
                          "seconds": round(time.perf_counter() - t0, 3)}
        return out

    def _two_field(self) -> np.ndarray:
        a = self.fields[0].solid()
        b = self.fields[1].solid()
        return (a * (1 + b)).astype(np.uint8)  # 0: not A, 1: A and not B, 2: A and B

    def _particles(self) -> np.ndarray:
        c = self.config
        n = c.n_phases
        radii = c.particle_radius_nm if len(c.particle_radius_nm) == n - 1 else c.particle_radius_nm * (n - 1)
        vol = np.zeros(c.shape, np.uint8)
        total = vol.size
        streams = np.random.SeedSequence(c.seed).spawn(n - 1)
        vz = np.asarray(c.voxel_size.zyx(), np.float64)
        size_nm = np.asarray(c.shape) * vz
        for lab in range(1, n):
            rng = np.random.default_rng(streams[lab - 1])
            r = float(radii[lab - 1])
            half = np.ceil(r / vz).astype(int)
            axes = [np.arange(-h, h + 1) for h in half]
            target = int(round(c.fractions[lab] * total))
            have = 0
            while have < target:
                centre = rng.uniform(0.0, 1.0, 3) * size_nm  # nm, uniform in the (periodic) box
                base = np.floor(centre / vz).astype(int)
                idx = [(b + ax) for b, ax in zip(base, axes)]
                # physical distance of the neighbouring voxel centres to the sphere's centre
                d2 = sum(np.reshape(((i + 0.5) * v - x) ** 2, [-1 if k == j else 1 for k in range(3)])
                         for j, (i, v, x) in enumerate(zip(idx, vz, centre)))
                inside = d2 <= r * r
                zz, yy, xx = (np.reshape(i % s, [-1 if k == j else 1 for k in range(3)])
                              for j, (i, s) in enumerate(zip(idx, c.shape)))
                block = vol[zz, yy, xx]
                paint = inside & (block == 0)
                if not paint.any():
                    continue
                block[paint] = lab
                vol[zz, yy, xx] = block
                have += int(paint.sum())
        return vol

    def parameters(self) -> dict:
        c = self.config
        p = {
            "method": {"two-field": "two independent leveled-wave fields: 0 = not A, 1 = A and not B, "
                                    "2 = A and B (independent seed streams)",
                       "particles": "overlapping spheres at uniform random centres (periodic), phase by phase "
                                    "into the matrix left by earlier phases"}[c.kind],
            "kind": c.kind,
            "shape": list(c.shape),
            "n_phases": c.n_phases,
            "fractions": list(c.fractions),
            "phases": list(c.phase_names() or ()),
            "waves": c.waves,
        }
        if c.kind == "two-field":
            p["ligament_nm"] = list((c.ligament_nm * 2)[:2])
            p["fields"] = [f.parameters(include_waves=False) for f in self.fields]
        else:
            p["particle_radius_nm"] = list(c.particle_radius_nm)
        if self._measured:
            p.update(self._measured)
        return p

    def meta(self):
        from fibsynth.io import VolumeMeta

        names = self.config.phase_names()
        return VolumeMeta(kind="structure", voxel_size_nm=self.config.voxel_size, generator="multiphase",
                          parameters=self.parameters(), seed=self.config.seed,
                          materials=None if names is None else {str(i): m for i, m in enumerate(names)})


def multiphase_config(shape, voxel_size, fractions, *, kind: str = "two-field", ligament_nm=40.0,
                      particle_radius_nm=20.0, phases=None, waves: int = DEFAULT_WAVES,
                      seed: int = 0) -> MultiphaseConfig:
    from fibsynth.structure.leveled_wave import _voxel

    def tup(v):
        return tuple(v) if isinstance(v, (list, tuple)) else (v,)

    return MultiphaseConfig.build(None, shape=tuple(shape), voxel_size=_voxel(voxel_size), kind=kind,
                                  fractions=tup(fractions), ligament_nm=tup(ligament_nm),
                                  particle_radius_nm=tup(particle_radius_nm),
                                  phases=None if phases is None else tup(phases), waves=waves, seed=seed)


def multiphase(shape, voxel_size, fractions, *, kind: str = "two-field", ligament_nm=40.0,
               particle_radius_nm=20.0, phases=None, waves: int = DEFAULT_WAVES, seed: int = 0,
               return_model: bool = False):
    """An n-phase label volume (uint8, 0..n-1) held in memory (see the module docstring).

    ``fractions``: volume fraction per label (sum 1). ``kind="two-field"`` (3 phases; ``ligament_nm`` one value or
    (field A, field B)) or ``"particles"`` (label 0 the matrix; ``particle_radius_nm`` one value or one per
    particle phase). ``phases``: the material of each label, recorded in the metadata.
    With ``return_model=True`` returns ``(labels, Multiphase)`` (``.meta()`` holds the measured fractions)."""
    cfg = multiphase_config(shape, voxel_size, fractions, kind=kind, ligament_nm=ligament_nm,
                            particle_radius_nm=particle_radius_nm, phases=phases, waves=waves, seed=seed)
    model = Multiphase(cfg)
    lab = model.labels()
    return (lab, model) if return_model else lab


def write_multiphase(path: str | Path, model: Multiphase) -> Path:
    """Build a model's labels in memory and write them with its metadata (any format fibsynth writes)."""
    from fibsynth.io import write_volume
    from fibsynth.structure.write import check_structure_memory

    check_structure_memory(model.shape, path)
    lab = model.labels()
    return write_volume(path, lab, model.meta())


def import_labels(src: str | Path, dst: str | Path, voxel_nm: float | None = None, slice_nm: float | None = None,
                  phases=None) -> dict:
    """Validate a user label volume (integer labels 0..n-1, every one present, n >= 2; TIFF, slice folder, Zarr,
    .npy) and rewrite it as a fibsynth structure (uint8, metadata with voxel size and, given ``phases``, the
    material of each label)."""
    from fibsynth.io import VolumeMeta, read_labels, resolve_voxel_size, volume_format, write_volume

    src, dst = Path(src), Path(dst)
    volume_format(dst)
    vol = read_labels(src, require_all=True)
    data = np.ascontiguousarray(vol.data, dtype=np.uint8)
    n = int(data.max()) + 1 if data.size else 0
    if n < 2:
        raise FibsynthError("volume holds a single label; not a multi-phase structure", src)
    names = None
    if phases is not None:
        names = [str(p).strip() for p in phases]
        if len(names) != n or any(not p for p in names):
            raise FibsynthError(f"give one phase per label ({n} labels, got {len(names)})", param="phases")
    voxel = resolve_voxel_size(vol.meta.voxel_size_nm, voxel_nm, slice_nm, src)
    fractions = (np.bincount(data.ravel(), minlength=n) / data.size).tolist()
    old = vol.meta
    materials = {str(i): m for i, m in enumerate(names)} if names else old.materials
    meta = VolumeMeta(kind="structure", voxel_size_nm=voxel, generator=old.generator or "import",
                      parameters={**(old.parameters or {}), "imported_from": str(src), "n_phases": n,
                                  "fractions_measured": fractions}, seed=old.seed, materials=materials)
    write_volume(dst, data, meta)
    return {"path": str(dst), "shape": list(data.shape), "n_phases": n, "fractions": fractions,
            "voxel_size_nm": voxel.model_dump()}


def phase_fractions(labels: np.ndarray, n: int | None = None) -> list[float]:
    """Volume fraction of each label 0..n-1 (``n`` default: max + 1)."""
    lab = np.asarray(labels)
    n = int(lab.max()) + 1 if n is None else int(n)
    return (np.bincount(lab.ravel().astype(np.int64), minlength=n)[:n] / max(lab.size, 1)).tolist()


__all__ = ["KINDS", "Multiphase", "MultiphaseConfig", "import_labels", "multiphase", "multiphase_config",
           "phase_fractions", "write_multiphase"]
