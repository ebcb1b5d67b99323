"""Chunk-by-chunk generation of structures larger than memory (dask graph -> OME-Zarr).

A leveled-wave structure is an analytic function of position, so any block can be computed on its
own from the wave table (N x 4 numbers), ``q0``, the voxel size and the level. The dask graph holds
that small *spec* once, under its own key; every block task refers to it by key, so only the wave
tables travel to the workers. Blocks are bitwise identical to the same region of the in-memory
result (see :mod:`fibsynth.structure.leveled_wave`).
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


def write_chunked(path: str | Path, model, chunks: tuple[int, int, int] | None = None, progress: bool = True) -> Path:
    """Write ``model``'s solid to a ``.zarr`` store chunk by chunk (bounded memory), atomically.

    Blocks are computed one after another (dask's synchronous scheduler); each block uses all
    cores through numba. The metadata (``model.meta()``) is written with the array.
    """
    import dask

    from fibsynth.io import write_volume

    shape = tuple(model.shape)
    chunks = tuple(int(c) for c in (chunks or default_chunks(shape)))
    arr = to_dask(model, chunks)
    n_blocks = math.prod(len(c) for c in arr.chunks)
    with dask.config.set(scheduler="synchronous"), _Progress(n_blocks, enabled=progress):
        return write_volume(path, arr, model.meta(), chunks=chunks)


class _Progress:
    """Rich progress bar fed by a dask callback (counts finished structure blocks)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total = total
        self.enabled = enabled and total > 1

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
        bar, task = self._bar, self._task

        class _CB(Callback):
            def _posttask(self, key, result, dsk, state, id):  # noqa: A002 - dask's signature
                if isinstance(key, tuple) and str(key[0]).startswith("fibsynth-structure-"):
                    bar.advance(task)

        self._cb = _CB()
        self._bar.start()
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._cb.__exit__(*exc)
            self._bar.stop()
        return False
