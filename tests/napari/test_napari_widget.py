"""The widget's work: a structure labels layer and a BSE image layer, on tiny volumes (no napari needed)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fibsynth.config import VoxelSize
from fibsynth.napari._widget import generate_and_simulate, generate_structure, simulate_image


def test_generate_and_simulate_monte_carlo():
    layers = generate_and_simulate(8, 24, 24, voxel_nm=5.0, solid_fraction=0.3, ligament_nm=30.0, seed=2,
                                   energy_kev=2.0, electrons_per_pixel=20, slice_index=3)
    (solid, skw, stype), (img, ikw, itype) = layers
    assert stype == "labels" and solid.shape == (8, 24, 24) and solid.dtype == np.uint8
    assert 0.15 < solid.mean() < 0.45
    assert skw["scale"] == (5.0, 5.0, 5.0)
    assert skw["metadata"]["fibsynth"]["generator"] == "lwm" and skw["metadata"]["fibsynth"]["seed"] == 2
    assert "wave_table" not in skw["metadata"]["fibsynth"]["parameters"]
    assert itype == "image" and img.shape == (1, 24, 24) and img.dtype == np.float32
    assert ikw["translate"] == (15.0, 0.0, 0.0)  # slice 3 at 5 nm
    meta = ikw["metadata"]["fibsynth"]
    assert meta["energy_kev"] == 2.0 and meta["generator"] == "montecarlo" and meta["parameters"]["slices"] == [3, 4]
    assert meta["offset_voxels"] == [3, 0, 0]  # the record carries the offset the translate comes from
    # gold backscatters more than epoxy: the image follows the structure's face
    face = solid[3].astype(bool)
    assert face.any() and (~face).any()
    assert img[0][face].mean() > img[0][~face].mean() + 0.05
    assert 0.0 <= img.min() and img.max() <= 1.0


def test_generate_is_deterministic_and_seeded():
    a, ma = generate_structure((6, 16, 16), 5.0, 0.3, 30.0, seed=1)
    b, _ = generate_structure((6, 16, 16), 5.0, 0.3, 30.0, seed=1)
    c, _ = generate_structure((6, 16, 16), 5.0, 0.3, 30.0, seed=2)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert ma.kind == "structure" and ma.voxel_size_nm == VoxelSize(x=5.0, y=5.0, z=5.0)


def test_structure_only_and_bad_slice():
    layers = generate_and_simulate(4, 12, 12, ligament_nm=25.0, simulate=False)
    assert [t for _, _, t in layers] == ["labels"]
    solid, _ = generate_structure((4, 12, 12), 5.0, 0.3, 25.0)
    with pytest.raises(Exception, match="slice index 4"):
        simulate_image(solid, VoxelSize(x=5.0, y=5.0, z=5.0), slice_index=4)


def test_fast_path_whole_stack():
    solid, meta = generate_structure((8, 32, 32), 5.0, 0.3, 30.0, seed=0)
    img, kw, t = simulate_image(solid, meta.voxel_size_nm, energy_kev=2.0, fast=True)
    assert t == "image" and img.shape == (8, 32, 32) and np.isfinite(img).all()
    assert kw["metadata"]["fibsynth"]["generator"] == "synth"
    # the fast path's default at 2 keV gold/epoxy: the paired translator (was the shipped CycleGAN before issue 15)
    assert kw["metadata"]["fibsynth"]["parameters"]["translator"] == "paired"
    assert img[solid.astype(bool)].mean() > img[~solid.astype(bool)].mean()


def test_widget_in_napari_offscreen(monkeypatch):
    """With napari installed: the magicgui widget runs headless and napari builds layers from what it returns.

    A ViewerModel (napari's viewer without the OpenGL canvas) takes the layers, so no GPU/GL is needed."""
    pytest.importorskip("napari.viewer", reason="napari not installed (pip install 'fibsynth[napari]')")
    pytest.importorskip("magicgui")
    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    from napari.components import ViewerModel
    from napari.layers import Image, Labels
    from qtpy.QtWidgets import QApplication

    from fibsynth.napari._widget import make_widget

    app = QApplication.instance() or QApplication([])  # noqa: F841
    w = make_widget()
    w.shape_z.value, w.shape_y.value, w.shape_x.value = 6, 16, 16
    w.ligament_nm.value, w.electrons_per_pixel.value, w.slice_index.value = 25.0, 10, 2
    layers = w()  # what pressing "Generate" does
    viewer = ViewerModel()
    for data, kwargs, layer_type in layers:
        viewer._add_layer_from_data(data, kwargs, layer_type)
    assert [layer.name for layer in viewer.layers] == ["structure seed 0", "Monte Carlo BSE 2 keV slice 2"]
    assert isinstance(viewer.layers[0], Labels) and isinstance(viewer.layers[1], Image)
    assert tuple(viewer.layers[0].scale) == (5.0, 5.0, 5.0)
    assert tuple(viewer.layers[1].translate) == (10.0, 0.0, 0.0)
    assert viewer.layers[1].metadata["fibsynth"]["energy_kev"] == 2.0
    w.close()
