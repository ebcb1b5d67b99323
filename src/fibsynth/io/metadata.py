"""Metadata carried by every volume fibsynth writes."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, field_validator

from fibsynth.config import StrictModel, VoxelSize

Kind = Literal["structure", "image", "label"]


class Generator:
    """``VolumeMeta.generator`` of each product that is not a structure (structures carry their generator's name,
    ``lwm`` or ``hierarchical``): one label per product, wherever it is made (see :mod:`fibsynth.pipeline`)."""

    MONTECARLO = "montecarlo"
    PROJECTION = "projection"
    FAST = "synth"  # projection + CycleGAN
    ADAPTED = "cyclegan"  # a stack translated by a CycleGAN
    SEGMENTATION = "segmentation"
    BASELINE = "baseline"  # a global threshold (Otsu, k-means)
    GROUND_TRUTH = "ground truth"


def _version() -> str:
    from fibsynth import __version__

    return __version__


class VolumeMeta(StrictModel):
    """What a volume is and how it was made.

    ``parameters`` holds the generator's own inputs (solid fraction, ligament size, beam energy,
    electrons per pixel, ...). ``energy_kev`` and ``materials`` are set on simulated images so that a
    stack can be traced to its beam conditions without knowing the generator.

    ``offset_voxels`` places a volume inside the one it was made from: a partial Monte Carlo stack of slices
    ``k0:k1`` of a structure carries ``(k0, 0, 0)``, so that it overlays slices ``k0..k1-1`` of the structure.
    Readers and writers carry it as napari's ``translate`` and OME-Zarr's ``translation`` (both in nm:
    :meth:`origin_nm`). ``None`` (older files, whole volumes) means no offset.
    """

    kind: Kind | None = None
    voxel_size_nm: VoxelSize | None = None
    generator: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    energy_kev: float | None = None
    materials: dict[str, str] | None = None
    offset_voxels: tuple[int, int, int] | None = None
    fibsynth_version: str = Field(default_factory=_version)

    @field_validator("voxel_size_nm", mode="before")
    @classmethod
    def _one_voxel_form(cls, v: Any) -> Any:
        return None if v is None else VoxelSize.coerce(v, param="voxel_size_nm")

    def origin_nm(self) -> tuple[float, float, float] | None:
        """Position of voxel (0, 0, 0) in the parent volume's frame, (z, y, x) in nm; ``None`` without an offset
        or a voxel size."""
        if self.offset_voxels is None or self.voxel_size_nm is None:
            return None
        return tuple(float(o) * s for o, s in zip(self.offset_voxels, self.voxel_size_nm.zyx()))  # type: ignore

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "VolumeMeta":
        data = json.loads(text)
        if "voxel_size_nm" in data and data["voxel_size_nm"] is not None:
            data["voxel_size_nm"] = VoxelSize.coerce(data["voxel_size_nm"], param="voxel_size_nm")
        # tolerate files written by newer versions: keep only the fields we know
        known = {k: v for k, v in data.items() if k in cls.model_fields}
        return cls(**known)

    def with_updates(self, **changes: Any) -> "VolumeMeta":
        """A copy with fields changed; the version is stamped anew (the writer is this version)."""
        data = self.model_dump()
        data.update(changes)
        data["fibsynth_version"] = _version()
        if data.get("voxel_size_nm") is not None:
            data["voxel_size_nm"] = VoxelSize.coerce(data["voxel_size_nm"], param="voxel_size_nm")
        return VolumeMeta(**data)
