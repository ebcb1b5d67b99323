"""The fast path in one call (kept for callers of ``fibsynth.synth``): the library lives in the pipeline layer
(:func:`fibsynth.pipeline.fast_stack`), the ``fibsynth synth`` command in :mod:`fibsynth.pipeline.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.pipeline.products import fast_stack, shipped_model_for


def synthesize(structure: np.ndarray, voxel_zyx: Any, energy_kev: float, *, model: str | Path | None = None,
               incidence_deg: float = 38.0, solid: str = "gold", pore: str = "epoxy",
               seed: int = 0, translation: str = "best",
               electrons_per_pixel: int = 100) -> tuple[np.ndarray, np.ndarray, dict]:
    """(projection, translated stack, record) of a binary structure; see :func:`fibsynth.pipeline.fast_stack`
    (``translation``: ``best`` -- the paired translator where valid, else the shipped CycleGAN --, ``paired`` or
    ``gan``). ``voxel_zyx``: any voxel-size form :meth:`fibsynth.config.VoxelSize.coerce` accepts."""
    if translation not in ("best", "paired", "gan"):
        raise FibsynthError(f"must be best, paired or gan (got {translation!r})", param="translation")
    p = fast_stack(structure, voxel_zyx, energy_kev, model=model, incidence_deg=incidence_deg, solid=solid,
                   pore=pore, seed=seed, keep_projection=True, translation=translation,  # type: ignore[arg-type]
                   electrons_per_pixel=electrons_per_pixel)
    record = {k: p.record[k] for k in ("projection", "translation_model", "translation_seed")}
    return p.record["projection_product"].data, p.data, record


__all__ = ["shipped_model_for", "synthesize"]
