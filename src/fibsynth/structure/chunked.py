"""Chunk-by-chunk generation of structures larger than memory (dask graph -> OME-Zarr).

A leveled-wave structure is an analytic function of position, so any block can be computed on its
own from the wave table (N x 4 numbers), ``q0``, the voxel size and the level. The dask graph holds
that small *spec* once, under its own key; every block task refers to it by key, so only the wave
tables travel to the workers. Blocks are bitwise identical to the same region of the in-memory
result (see :mod:`fibsynth.structure.leveled_wave`).

:func:`write_chunked` computes the blocks in this process (dask's synchronous scheduler) or, with
``scheduler``/``workers``, as one dask.distributed task per chunk that writes its block into the store itself.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.io.volume import default_chunks


def _spec(model) -> tuple:
    """(waves, q0, voxel zyx, raw threshold) of one leveled-wave level."""
    return (model.waves, model.q0, model.config.voxel_size.zyx(), model.level["threshold_raw"])


def model_specs(model) -> tuple:
    """All levels of a structure model: one for :class:`LeveledWave`, two for :class:`Hierarchical`."""
    levels = getattr(model, "levels", None)
    return tuple(_spec(m) for m in levels) if levels is not None else (_spec(model),)


def solid_block(specs: tuple, region: tuple[tuple[int, int], ...]) -> np.ndarray:
    """uint8 solid of a block: the intersection (AND) of every level's ``field > level``."""
    from fibsynth.config import VoxelSize
    from fibsynth.structure.leveled_wave import _raw

    sl = tuple(slice(a, b) for a, b in region)
    out = None
    for waves, q0, (vz, vy, vx), thr in specs:
        s = _raw(waves, q0, VoxelSize(x=vx, y=vy, z=vz), sl, thr)
        out = s if out is None else np.logical_and(out, s, out=out.view(bool)).view(np.uint8)
    return out


