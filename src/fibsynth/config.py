"""Small typed configuration models shared by the stages, loadable from YAML."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fibsynth.errors import FibsynthError, pydantic_error_line

M = TypeVar("M", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for every fibsynth config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    @classmethod
    def build(cls: type[M], source: str | Path | None = None, **values: Any) -> M:
        """Validate ``values``; on failure raise a one-line :class:`FibsynthError`."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise pydantic_error_line(exc, source) from None

    @classmethod
    def from_yaml(cls: type[M], path: str | Path) -> M:
        path = Path(path)
        if not path.is_file():
            raise FibsynthError("file not found", path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise FibsynthError(f"not valid YAML ({str(exc).splitlines()[0]})", path) from None
        if not isinstance(data, dict):
            raise FibsynthError("expected a mapping of option names to values", path)
        data = {k.replace("-", "_"): v for k, v in data.items()}
        return cls.build(path, **data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


class VoxelSize(StrictModel):
    """Voxel size in nm. FIB-SEM voxels are anisotropic: x = y = pixel size, z = slice thickness."""

    x: float = Field(gt=0, le=1e6, description="pixel size along x in nm")
    y: float = Field(gt=0, le=1e6, description="pixel size along y in nm")
    z: float = Field(gt=0, le=1e6, description="slice thickness (milling direction) in nm")

    @classmethod
    def from_xy_z(cls, xy_nm: float, z_nm: float | None = None, source: str | None = None) -> "VoxelSize":
        """Square pixels of ``xy_nm`` and slices of ``z_nm`` (default: cubic voxels)."""
        if z_nm is None:
            z_nm = xy_nm
        for name, v in (("voxel_nm", xy_nm), ("slice_nm", z_nm)):
            _check_nm(v, name, source)
        return cls(x=float(xy_nm), y=float(xy_nm), z=float(z_nm))

    @classmethod
    def coerce(cls, value: Any, *, param: str = "voxel_size", source: str | Path | None = None) -> "VoxelSize":
        """The one voxel-size normaliser: a :class:`VoxelSize`, a number (cubic voxels, nm), a sequence
        ``(z, y, x)`` in nm (fibsynth's array order), or a mapping ``{"x": .., "y": .., "z": ..}`` (a dumped
        VoxelSize). Anything else, or a size that is not finite and in (0, 1e6] nm, is a :class:`FibsynthError`
        naming ``param``."""
        if isinstance(value, VoxelSize):
            return value
        if isinstance(value, bool) or value is None:
            raise FibsynthError(f"expected a voxel size in nm (a number, (z, y, x) or x/y/z), got {value!r}",
                                source, param=param)
        if isinstance(value, Mapping):
            try:
                zyx = tuple(value[k] for k in "zyx")
            except KeyError:
                raise FibsynthError(f"expected a mapping with x, y and z in nm, got {dict(value)!r}", source,
                                    param=param) from None
            if set(value) - set("xyz"):
                raise FibsynthError(f"unknown keys {sorted(set(value) - set('xyz'))} (expected x, y, z)", source,
                                    param=param)
        elif isinstance(value, numbers.Real) or (hasattr(value, "ndim") and getattr(value, "ndim") == 0):
            zyx = (value,) * 3
        else:
            try:
                zyx = tuple(value)
            except TypeError:
                raise FibsynthError(f"expected a voxel size in nm (a number, (z, y, x) or x/y/z), got {value!r}",
                                    source, param=param) from None
            if len(zyx) != 3:
                raise FibsynthError(f"expected three values (z, y, x) in nm, got {len(zyx)}: {value!r}", source,
                                    param=param)
        try:
            z, y, x = (float(v) for v in zyx)
        except (TypeError, ValueError):
            raise FibsynthError(f"voxel sizes must be numbers in nm, got {value!r}", source, param=param) from None
        named = isinstance(value, Mapping)  # a mapping names its axes: say which one is wrong
        for axis, v in zip("zyx", (z, y, x)):
            _check_nm(v, f"{param}.{axis}" if named else param, source)
        return cls(x=x, y=y, z=z)

    def zyx(self) -> tuple[float, float, float]:
        return (self.z, self.y, self.x)

    @property
    def isotropic(self) -> bool:
        return self.x == self.y == self.z


def _check_nm(v: Any, param: str, source: Any) -> None:
    try:
        ok = v > 0 and v <= 1e6 and math.isfinite(v)  # also catches NaN
    except TypeError:
        ok = False
    if not ok:
        raise FibsynthError(f"must be in (0, 1e6] nm (got {v})", source, param=param)
