"""The npe2 manifest: valid, its python_names import, and it declares what the plugin does."""

from __future__ import annotations

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
