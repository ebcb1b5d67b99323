"""Volume I/O: TIFF / ImageJ hyperstacks, folders of TIFF slices, (OME-)Zarr and .npy, with metadata."""

from fibsynth.io.metadata import VolumeMeta
from fibsynth.io.outputs import check_output, check_workdir, owner_problem
from fibsynth.io.volume import (
    Volume,
    as_binary,
    as_labels,
    atomic_path,
    check_volume,
    create_zarr,
    read_labels,
    read_structure,
    read_volume,
    resolve_voxel_size,
    volume_format,
    write_volume,
)

__all__ = [
    "Volume",
    "VolumeMeta",
    "as_binary",
    "as_labels",
    "atomic_path",
    "check_output",
    "check_volume",
    "check_workdir",
    "create_zarr",
    "owner_problem",
    "read_labels",
    "read_structure",
    "read_volume",
    "resolve_voxel_size",
    "volume_format",
    "write_volume",
]
