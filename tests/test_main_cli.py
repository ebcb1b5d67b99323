"""The CLI shell: one-line errors with exit status 2, no tracebacks, JSON-only stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, write_volume


def test_version_and_help(capsys) -> None:
    assert main(["--version"]) == 0
    assert "fibsynth" in capsys.readouterr().out
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for group in ("structure", "mc", "evaluate", "isotropy"):
        assert group in out


def test_usage_errors_are_one_line(capsys) -> None:
    assert main(["info", "--bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fibsynth: error:") and "--bogus" in err[0]
    assert main(["nosuchcommand"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_missing_file_one_line(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "missing.tif"
    assert main(["info", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"fibsynth: error: {missing}: file not found"


def test_info_shows_metadata(capsys, tmp_path: Path) -> None:
    p = tmp_path / "a.tif"
    write_volume(p, np.zeros((2, 3, 4), np.uint8), VolumeMeta(kind="structure", voxel_size_nm=VoxelSize(x=1, y=1, z=2), seed=7))
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "(2, 3, 4)" in out and '"seed": 7' in out


def test_input_note_is_one_line(capsys, tmp_path: Path) -> None:
    """How an input was interpreted (here: an ImageJ file whose slices are labelled channels) is one line."""
    import tifffile

    p = tmp_path / "ij.tif"
    tifffile.imwrite(p, np.zeros((3, 4, 5), np.uint8), imagej=True)
    assert main(["info", str(p)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fibsynth: note: ij.tif: the ImageJ file labels its 3 images as channels; read as 3 slices (z)"]


def test_console_script_has_no_traceback(tmp_path: Path) -> None:
    """The installed entry point (a real subprocess) prints no traceback for a user mistake."""
    proc = subprocess.run(
        [sys.executable, "-m", "fibsynth.cli", "info", str(tmp_path / "nope.zarr")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("file not found")
    assert proc.stdout == ""
