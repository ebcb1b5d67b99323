"""Leveled-wave method (LWM): Cahn's construction of bicontinuous spinodal-like structures.

A Gaussian-like random field is a superposition of ``N`` plane waves of one wavelength,

    f(x) = sqrt(2 / N) * sum_i cos(q_i . x + phi_i),   |q_i| = q0,

with directions uniform on the sphere and phases uniform in [0, 2 pi) (Cahn 1965; Soyarslan et al.,
Acta Mater. 149 (2018) 326). The solid is the level set ``f > xi``; for a Gaussian field
``xi = sqrt(2) * erfinv(1 - 2 * phi)`` gives solid fraction ``phi``. Positions ``x`` are physical
(nm) at voxel centres, ``x_k = (k + 1/2) * voxel``, so anisotropic voxels sample one isotropic
structure.

Implementation notes (see ``docs/structure.md``):

* **x-quantised wave numbers.** The x component of every wave vector is snapped to a multiple of
  ``delta = q0 / K`` (``K = X_PERIOD_WAVELENGTHS = 64``; the y and z components are rescaled so that
  ``|q_i| = q0`` stays exact). The field is then periodic along x with period ``K * 2 pi / q0``
  (64 wavelengths, about 170 ligament diameters) and, for each (z, y) row,
  ``f(x) = sum_{c=0..K} A_c cos(c delta x) + B_c sin(c delta x)``. A row costs ``N`` complex products
  plus ``2 (K + 1)`` multiply-adds per voxel instead of ``N`` cosines per voxel. The direction
  quantisation is 1/64 in ``cos(theta_x)``, far below the sampling noise of N random directions.
* **Determinism.** Every voxel's value is computed by the same scalar sequence of IEEE operations
  from its global integer index (numba, no fastmath, one row per thread), so a chunk computed alone is
  bitwise identical to the same region of the whole volume.
* **Level correction.** With finite N and a finite volume the realised field is not exactly the
  Gaussian whose quantile is ``xi``. The threshold is the ``(1 - phi)`` quantile of the realised
  field on a deterministic sub-lattice of the volume (every ``s``-th voxel along each axis, ``s`` the
  smallest stride giving at most ``2**22`` samples; ``s = 1``, i.e. the exact quantile, for volumes up to
  ~161^3). Chunked and in-memory generation use the same sample, hence the same threshold.
"""

from __future__ import annotations

import math
from typing import Literal

import numba
import numpy as np
from pydantic import Field, field_validator, model_validator

from fibsynth.config import StrictModel, VoxelSize
from fibsynth.errors import FibsynthError

X_PERIOD_WAVELENGTHS = 64
QUANTILE_MAX_SAMPLES = 2**22
DEFAULT_WAVES = 1000


# ------------------------------------------------------------------------------------------ config


