"""Small typed configuration models shared by the stages, loadable from YAML."""

from __future__ import annotations

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
        if z_nm is None:
            z_nm = xy_nm
        for name, v in (("--voxel-nm", xy_nm), ("--slice-nm", z_nm)):
            if not (v > 0 and v <= 1e6):  # also catches NaN
                raise FibsynthError(f"{name} must be in (0, 1e6] nm (got {v})", source)
        return cls(x=float(xy_nm), y=float(xy_nm), z=float(z_nm))

    def zyx(self) -> tuple[float, float, float]:
        return (self.z, self.y, self.x)

    @property
    def isotropic(self) -> bool:
        return self.x == self.y == self.z
