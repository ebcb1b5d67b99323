"""napari writers: an image or labels layer saved with :func:`fibsynth.io.write_volume`.

npe2 single-layer writer signature ``(path, data, attributes) -> [paths written]``; ``attributes`` is the layer's
state (``scale``, ``translate``, ``metadata``, ``name``, ...). The voxel size is the layer's scale (nm, z y x), its
offset in voxels the translate divided by the scale, and fibsynth's
metadata comes back from ``attributes["metadata"]["fibsynth"]`` when the layer was read by fibsynth. napari is not
imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, write_volume
from fibsynth.napari._reader import META_KEY


def _voxel_from_scale(scale: Any, previous: VoxelSize | None) -> VoxelSize | None:
    """Voxel size from a napari scale (z, y, x) or (y, x). napari's default scale of all ones on a layer without
    fibsynth metadata means 'unknown', so no voxel size is written; otherwise the scale wins (the user may have
    changed it in the viewer)."""
    if scale is None:
        return previous
    s = [float(v) for v in scale]
    if len(s) not in (2, 3):
        raise FibsynthError(f"expected a 2D or 3D layer, got scale of {len(s)} dimensions")
    if previous is None and all(v == 1.0 for v in s):
        return None
    if len(s) == 2:
        z = previous.z if previous is not None else s[0]
        s = [z, *s]
    return VoxelSize.coerce(s, param="scale")


def _offset_from_translate(translate: Any, voxel: VoxelSize | None, previous: tuple | None) -> tuple | None:
    """Offset in whole voxels from a napari translate (nm, z y x or y x); the translate wins over the stored
    offset (the user may have moved the layer). A translate that is not whole voxels keeps the stored offset."""
    if translate is None or voxel is None:
        return previous
    t = [float(v) for v in translate]
    if len(t) == 2:
        t = [previous[0] * voxel.z if previous else 0.0, *t]
    if len(t) != 3:
        return previous
    off = [v / s for v, s in zip(t, voxel.zyx())]
    if any(abs(o - round(o)) > 1e-6 for o in off):
        return previous
    off_i = tuple(int(round(o)) for o in off)
    return None if previous is None and not any(off_i) else off_i


def _meta(attributes: dict, kind: str) -> VolumeMeta:
    raw = (attributes.get("metadata") or {}).get(META_KEY)
    if isinstance(raw, VolumeMeta):
        meta = raw
    elif isinstance(raw, dict):
        meta = VolumeMeta.model_validate({k: v for k, v in raw.items() if k in VolumeMeta.model_fields})
    else:
        meta = VolumeMeta(generator="napari", parameters={"layer_name": attributes.get("name")})
    voxel = _voxel_from_scale(attributes.get("scale"), meta.voxel_size_nm)
    offset = _offset_from_translate(attributes.get("translate"), voxel, meta.offset_voxels)
    return meta.model_copy(update={"voxel_size_nm": voxel, "kind": meta.kind or kind, "offset_voxels": offset})


def _labels_dtype(data: Any) -> Any:
    """napari labels are often int32/int64; fibsynth writes uint8/uint16/uint32 (the smallest that fits)."""
    if data.dtype in (np.uint8, np.uint16, np.uint32) or data.dtype == bool:
        return data
    lo, hi = int(data.min()), int(data.max())
    if lo < 0:
        raise FibsynthError(f"labels with negative values ({lo}) cannot be written")
    for t in (np.uint8, np.uint16, np.uint32):
        if hi <= np.iinfo(t).max:
            return data.astype(t)
    raise FibsynthError(f"label value {hi} does not fit in uint32")


def write_image(path: str, data: Any, attributes: dict) -> list[str]:
    """Write an image layer (2D or 3D, single channel)."""
    if attributes.get("rgb"):
        raise FibsynthError("RGB layers are not fibsynth volumes; convert to a single channel first")
    out = write_volume(path, data, _meta(attributes, "image"))
    return [str(out)]


def write_labels(path: str, data: Any, attributes: dict) -> list[str]:
    """Write a labels layer: kind ``structure`` when binary {0, 1} (and no kind is known), else ``label``."""
    data = _labels_dtype(data)
    kind = "structure" if set(np.unique(np.asarray(data)).tolist()) <= {0, 1} else "label"
    out = write_volume(path, data, _meta(attributes, kind))
    return [str(out)]


__all__ = ["write_image", "write_labels"]