class LWMConfig(StrictModel):
    """Inputs of a single-level leveled-wave structure."""

    shape: tuple[int, int, int] = Field(description="volume shape (z, y, x) in voxels")
    voxel_size: VoxelSize = Field(description="voxel size in nm (x = y = pixel size, z = slice thickness)")
    solid_fraction: float = Field(gt=0.0, lt=1.0, description="requested solid volume fraction")
    ligament_nm: float = Field(gt=0.0, le=1e7, description="mean ligament diameter (3D local thickness) in nm")
    waves: int = Field(DEFAULT_WAVES, ge=1, le=100_000, description="number of plane waves N")
    wave_set: Literal["independent", "mirrored"] = Field(
        "independent",
        description="'independent': N directions uniform on the sphere; 'mirrored': N/4 such directions, each with "
        "its mirror images in the x, y and z planes (N a multiple of 4; removes the wave set's net shear, "
        "see sample_waves)",
    )
    seed: int = Field(0, ge=0, description="random seed")

    @field_validator("shape")
    @classmethod
    def _shape_ok(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(int(s) < 1 for s in v):
            raise ValueError(f"every entry must be >= 1, got {tuple(v)}")
        if math.prod(v) > 2**44:
            raise ValueError(f"volume of {math.prod(v)} voxels is too large")
        return tuple(int(s) for s in v)  # type: ignore[return-value]

    @model_validator(mode="after")
    def _resolved(self) -> "LWMConfig":
        coarsest = max(self.voxel_size.zyx())
        if self.ligament_nm < 2.0 * coarsest:
            raise FibsynthError(
                f"{self.ligament_nm:g} nm is under 2 voxels (coarsest voxel edge {coarsest:g} nm); "
                "use a larger ligament or smaller voxels",
                param="ligament_nm",
            )
        if self.wave_set == "mirrored" and self.waves % 4:
            raise FibsynthError(
                f"a mirrored wave set needs a multiple of 4 waves (got {self.waves})", param="waves"
            )
        return self


# ------------------------------------------------------------------------------------------ waves


def wave_number(ligament_nm: float, solid_fraction: float) -> float:
    """Calibrated ``q0`` (rad/nm) that gives mean ligament diameter ``ligament_nm`` at ``solid_fraction``."""
    from fibsynth.structure.ligament_table import ligament_factor

    return 2.0 * math.pi * ligament_factor(solid_fraction) / ligament_nm


def sample_waves(n: int, q0: float, rng: np.random.Generator, wave_set: str = "independent") -> np.ndarray:
    """``n`` plane waves as an ``(n, 4)`` array of columns ``(q_z, q_y, q_x, phase)`` (rad/nm, rad).

    Directions are uniform on the sphere (normalised Gaussian vectors), phases uniform in
    ``[0, 2 pi)``. ``q_x`` is then snapped to a multiple of ``q0 / X_PERIOD_WAVELENGTHS`` and
    ``(q_z, q_y)`` rescaled so that ``|q| = q0`` exactly (see the module docstring).

    ``wave_set="mirrored"``: ``n / 4`` directions drawn as above, each followed by its mirror images in the
    x, y and z planes (``(-q_z, q_y, q_x)``, ``(q_z, -q_y, q_x)``, ``(q_z, q_y, -q_x)``; with ``q -> -q`` these are
    all eight sign patterns), every wave with its own phase. Each wave is still uniform on the sphere, but
    ``sum_i w_i q_a q_b = 0`` exactly for ``a != b`` and any weights that depend only on ``|q_z|, |q_y|, |q_x|``:
    the set has no net shear. A set of ``N`` independent directions has one of order ``1/sqrt(N)``: the
    realised structure is sheared as a whole (about 0.02 px per slice at 1000 waves, whatever the field of view),
    which a large isotropic structure does not do (docs/structure.md, "Net shear"). Axis-aligned statistics see
    only the ``n / 4`` distinct ``(|q_z|, |q_y|, |q_x|)``, so a mirrored set needs 4x the waves for the same
    e_TPCF (4000 for the 1000 directions of the default).
    """
    if wave_set not in ("independent", "mirrored"):
        raise FibsynthError(f"must be 'independent' or 'mirrored' (got {wave_set!r})", param="wave_set")
    if wave_set == "mirrored" and n % 4:
        raise FibsynthError(f"a mirrored wave set needs a multiple of 4 waves (got {n})", param="waves")
    m = n // 4 if wave_set == "mirrored" else n
    v = rng.standard_normal((m, 3))
    norm = np.linalg.norm(v, axis=1)
    norm[norm == 0] = 1.0
    v = v / norm[:, None]
    phase = rng.uniform(0.0, 2.0 * math.pi, n)
    k = X_PERIOD_WAVELENGTHS
    cx = np.rint(v[:, 2] * k)
    ux = cx / k
    perp = np.hypot(v[:, 0], v[:, 1])
    want = np.sqrt(np.maximum(0.0, 1.0 - ux**2))
    scale = np.where(perp > 0, want / np.where(perp > 0, perp, 1.0), 0.0)
    uz = v[:, 0] * scale
    uy = np.where(perp > 0, v[:, 1] * scale, want)
    q = np.column_stack([uz * q0, uy * q0, ux * q0])
    if wave_set == "mirrored":
        signs = np.array([[1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
        q = (q[:, None, :] * signs[None, :, :]).reshape(n, 3)
    return np.column_stack([q, phase])


# ------------------------------------------------------------------------------------------ kernel


@numba.njit(cache=True, parallel=True)
def _lwm_kernel(zc, yc, xc, waves, q0, kmax, threshold, want_field, out_field, out_solid):  # pragma: no cover - jit
    """Evaluate ``F = sum_i cos(q_i . x + phi_i)`` (unnormalised) at the tensor grid ``zc x yc x xc``
    (physical coordinates, nm). Writes ``F`` (float32) to ``out_field`` if ``want_field`` else
    ``F > threshold`` (uint8) to ``out_solid``. One (z, y) row per thread, fixed operation order."""
    nz = zc.shape[0]
    ny = yc.shape[0]
    nx = xc.shape[0]
    n = waves.shape[0]
    delta = q0 / kmax
    cabs = np.empty(n, np.int64)
    sgn = np.empty(n, np.float64)
    for i in range(n):
        c = int(np.rint(waves[i, 2] / delta))
        cabs[i] = abs(c)
        sgn[i] = 1.0 if c > 0 else (-1.0 if c < 0 else 0.0)
    # tables: exp(i (qz z + phase)) per slice, exp(i qy y) per row, cos/sin(c delta x) per column
    azr = np.empty((nz, n))
    azi = np.empty((nz, n))
    for a in numba.prange(nz):
        for i in range(n):
            t = waves[i, 0] * zc[a] + waves[i, 3]
            azr[a, i] = math.cos(t)
            azi[a, i] = math.sin(t)
    eyr = np.empty((ny, n))
    eyi = np.empty((ny, n))
    for b in numba.prange(ny):
        for i in range(n):
            t = waves[i, 1] * yc[b]
            eyr[b, i] = math.cos(t)
            eyi[b, i] = math.sin(t)
    cx = np.empty((kmax + 1, nx), np.float32)
    sx = np.empty((kmax + 1, nx), np.float32)
    for c in numba.prange(kmax + 1):
        for j in range(nx):
            t = (c * delta) * xc[j]
            cx[c, j] = math.cos(t)
            sx[c, j] = math.sin(t)
    thr = np.float32(threshold)
    for r in numba.prange(nz * ny):
        a = r // ny
        b = r % ny
        acc_a = np.zeros(kmax + 1)
        acc_b = np.zeros(kmax + 1)
        for i in range(n):
            er = eyr[b, i] * azr[a, i] - eyi[b, i] * azi[a, i]
            ei = eyr[b, i] * azi[a, i] + eyi[b, i] * azr[a, i]
            c = cabs[i]
            acc_a[c] += er
            acc_b[c] -= sgn[i] * ei
        row = np.zeros(nx, np.float32)
        for c in range(kmax + 1):
            ca = np.float32(acc_a[c])
            cb = np.float32(acc_b[c])
            for j in range(nx):
                row[j] += ca * cx[c, j] + cb * sx[c, j]
        if want_field:
            for j in range(nx):
                out_field[a, b, j] = row[j]
        else:
            for j in range(nx):
                out_solid[a, b, j] = 1 if row[j] > thr else 0


def _centres(start: int, stop: int, step: int, size_nm: float) -> np.ndarray:
    return (np.arange(start, stop, step, dtype=np.float64) + 0.5) * size_nm


def evaluate_field(
    waves: np.ndarray,
    q0: float,
    voxel_size: VoxelSize,
    region: tuple[slice, slice, slice],
) -> np.ndarray:
    """The normalised field ``f = sqrt(2/N) sum cos(q.x + phi)`` (float32) on ``region`` (global voxel
    index slices with start, stop and optional step)."""
    f = _raw(waves, q0, voxel_size, region, None)
    return f * np.float32(math.sqrt(2.0 / waves.shape[0]))


def _raw(waves, q0, voxel_size: VoxelSize, region, threshold: float | None) -> np.ndarray:
    vz, vy, vx = voxel_size.zyx()
    coords = [
        _centres(s.start or 0, s.stop, s.step or 1, v) for s, v in zip(region, (vz, vy, vx))
    ]
    shape = tuple(c.shape[0] for c in coords)
    waves = np.ascontiguousarray(waves, dtype=np.float64)
    if threshold is None:
        out_f = np.empty(shape, np.float32)
        out_s = np.empty((1, 1, 1), np.uint8)
        _lwm_kernel(coords[0], coords[1], coords[2], waves, float(q0), X_PERIOD_WAVELENGTHS, 0.0, True, out_f, out_s)
        return out_f
    out_f = np.empty((1, 1, 1), np.float32)
    out_s = np.empty(shape, np.uint8)
    _lwm_kernel(coords[0], coords[1], coords[2], waves, float(q0), X_PERIOD_WAVELENGTHS, float(threshold), False, out_f, out_s)
    return out_s


def quantile_stride(shape: tuple[int, int, int], max_samples: int | None = None) -> int:
    """Smallest stride ``s`` with at most ``max_samples`` points on the sub-lattice ``[::s, ::s, ::s]``."""
    max_samples = QUANTILE_MAX_SAMPLES if max_samples is None else max_samples
    s = 1
    while math.prod(-(-n // s) for n in shape) > max_samples:
        s += 1
    return s


def level_threshold(waves: np.ndarray, q0: float, voxel_size: VoxelSize, shape, solid_fraction: float) -> dict:
    """The level (in units of the unnormalised field) that leaves ``solid_fraction`` of the
    deterministic sub-lattice sample above it, plus the Gaussian reference ``xi``."""
    from scipy.special import erfinv

    s = quantile_stride(tuple(shape))
    region = tuple(slice(0, n, s) for n in shape)
    sample = _raw(waves, q0, voxel_size, region, None).ravel()
    t = float(np.quantile(sample.astype(np.float64), 1.0 - solid_fraction))
    norm = math.sqrt(2.0 / waves.shape[0])
    return {
        "threshold_raw": t,
        "xi_realised": t * norm,
        "xi_gaussian": float(math.sqrt(2.0) * erfinv(1.0 - 2.0 * solid_fraction)),
        "quantile_stride": s,
        "quantile_samples": int(sample.size),
    }


# ------------------------------------------------------------------------------------------ public API


class LeveledWave:
    """A fully specified leveled-wave structure: waves, ``q0`` and threshold. Evaluates any region."""

    def __init__(self, config: LWMConfig, rng: np.random.Generator | None = None, *, q0: float | None = None):
        self.config = config
        self.q0 = float(q0) if q0 is not None else wave_number(config.ligament_nm, config.solid_fraction)
        rng = rng if rng is not None else np.random.default_rng(config.seed)
        self.waves = sample_waves(config.waves, self.q0, rng, config.wave_set)
        self.level = level_threshold(self.waves, self.q0, config.voxel_size, config.shape, config.solid_fraction)

    @classmethod
    def with_wave_number(cls, config: LWMConfig, q0: float, rng: np.random.Generator | None = None) -> "LeveledWave":
        """A structure with an explicit wave number ``q0`` (rad/nm) instead of the calibrated one
        (``config.ligament_nm`` is then ignored; used by the calibration)."""
        return cls(config, rng, q0=q0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.config.shape

    def solid(self, region: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        """uint8 {0, 1} solid of ``region`` (default: the whole volume)."""
        region = region or tuple(slice(0, n) for n in self.shape)
        return _raw(self.waves, self.q0, self.config.voxel_size, region, self.level["threshold_raw"])

    def field(self, region: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        region = region or tuple(slice(0, n) for n in self.shape)
        return evaluate_field(self.waves, self.q0, self.config.voxel_size, region)

    def parameters(self, include_waves: bool = True) -> dict:
        c = self.config
        from fibsynth.structure.ligament_table import calibrated_range, ligament_factor

        p = {
            "method": "leveled-wave (Cahn 1965; Soyarslan et al. 2018)",
            "shape": list(c.shape),
            "solid_fraction": c.solid_fraction,
            "ligament_nm": c.ligament_nm,
            "waves": c.waves,
            "wave_set": c.wave_set,
            "q0_per_nm": self.q0,
            "wavelength_nm": 2 * math.pi / self.q0,
            "ligament_factor": ligament_factor(c.solid_fraction),
            "ligament_calibrated": calibrated_range()[0] <= c.solid_fraction <= calibrated_range()[1],
            "x_period_wavelengths": X_PERIOD_WAVELENGTHS,
            **self.level,
        }
        if include_waves:
            p["wave_columns"] = ["q_z_per_nm", "q_y_per_nm", "q_x_per_nm", "phase_rad"]
            p["wave_table"] = self.waves.tolist()
        return p

    def meta(self):
        from fibsynth.io import VolumeMeta

        return VolumeMeta(
            kind="structure",
            voxel_size_nm=self.config.voxel_size,
            generator="lwm",
            parameters=self.parameters(),
            seed=self.config.seed,
        )


def _voxel(voxel_size) -> VoxelSize:
    """A :class:`VoxelSize` from a number (isotropic nm), ``(z, y, x)`` nm, a mapping or a VoxelSize."""
    return VoxelSize.coerce(voxel_size, param="voxel_size")


def lwm_config(
    shape, voxel_size, solid_fraction: float, ligament_nm: float, waves: int = DEFAULT_WAVES, seed: int = 0,
    wave_set: str = "independent",
) -> LWMConfig:
    return LWMConfig.build(
        None,
        shape=tuple(shape),
        voxel_size=_voxel(voxel_size),
        solid_fraction=solid_fraction,
        ligament_nm=ligament_nm,
        waves=waves,
        seed=seed,
        wave_set=wave_set,
    )


def leveled_wave(
    shape,
    voxel_size,
    solid_fraction: float,
    ligament_nm: float,
    waves: int = DEFAULT_WAVES,
    seed: int = 0,
    *,
    wave_set: str = "independent",
    return_model: bool = False,
):
    """A binary (uint8, 1 = solid) leveled-wave structure held in memory.

    ``voxel_size``: a number (isotropic, nm), a :class:`VoxelSize` or ``(z, y, x)`` in nm.
    ``ligament_nm``: requested mean ligament diameter (volume-weighted mean 3D local thickness).
    ``wave_set``: ``"independent"`` (default) or ``"mirrored"`` (no net shear; see :func:`sample_waves`).
    With ``return_model=True`` returns ``(solid, LeveledWave)`` (waves, q0, threshold, metadata).
    """
    cfg = lwm_config(shape, voxel_size, solid_fraction, ligament_nm, waves, seed, wave_set)
    model = LeveledWave(cfg)
    solid = model.solid()
    return (solid, model) if return_model else solid
