"""The npe2 manifest: valid, its python_names import, and it declares what the plugin does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fibsynth.napari

npe2 = pytest.importorskip("npe2", reason="npe2 not installed (pip install npe2) - manifest not validated")

MANIFEST = Path(fibsynth.napari.__file__).with_name("napari.yaml")


def test_manifest_loads_and_imports():
    m = npe2.PluginManifest.from_file(MANIFEST)
    assert m.name == "fibsynth"
    m.validate_imports()  # every python_name resolves to a callable
    [reader] = m.contributions.readers
    assert set(reader.filename_patterns) == {"*.tif", "*.tiff", "*.zarr", "*.npy"}
    assert reader.accepts_directories
    assert sorted(tuple(w.layer_types) for w in m.contributions.writers) == [("image",), ("labels",)]
    assert len(m.contributions.widgets) == 1
    commands = {c.id: c.python_name for c in m.contributions.commands}
    assert commands[m.contributions.widgets[0].command] == "fibsynth.napari._widget:make_widget"


def test_npe2_validate_cli():
    exe = shutil.which("npe2", path=str(Path(sys.executable).parent)) or shutil.which("npe2")
    if exe is None:
        pytest.skip("npe2 command not on PATH")
    r = subprocess.run([exe, "validate", str(MANIFEST), "--imports"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid" in r.stdout


def test_napari_opens_and_saves_through_the_manifest(tmp_path, monkeypatch):
    """With napari installed: napari's own open/save, routed by the manifest to fibsynth's reader and writer."""
    pytest.importorskip("napari.components", reason="napari not installed (pip install 'fibsynth[napari]')")
    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    import numpy as np
    from napari.components import ViewerModel

    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, read_volume, write_volume

    pm = npe2.PluginManager.instance()
    registered = "fibsynth" not in pm._manifests  # installed with its entry point: already known
    if registered:
        pm.register(npe2.PluginManifest.from_file(MANIFEST))
    try:
        solid = (np.random.default_rng(1).random((4, 8, 8)) < 0.3).astype(np.uint8)
        src = write_volume(tmp_path / "in.tif", solid,
                           VolumeMeta(kind="structure", voxel_size_nm=VoxelSize(x=2.0, y=2.0, z=4.0), seed=5))
        viewer = ViewerModel()
        [layer] = viewer.open(str(src), plugin="fibsynth")
        assert type(layer).__name__ == "Labels" and tuple(layer.scale) == (4.0, 2.0, 2.0)
        assert layer.metadata["fibsynth"]["seed"] == 5
        out = viewer.layers.save(str(tmp_path / "out.zarr"), selected=False, plugin="fibsynth")
        assert out == [str(tmp_path / "out.zarr")]
        vol = read_volume(out[0])
        np.testing.assert_array_equal(np.asarray(vol.data), solid)
        assert vol.meta.seed == 5 and vol.meta.voxel_size_nm == VoxelSize(x=2.0, y=2.0, z=4.0)
    finally:
        if registered:
            pm.unregister("fibsynth")
