"""napari widget: generate a leveled-wave structure and simulate the BSE image of a slice.

The work is done by plain functions returning napari LayerData tuples (:func:`generate_structure`,
:func:`simulate_image`, :func:`generate_and_simulate`), usable and testable without napari; :func:`make_widget`
wraps :func:`generate_and_simulate` in a magicgui function widget and imports magicgui only when called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import Volume, VolumeMeta
from fibsynth.napari._reader import LayerData, layer_data


def generate_structure(
    shape: tuple[int, int, int] = (32, 64, 64),
    voxel_nm: float = 5.0,
    solid_fraction: float = 0.3,
    ligament_nm: float = 40.0,
    seed: int = 0,
) -> tuple[np.ndarray, VolumeMeta]:
    """A leveled-wave structure (uint8, 1 = gold) and its metadata (:func:`fibsynth.pipeline.make_structure`)."""
    from fibsynth.pipeline import make_structure

    prod = make_structure(shape, float(voxel_nm), solid_fraction=solid_fraction, ligament_nm=ligament_nm,
                          seed=int(seed))
    # the wave table (1000 x 4 floats) is kept in files, but it is bulky in a layer's metadata panel
    params = {k: v for k, v in prod.meta.parameters.items() if k not in ("wave_table", "wave_columns")}
    return prod.data, prod.meta.model_copy(update={"parameters": params})


def simulate_image(
    solid: np.ndarray,
    voxel: VoxelSize,
    *,
    energy_kev: float = 2.0,
    electrons_per_pixel: int = 50,
    slice_index: int | None = None,
    fast: bool = False,
    seed: int = 0,
) -> LayerData:
    """BSE image of a structure as an image LayerData.

    Monte Carlo (default): slice ``slice_index`` (default the middle one), a one-slice layer whose metadata carries
    its offset, so that the reader places it at that slice's depth (``translate``) over the structure.
    ``fast=True``: the whole stack by the fast path (:func:`fibsynth.pipeline.fast_stack`: projection + the paired
    translator, shot noise at ``electrons_per_pixel``, for gold/epoxy at 1-4 keV; elsewhere the shipped CycleGAN,
    which must exist for ``energy_kev``).
    """
    from fibsynth.pipeline import fast_stack, montecarlo_stack

    nz = solid.shape[0]
    if fast:
        prod = fast_stack(solid, voxel, energy_kev, seed=seed, electrons_per_pixel=int(electrons_per_pixel))
        data, kwargs, _ = layer_data(Volume(prod.data, prod.meta), f"fast BSE {energy_kev:g} keV")
        return data, {**kwargs, "colormap": "gray"}, "image"
    k = nz // 2 if slice_index is None else int(slice_index)
    if not 0 <= k < nz:
        raise FibsynthError(f"slice index {k} outside the structure's 0..{nz - 1}", param="slice_index")
    prod = montecarlo_stack(solid, voxel, slices=(k, k + 1), energy_kev=energy_kev,
                            electrons_per_pixel=int(electrons_per_pixel), seed=int(seed))
    data, kwargs, _ = layer_data(Volume(prod.data, prod.meta), f"Monte Carlo BSE {energy_kev:g} keV slice {k}")
    kwargs.setdefault("translate", (0.0, 0.0, 0.0))
    kwargs["colormap"] = "gray"
    return data, kwargs, "image"


def generate_and_simulate(
    shape_z: int = 32,
    shape_y: int = 64,
    shape_x: int = 64,
    voxel_nm: float = 5.0,
    solid_fraction: float = 0.3,
    ligament_nm: float = 40.0,
    seed: int = 0,
    simulate: bool = True,
    energy_kev: float = 2.0,
    electrons_per_pixel: int = 50,
    slice_index: int = 16,
    fast: bool = False,
) -> list[LayerData]:
    """What the widget does: a labels layer with the structure, and (``simulate``) an image layer with its BSE
    image. Small defaults: a 32 x 64 x 64 structure and one Monte Carlo slice take seconds."""
    solid, meta = generate_structure((shape_z, shape_y, shape_x), voxel_nm, solid_fraction, ligament_nm, seed)
    layers = [layer_data(Volume(solid, meta), f"structure seed {seed}")]
    if simulate:
        layers.append(simulate_image(solid, meta.voxel_size_nm, energy_kev=energy_kev,
                                     electrons_per_pixel=electrons_per_pixel, slice_index=slice_index,
                                     fast=fast, seed=seed))
    return layers


def make_widget() -> Any:
    """The magicgui function widget napari docks (npe2 widget command)."""
    from magicgui import magicgui

    def fibsynth_generate(
        shape_z: int = 32,
        shape_y: int = 64,
        shape_x: int = 64,
        voxel_nm: float = 5.0,
        solid_fraction: float = 0.3,
        ligament_nm: float = 40.0,
        seed: int = 0,
        simulate: bool = True,
        energy_kev: float = 2.0,
        electrons_per_pixel: int = 50,
        slice_index: int = 16,
        fast: bool = False,
    ) -> "list[napari.types.LayerDataTuple]":  # noqa: F821  (resolved by magicgui when napari runs it)
        return generate_and_simulate(shape_z, shape_y, shape_x, voxel_nm, solid_fraction, ligament_nm, seed,
                                     simulate, energy_kev, electrons_per_pixel, slice_index, fast)

    return magicgui(
        fibsynth_generate,
        call_button="Generate",
        shape_z={"label": "slices (z)", "min": 2, "max": 2048},
        shape_y={"label": "height (y)", "min": 2, "max": 4096},
        shape_x={"label": "width (x)", "min": 2, "max": 4096},
        voxel_nm={"label": "voxel (nm)", "min": 0.1, "max": 1000.0, "step": 0.5},
        solid_fraction={"label": "solid fraction", "min": 0.05, "max": 0.95, "step": 0.01},
        ligament_nm={"label": "ligament (nm)", "min": 1.0, "max": 10000.0, "step": 1.0},
        seed={"min": 0, "max": 2**31 - 1},
        simulate={"label": "simulate BSE image"},
        energy_kev={"label": "energy (keV)", "min": 0.2, "max": 30.0, "step": 0.5},
        electrons_per_pixel={"label": "electrons / pixel", "min": 1, "max": 100000},
        slice_index={"label": "slice (Monte Carlo)", "min": 0, "max": 2047},
        fast={"label": "fast (projection + CycleGAN, all slices)"},
    )
