"""Writing generated structures and importing user-supplied binary volumes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fibsynth.errors import FibsynthError

#: bytes of memory per voxel when a structure is built in memory and written (the uint8 solid, a copy while the
#: writer prepares it, and the generator's per-row work arrays): the guard compares this with available memory
BYTES_PER_VOXEL_IN_MEMORY = 2


def write_structure(path: str | Path, model, chunks: tuple[int, int, int] | None = None, progress: bool = True, *,
                    scheduler=None, workers: int | None = None) -> Path:
    """Write a structure model (:class:`LeveledWave` or :class:`Hierarchical`) with its metadata.

    ``.zarr`` outputs are generated chunk by chunk (any size, bounded memory), optionally on dask.distributed
    workers (``scheduler`` address or Client, or ``workers`` local processes; see
    :func:`fibsynth.structure.chunked.write_chunked`); other formats (``.tif``, ``.npy``, slice folder) are
    generated in memory (as large as available memory allows: :func:`fibsynth.io.memory.check_memory`) and cannot
    use workers.
    """
    from fibsynth.distributed import check_options, wants_cluster
    from fibsynth.io import volume_format, write_volume
    from fibsynth.structure.chunked import write_chunked

    path = Path(path)
    fmt = volume_format(path)
    check_options(scheduler, workers)
    if fmt == "zarr":
        return write_chunked(path, model, chunks=chunks, progress=progress, scheduler=scheduler, workers=workers)
    if wants_cluster(scheduler, workers):
        raise FibsynthError(f"need a .zarr output (workers write their blocks into it); got a {fmt} output",
                            path, param=("scheduler", "workers"))
    check_structure_memory(model.shape, path)
    return write_volume(path, model.solid(), model.meta())


def check_structure_memory(shape, source=None) -> None:
    """One line, before any work, when a structure of ``shape`` cannot be built in memory (sized from the memory
    available now, not a fixed limit); the way out is a ``.zarr`` output, written chunk by chunk."""
    from fibsynth.io.memory import check_memory

    n = math.prod(int(v) for v in shape)
    check_memory(n * BYTES_PER_VOXEL_IN_MEMORY, f"building a {tuple(int(v) for v in shape)} structure in memory",
                 source, hint="use a .zarr output, which is written chunk by chunk")


def import_structure(
    src: str | Path, dst: str | Path, voxel_nm: float | None = None, slice_nm: float | None = None
) -> dict:
    """Validate a user binary volume ({0,1}, {0,255} or bool; TIFF, slice folder, Zarr, .npy) and
    rewrite it as a fibsynth structure (uint8 {0,1}, metadata with voxel size). The voxel size comes
    from ``voxel_nm``/``slice_nm`` when given, else from the file (:func:`fibsynth.io.resolve_voxel_size`)."""
    from fibsynth.io import VolumeMeta, read_structure, resolve_voxel_size, volume_format, write_volume

    src, dst = Path(src), Path(dst)
    volume_format(dst)  # fail early on a bad suffix, before reading a large input
    vol = read_structure(src)
    voxel = resolve_voxel_size(vol.meta.voxel_size_nm, voxel_nm, slice_nm, src)
    data = np.ascontiguousarray(vol.data, dtype=np.uint8)
    phi = float(data.mean())
    if phi in (0.0, 1.0):
        raise FibsynthError(f"volume is entirely {'solid' if phi == 1.0 else 'pore'}; not a two-phase structure", src)
    old = vol.meta
    meta = VolumeMeta(
        kind="structure",
        voxel_size_nm=voxel,
        generator=old.generator or "import",
        parameters={**(old.parameters or {}), "imported_from": str(src), "solid_fraction_measured": phi},
        seed=old.seed,
    )
    write_volume(dst, data, meta)
    return {"path": str(dst), "shape": list(data.shape), "solid_fraction": phi, "voxel_size_nm": voxel.model_dump()}
