"""Metadata carried by every volume fibsynth writes."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from fibsynth.config import StrictModel, VoxelSize

Kind = Literal["structure", "image", "label"]


def _version() -> str:
    from fibsynth import __version__

    return __version__


class VolumeMeta(StrictModel):
    """What a volume is and how it was made.

    ``parameters`` holds the generator's own inputs (solid fraction, ligament size, beam energy,
    electrons per pixel, ...). ``energy_kev`` and ``materials`` are set on simulated images so that a
    stack can be traced to its beam conditions without knowing the generator.
    """

    kind: Kind | None = None
    voxel_size_nm: VoxelSize | None = None
    generator: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    energy_kev: float | None = None
    materials: dict[str, str] | None = None
    fibsynth_version: str = Field(default_factory=_version)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "VolumeMeta":
        data = json.loads(text)
        if "voxel_size_nm" in data and data["voxel_size_nm"] is not None:
            data["voxel_size_nm"] = VoxelSize(**data["voxel_size_nm"])
        # tolerate files written by newer versions: keep only the fields we know
        known = {k: v for k, v in data.items() if k in cls.model_fields}
        return cls(**known)

    def with_updates(self, **changes: Any) -> "VolumeMeta":
        """A copy with fields changed; the version is stamped anew (the writer is this version)."""
        data = self.model_dump()
        data.update(changes)
        data["fibsynth_version"] = _version()
        if isinstance(data.get("voxel_size_nm"), dict):
            data["voxel_size_nm"] = VoxelSize(**data["voxel_size_nm"])
        return VolumeMeta(**data)