def to_dask(model, chunks: tuple[int, int, int] | None = None):
    """A lazy dask array (uint8) of ``model``'s solid, one task per chunk."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    shape = tuple(model.shape)
    chunks = tuple(int(c) for c in (chunks or default_chunks(shape)))
    specs = model_specs(model)
    token = tokenize(specs, shape, chunks)
    name = f"fibsynth-structure-{token}"
    spec_key = f"fibsynth-structure-spec-{token}"
    bounds = [list(range(0, n, c)) + [n] for n, c in zip(shape, chunks)]
    dsk: dict[Any, Any] = {spec_key: specs}
    for idx in np.ndindex(*(len(b) - 1 for b in bounds)):
        region = tuple((bounds[d][i], bounds[d][i + 1]) for d, i in enumerate(idx))
        dsk[(name,) + tuple(idx)] = (solid_block, spec_key, region)
    chunk_tuple = tuple(tuple(np.diff(b).tolist()) for b in bounds)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return da.Array(graph, name, chunks=chunk_tuple, dtype=np.uint8)


def _regions(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[tuple[tuple[int, int], ...]]:
    """The chunk-aligned blocks of ``shape`` in C order, as ((z0, z1), (y0, y1), (x0, x1))."""
    bounds = [list(range(0, n, c)) + [n] for n, c in zip(shape, chunks)]
    return [tuple((bounds[d][i], bounds[d][i + 1]) for d, i in enumerate(idx))
            for idx in np.ndindex(*(len(b) - 1 for b in bounds))]


def _write_block(specs: tuple, array_path: str, region: tuple[tuple[int, int], ...]) -> int:
    """Runs on a dask worker: compute one chunk-aligned block and write it straight into the Zarr array.

    Returns the number of solid voxels (a few bytes back to the client; the block itself never leaves the worker).
    """
    import zarr

    block = solid_block(specs, region)
    zarr.open_array(array_path, mode="r+")[tuple(slice(a, b) for a, b in region)] = block
    return int(np.count_nonzero(block))


def write_chunked(path: str | Path, model, chunks: tuple[int, int, int] | None = None, progress: bool = True, *,
                  scheduler: Any = None, workers: int | None = None) -> Path:
    """Write ``model``'s solid to a ``.zarr`` store chunk by chunk (bounded memory), atomically.

    Without ``scheduler``/``workers`` blocks are computed one after another (dask's synchronous scheduler); each
    block uses all cores through numba. With ``scheduler`` (a dask scheduler address or a Client) or ``workers``
    (a local cluster of that many processes, see :func:`fibsynth.distributed.dask_client`) every chunk is one
    task: the worker computes it from the small model spec (wave tables, scattered once) and writes it into the
    store itself, so only the spec and a voxel count per block go through dask. The store is bitwise the same
    either way. The metadata (``model.meta()``) is written with the array.
    """
    from fibsynth.distributed import check_options, wants_cluster

    check_options(scheduler, workers)
    shape = tuple(model.shape)
    chunks = tuple(int(c) for c in (chunks or default_chunks(shape)))
    if wants_cluster(scheduler, workers):
        return _write_distributed(Path(path), model, chunks, progress, scheduler, workers)
    import dask

    from fibsynth.io import write_volume

    arr = to_dask(model, chunks)
    n_blocks = math.prod(len(c) for c in arr.chunks)
    with dask.config.set(scheduler="synchronous"), _Progress(n_blocks, enabled=progress, dask_callback=True):
        return write_volume(path, arr, model.meta(), chunks=chunks)


def _write_distributed(path: Path, model, chunks: tuple[int, ...], progress: bool, scheduler: Any,
                       workers: int | None) -> Path:
    from fibsynth.distributed import dask_client
    from fibsynth.errors import FibsynthError
    from fibsynth.io import atomic_path, create_zarr, volume_format

    if volume_format(path) != "zarr":
        raise FibsynthError("need a .zarr output (workers write their blocks into it)", path, param=("scheduler", "workers"))
    shape = tuple(model.shape)
    regions = _regions(shape, chunks)
    specs = model_specs(model)
    meta = model.meta().with_updates()  # as write_volume does: the writer's version is stamped
    with atomic_path(path) as tmp:
        create_zarr(tmp, shape, np.uint8, meta, chunks=chunks)
        array_path = str((tmp / "0").resolve())  # absolute: workers of a remote cluster have their own cwd
        with dask_client(scheduler, workers) as client, _Progress(len(regions), enabled=progress) as bar:
            from distributed import as_completed

            [fspecs] = client.scatter([specs], broadcast=True)
            futs = [client.submit(_write_block, fspecs, array_path, r, pure=False) for r in regions]
            try:
                for fut in as_completed(futs):
                    fut.result()
                    bar.advance()
            finally:
                client.cancel(futs)  # after an error: no worker keeps writing into the discarded store
    return path


class _Progress:
    """Rich progress bar of finished structure blocks: fed by a dask callback (``dask_callback=True``, local
    schedulers) or by :meth:`advance` (distributed futures)."""

    def __init__(self, total: int, enabled: bool = True, dask_callback: bool = False):
        self.total = total
        self.enabled = enabled and total > 1
        self.dask_callback = dask_callback

    def advance(self) -> None:
        if self.enabled:
            self._bar.advance(self._task)

    def __enter__(self):
        if not self.enabled:
            return self
        from dask.callbacks import Callback
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        import sys

        from rich.console import Console

        self._bar = Progress(
            TextColumn("structure blocks"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._task = self._bar.add_task("blocks", total=self.total)
        self._bar.start()
        if not self.dask_callback:
            return self
        bar, task = self._bar, self._task

        class _CB(Callback):
            def _posttask(self, key, result, dsk, state, id):  # noqa: A002 - dask's signature
                if isinstance(key, tuple) and str(key[0]).startswith("fibsynth-structure-"):
                    bar.advance(task)

        self._cb = _CB()
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            if self.dask_callback:
                self._cb.__exit__(*exc)
            self._bar.stop()
        return False
