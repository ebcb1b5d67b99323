"""What a step's folder holds and how steps read and write it (``volume.npy``, ``labels.npy``, ``model``,
``metrics.json``). Kept apart from :mod:`fibsynth.experiment.steps` so that report code can read step outputs
without importing the steps (which would import the report back).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, read_volume, write_volume

VOLUME, LABELS, MODEL, METRICS = "volume.npy", "labels.npy", "model", "metrics.json"
PROJECTION = "projection.npy"  # a fast step's projection, before translation


def load(d: Path) -> tuple[np.ndarray, VolumeMeta]:
    if not (d / VOLUME).exists():
        raise FibsynthError(f"step output has no volume ({VOLUME})", d)
    v = read_volume(d / VOLUME)
    return np.asarray(v.data), v.meta


def load_labels(d: Path) -> np.ndarray | None:
    return np.asarray(read_volume(d / LABELS).data) if (d / LABELS).exists() else None


def voxel_of(meta: VolumeMeta, where: Path) -> VoxelSize:
    if meta.voxel_size_nm is None:
        raise FibsynthError("volume carries no voxel size", where)
    return meta.voxel_size_nm


def save(out: Path, data: np.ndarray, meta: VolumeMeta, labels: np.ndarray | None = None) -> None:
    from fibsynth.pipeline import label_meta

    write_volume(out / VOLUME, data, meta)
    if labels is not None:
        write_volume(out / LABELS, np.asarray(labels, np.uint8), label_meta(meta))
