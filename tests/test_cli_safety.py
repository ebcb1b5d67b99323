"""Issue 12, as a careless or hostile user: no data lost, no silent wrong answer, one line instead of a traceback.

Each case runs ``fibsynth.cli.main`` in-process on tiny volumes and checks the exit status, that stderr is exactly
one ``fibsynth: ...`` line (no traceback, no library warnings), and that the files the user had are untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, write_volume

VOX = VoxelSize(x=10.0, y=10.0, z=10.0)


def _digest(path: Path) -> str:
    """Content of a file or a whole folder (names and bytes)."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode())
            if p.is_file():
                h.update(p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture()
def ws(tmp_path, monkeypatch):
    """A work folder with a structure, an image stack, foreign data and a model-like folder."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    solid = (rng.random((6, 16, 16)) < 0.4).astype(np.uint8)
    write_volume(tmp_path / "s.tif", solid, VolumeMeta(kind="structure", voxel_size_nm=VOX))
    img = rng.random((6, 16, 16)).astype(np.float32)
    write_volume(tmp_path / "img.tif", img, VolumeMeta(kind="image", voxel_size_nm=VOX))
    write_volume(tmp_path / "p.tif", solid, VolumeMeta(kind="label", voxel_size_nm=VOX))
    tifffile.imwrite(tmp_path / "foreign.tif", (img * 1000).astype(np.uint16))  # a microscope's TIFF
    mydata = tmp_path / "mydata"
    mydata.mkdir()
    (mydata / "notes.txt").write_text("precious\n")
    write_volume(mydata / "img.tif", img, VolumeMeta(kind="image", voxel_size_nm=VOX))
    model = tmp_path / "M"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.pt").write_bytes(b"weights")
    (tmp_path / "d.tif").mkdir()
    (tmp_path / "d.tif" / "keep.txt").write_text("keep")
    (tmp_path / "precious.txt").write_text("not a csv\n")
    (tmp_path / "other.csv").write_text("a,b\n1,2")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (tmp_path / "afile").write_text("i am a file")
    return tmp_path


# name, argv, expected exit status, text expected in the one stderr line, paths that must stay unchanged
CASES = [
    # ------------------------------------------------------------------ data lost: existing folders / foreign files
    ("baseline into a folder holding its input", ["segment", "baseline", "mydata/img.tif", "mydata"], 2,
     "holds the input", ["mydata"]),
    ("baseline into a folder of user files", ["segment", "baseline", "img.tif", "mydata"], 2,
     "fibsynth did not write", ["mydata"]),
    ("baseline into a folder named d.tif", ["segment", "baseline", "img.tif", "d.tif"], 2, "existing folder", ["d.tif"]),
    ("baseline over a microscope TIFF", ["segment", "baseline", "img.tif", "foreign.tif"], 2,
     "TIFF that fibsynth did not write", ["foreign.tif"]),
    ("baseline output = input", ["segment", "baseline", "img.tif", "img.tif"], 2, "is also an input", ["img.tif"]),
    ("predict into the model folder", ["segment", "predict", "M", "img.tif", "M"], 2, "is also an input", ["M"]),
    ("predict into the input", ["segment", "predict", "M", "img.tif", "img.tif"], 2, "is also an input", ["img.tif"]),
    ("predict into the model folder's file", ["segment", "predict", "M", "img.tif", "M/out.tif"], 2,
     "inside the input folder", ["M"]),
    ("score --markdown over a prediction", ["segment", "score", "p.tif", "--truth", "s.tif", "--markdown", "p.tif"], 2,
     "--markdown", ["p.tif"]),
    ("score --csv over the truth", ["segment", "score", "p.tif", "--truth", "s.tif", "--csv", "s.tif"], 2,
     "--csv", ["s.tif"]),
    ("score --markdown into a folder", ["segment", "score", "p.tif", "--truth", "s.tif", "--markdown", "mydata"], 2,
     "--markdown", ["mydata"]),
    ("train into an input file", ["segment", "train", "--images", "img.tif", "--labels", "p.tif", "--mode", "2d",
                                  "--out", "p.tif"], 2, "is also an input", ["p.tif"]),
    ("train into an existing file", ["segment", "train", "--images", "img.tif", "--labels", "p.tif", "--mode", "2d",
                                     "--out", "afile"], 2, "existing file", ["afile"]),
    ("project output = input", ["fast", "project", "s.tif", "s.tif", "--energy-kev", "2"], 2, "is also an input",
     ["s.tif"]),
    ("project into a user folder", ["fast", "project", "s.tif", "mydata", "--energy-kev", "2"], 2,
     "fibsynth did not write", ["mydata"]),
    ("project suffix checked before work", ["fast", "project", "s.tif", "out.bmp", "--energy-kev", "2"], 2,
     "unknown suffix", []),
    ("structure lwm into a user folder", ["structure", "lwm", "mydata", "--shape", "8", "8", "8", "--voxel-nm", "10",
                                          "--solid-fraction", "0.4", "--ligament-nm", "40"], 2,
     "fibsynth did not write", ["mydata"]),
    ("structure lwm over a microscope TIFF", ["structure", "lwm", "foreign.tif", "--shape", "8", "8", "8",
                                              "--voxel-nm", "10", "--solid-fraction", "0.4", "--ligament-nm", "40"], 2,
     "did not write", ["foreign.tif"]),
    ("structure import output = input", ["structure", "import", "s.tif", "s.tif"], 2, "is also an input", ["s.tif"]),
    ("structure lwm into a file's 'folder'", ["structure", "lwm", "afile/x.tif", "--shape", "8", "8", "8",
                                              "--voxel-nm", "10", "--solid-fraction", "0.4", "--ligament-nm", "40"], 2,
     "not a folder", ["afile"]),
    ("calibrate --out a text file", ["fast", "calibrate", "--out", "precious.txt"], 2, ".csv", ["precious.txt"]),
    ("calibrate --restart on a foreign csv", ["fast", "calibrate", "--out", "other.csv", "--restart"], 2,
     "not a calibration table", ["other.csv"]),
    ("train-eta --out = table", ["fast", "train-eta", "other.csv", "--out", "other.pt"], 2, "", ["other.csv"]),
    # ------------------------------------------------------------------ silently wrong answers / limits
    ("eta at 30 keV (network fitted on 1-5 keV)", ["fast", "eta", "--material", "Au", "--energy-kev", "30"], 2,
     "calibrated domain", []),
    ("eta of uranium (Z beyond the table)", ["fast", "eta", "--material", "U", "--energy-kev", "2"], 2,
     "--material: Z = 92", []),
    ("eta depth range of 1e12 values", ["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm",
                                         "0:1e12:1"], 2, "more than the", []),
    ("eta depth range with inf", ["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "0:inf:1"], 2,
     "finite", []),
    ("project at 30 keV", ["fast", "project", "s.tif", "o.tif", "--energy-kev", "30"], 2, "calibrated domain", []),
    # ------------------------------------------------------------------ tracebacks -> one line
    ("train-eta on a binary file", ["fast", "train-eta", "binary.csv", "--out", "w.pt"], 2, "binary.csv", []),
    ("run a binary file", ["run", "binary.yaml"], 2, "binary.yaml", []),
    ("run --workdir that is a file", ["run", str(Path(__file__).parent / "experiment" / "tiny.yaml"), "--workdir",
                                      "afile"], 2, "existing file", ["afile"]),
]


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("fibsynth: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("name,argv,code,text,keep", CASES, ids=[c[0] for c in CASES])
def test_hostile_cases(ws, capsys, name, argv, code, text, keep):
    before = {k: _digest(ws / k) for k in keep}
    listing = sorted(p.name for p in ws.iterdir())
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == code, err
    line = _one_line(err)
    assert text in line, line
    for k in keep:
        assert _digest(ws / k) == before[k], f"{k} was changed"
    # nothing new was left behind (no partial output, no temporary)
    assert sorted(p.name for p in ws.iterdir()) == listing


def test_fibsynth_replaces_its_own_outputs(ws, capsys):
    """Rerunning a command onto its own earlier output works (slice folder, TIFF)."""
    assert main(["segment", "baseline", "img.tif", "out"]) == 0
    assert main(["segment", "baseline", "img.tif", "out"]) == 0
    assert main(["segment", "baseline", "img.tif", "out.tif"]) == 0
    assert main(["segment", "baseline", "img.tif", "out.tif", "--method", "kmeans"]) == 0
    # a fibsynth slice folder that a user put a note into is no longer fibsynth's alone
    (ws / "out" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["segment", "baseline", "img.tif", "out"]) == 2
    assert "notes.txt" in _one_line(capsys.readouterr().err)
    assert (ws / "out" / "notes.txt").read_text() == "mine"


def test_eta_deep_depth_is_the_film_value_and_says_so(capsys):
    """--depth-nm 1e9 gave eta = -98223; now the film's own eta (the value past the electrons' range), stated."""
    assert main(["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "1e9", "--json"]) == 0
    deep = json.loads(capsys.readouterr().out)
    assert main(["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "600", "--json"]) == 0
    at_range = json.loads(capsys.readouterr().out)
    assert "note" in deep and "film's own eta" in deep["note"]
    # epoxy is light: well below gold's bulk value, and depth no longer matters
    assert 0.03 < deep["eta"][0] < 0.15 < deep["hunger_kuechler_bulk"]
    assert deep["eta"][0] == pytest.approx(at_range["eta"][0], abs=0.01)


def test_eta_network_domain_from_shipped_metadata():
    from fibsynth.errors import FibsynthError
    from fibsynth.fastsim.network import load_model

    net = load_model()
    assert net.domain["energy_kev"] == [1.0, 5.0] and net.domain["Z"] == [6.0, 79.0]
    with pytest.raises(FibsynthError, match="calibrated domain") as exc:
        net.predict(0.5, 79, 0.0)
    assert exc.value.param == "energy_kev"
    with pytest.raises(FibsynthError, match=">= 0"):
        net.predict(2.0, 79, -1.0)
    # inside the domain nothing changes: check=False gives the same values
    d = np.linspace(0, 150, 7)
    assert np.array_equal(net.predict(2.0, 79, d), net.predict(2.0, 79, d, check=False))


def _write_bad_meta(ws: Path):
    np.save(ws / "v.npy", np.zeros((2, 4, 4), np.uint8))
    (ws / "v.npy.json").write_text(json.dumps({"voxel_size_nm": {"x": -1, "y": 1, "z": 1}, "fibsynth_version": "0"}))
    np.save(ws / "w.npy", np.zeros((2, 4, 4), np.uint8))
    (ws / "w.npy.json").write_bytes(b"\xff\xfe not json")
    import zarr

    g = zarr.open_group(str(ws / "z.zarr"), mode="w", zarr_format=2)
    g.create_array("0", shape=(2, 4, 4), dtype="uint8")
    g.attrs["fibsynth"] = {"voxel_size_nm": {"x": "banana", "y": 1, "z": 1}}
    data = (ws / "img.tif").read_bytes()
    (ws / "trunc.tif").write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("argv,text", [
    (["info", "v.npy"], "bad fibsynth metadata: x"),
    (["info", "w.npy"], "UTF-8"),
    (["info", "z.zarr"], "bad fibsynth metadata"),
    (["info", "trunc.tif"], "cannot read TIFF"),
    (["isotropy", "trunc.tif"], "cannot read TIFF"),
])
def test_bad_files_one_line(ws, capsys, argv, text):
    _write_bad_meta(ws)
    assert main(argv) == 2
    assert text in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("argv", [
    ["isotropy", "s.tif"],
    ["structure", "import", "s.tif", "t.tif"],
    ["fast", "project", "s.tif", "o.tif", "--energy-kev", "2"],
    ["structure", "lwm", "x.tif", "--shape", "64", "64", "64", "--voxel-nm", "10", "--solid-fraction", "0.4",
     "--ligament-nm", "40"],
])
def test_too_large_for_memory_is_refused_before_allocating(ws, capsys, monkeypatch, argv):
    monkeypatch.setenv("FIBSYNTH_MEMORY_BYTES", "1000")
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "of memory, more than the" in line
    assert not (ws / "t.tif").exists() and not (ws / "x.tif").exists() and not (ws / "o.tif").exists()


def test_available_memory_reads_the_system():
    from fibsynth.io.memory import available_memory

    n = available_memory()
    assert 2**20 < n < 2**50


# ------------------------------------------------------------------------------ interruptions and OS errors


def test_ctrl_c_is_one_line_and_130(ws, capsys, monkeypatch):
    import fibsynth.segment.baseline as baseline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(baseline, "segment_baseline", interrupted)
    assert main(["segment", "baseline", "img.tif", "o.tif"]) == 130
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("fibsynth: interrupted (Ctrl-C")


def test_lightning_style_interrupt_is_130(ws, capsys, monkeypatch):
    """Lightning catches Ctrl-C inside fit(), logs a line and calls sys.exit(1): still one line and 130."""
    import logging

    import fibsynth.segment.baseline as baseline

    def lightning_fit(*a, **k):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            logging.getLogger("lightning.pytorch.utilities.rank_zero").warning(
                "Detected KeyboardInterrupt, attempting graceful shutdown ...")
            sys.exit(1)

    monkeypatch.setattr(baseline, "segment_baseline", lightning_fit)
    assert main(["segment", "baseline", "img.tif", "o.tif"]) == 130
    assert _one_line(capsys.readouterr().err).startswith("fibsynth: interrupted (Ctrl-C")


def test_interrupt_removes_the_temporary_output(ws, capsys, monkeypatch):
    import fibsynth.io.volume as volume

    def interrupted(tmp, *a, **k):
        Path(tmp).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(volume, "_write_tiff", interrupted)
    listing = sorted(p.name for p in ws.iterdir())
    assert main(["structure", "import", "s.tif", "t.tif"]) == 130
    _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in ws.iterdir()) == listing


@pytest.mark.parametrize("exc,text", [
    (PermissionError(13, "Permission denied", "/ro/out.tif"), "/ro/out.tif: Permission denied"),
    (OSError(30, "Read-only file system", "/ro/out.tif"), "Read-only file system"),
    (OSError(28, "No space left on device", "/full/out.tif"), "No space left"),
    (MemoryError(), "out of memory"),
])
def test_os_errors_are_one_line(ws, capsys, monkeypatch, exc, text):
    import fibsynth.io.volume as volume

    def fail(*a, **k):
        raise exc

    monkeypatch.setattr(volume, "_write_tiff", fail)
    assert main(["structure", "import", "s.tif", "t.tif"]) == 2
    assert text in _one_line(capsys.readouterr().err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(ws, capsys):
    ro = ws / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["segment", "baseline", "img.tif", "ro/o.tif"]) == 2
        assert "not writable" in _one_line(capsys.readouterr().err)
    finally:
        ro.chmod(0o755)


def test_read_only_output_folder_checked_before_work(ws, capsys, monkeypatch):
    """As root cannot be refused by the file system, the check itself is exercised through os.access."""
    import fibsynth.io.outputs as outputs

    real = os.access
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if mode & os.W_OK else real(p, mode))
    assert main(["segment", "baseline", "img.tif", "o.tif"]) == 2
    assert "output folder is not writable" in _one_line(capsys.readouterr().err)


def test_signals_in_a_real_process(tmp_path):
    """SIGINT and SIGTERM during a command: one line, 130 / 143, the temporary output removed."""
    script = textwrap.dedent("""
        import sys, time
        import fibsynth.io.volume as volume
        from fibsynth.cli import main

        def slow(tmp, *a, **k):
            open(tmp, "wb").write(b"partial")
            print("READY", flush=True)
            time.sleep(60)

        volume._write_tiff = slow
        sys.exit(main(sys.argv[1:]))
    """)
    src = tmp_path / "s.tif"
    write_volume(src, (np.indices((2, 4, 4)).sum(0) % 2).astype(np.uint8), VolumeMeta(kind="structure", voxel_size_nm=VOX))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                                          os.environ.get("PYTHONPATH", "")])}
    for sig, code, word in ((signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")):
        p = subprocess.Popen([sys.executable, "-c", script, "structure", "import", str(src), str(tmp_path / "t.tif")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        assert p.stdout.readline().strip() == b"READY"
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        err = err.decode()
        assert p.returncode == code, err
        assert _one_line(err).startswith(f"fibsynth: {word} (")
        assert sorted(x.name for x in tmp_path.iterdir()) == ["s.tif"]
