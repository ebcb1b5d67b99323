"""napari reader: fibsynth volumes as layers, with the voxel size as the layer scale, the volume's offset
(``VolumeMeta.offset_voxels``) as its translate, and the metadata kept.

Pure functions returning napari's ``LayerData`` tuples ``(data, kwargs, layer_type)``; napari is not imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from fibsynth.io import Volume, VolumeMeta, read_volume

_FILE_SUFFIXES = (".tif", ".tiff", ".npy")
LayerData = tuple[Any, dict[str, Any], str]

#: layer metadata key holding fibsynth's :class:`~fibsynth.io.VolumeMeta` (as a JSON-compatible dict)
META_KEY = "fibsynth"


def _accepts(path: str | Path) -> bool:
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        if name.endswith(".zarr"):
            return True
        if p.suffix:  # some other kind of folder (e.g. a bundle)
            return False
        return any(f.suffix.lower() in (".tif", ".tiff") for f in p.iterdir() if not f.name.startswith("."))
    return name.endswith(_FILE_SUFFIXES) or name.endswith(".zarr")


def napari_get_reader(path: str | Path | list) -> Callable[[Any], list[LayerData]] | None:
    """npe2 ``get_reader`` hook: :func:`read_fibsynth` when every path is a volume fibsynth reads, else ``None``."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    if not paths or not all(_accepts(p) for p in paths):
        return None
    return read_fibsynth


def layer_type_for(meta: VolumeMeta, data: Any) -> str:
    """``labels`` for structures and label volumes (integer data), ``image`` otherwise."""
    if meta.kind in ("structure", "label") and (np.issubdtype(data.dtype, np.integer) or data.dtype == bool):
        return "labels"
    if meta.kind is None and data.dtype == bool:
        return "labels"
    return "image"


def layer_data(vol: Volume, name: str) -> LayerData:
    """One napari LayerData tuple for a fibsynth :class:`~fibsynth.io.Volume`."""
    kwargs: dict[str, Any] = {"name": name, "metadata": {META_KEY: vol.meta.model_dump(mode="json")}}
    if vol.meta.voxel_size_nm is not None:
        kwargs["scale"] = tuple(float(v) for v in vol.meta.voxel_size_nm.zyx())
    origin = vol.meta.origin_nm()
    if origin is not None and any(origin):  # a partial stack sits where it was cut from (e.g. slices k0:k1)
        kwargs["translate"] = origin
    return vol.data, kwargs, layer_type_for(vol.meta, vol.data)


def _layer_name(path: Path) -> str:
    name = path.name
    for suf in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif", ".tiff", ".tif", ".npy"):
        if name.lower().endswith(suf) and len(name) > len(suf):
            return name[: -len(suf)]
    return name


def read_fibsynth(path: str | Path | list) -> list[LayerData]:
    """Read one or more volumes; Zarr stores are opened lazily (dask), so volumes larger than memory open too."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    out = []
    for p in paths:
        p = Path(p)
        vol = read_volume(p, lazy=p.name.lower().endswith(".zarr"))
        out.append(layer_data(vol, _layer_name(p)))
    return out
