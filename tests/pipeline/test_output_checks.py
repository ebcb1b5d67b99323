"""`synth` and `gan translate` check their output before any work: never their input, never a user's folder."""

from __future__ import annotations

import hashlib

import pytest

from fibsynth.cli import main


@pytest.fixture()
def structure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["structure", "lwm", "s.tif", "--shape", "4", "16", "16", "--voxel-nm", "5", "--solid-fraction", "0.3",
                 "--ligament-nm", "20", "--waves", "20"]) == 0
    return tmp_path / "s.tif"


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("argv", [
    ["synth", "s.tif", "s.tif", "--energy-kev", "2"],
    ["gan", "translate", "proj2mc-2kev-au-epoxy", "s.tif", "s.tif"],
])
def test_output_equal_to_input_is_refused(structure, capsys, argv):
    before = _digest(structure)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OUT: is also an input" in err[0]
    assert _digest(structure) == before


@pytest.mark.parametrize("argv", [
    ["synth", "s.tif", "mydata", "--energy-kev", "2"],
    ["gan", "translate", "proj2mc-2kev-au-epoxy", "s.tif", "mydata"],
])
def test_user_folder_is_never_replaced(structure, capsys, argv):
    folder = structure.parent / "mydata"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    capsys.readouterr()
    assert main(argv) == 2
    assert "did not write" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
