"""``fibsynth microscope apply | correct | estimate``: files in, files out, metadata kept, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from microscope_phantom import phantom

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, read_volume, write_volume
from fibsynth.microscope import before_after_png


@pytest.fixture()
def sim(tmp_path: Path) -> tuple[Path, Path]:
    lab, eta = phantom((6, 96, 96), 31)
    p, q = tmp_path / "sim.tif", tmp_path / "lab.tif"
    write_volume(p, eta.astype(np.float32), VolumeMeta(kind="image", voxel_size_nm=VoxelSize(x=4, y=4, z=8),
                                                        generator="test", energy_kev=2.0))
    write_volume(q, lab, VolumeMeta(kind="label"))
    return p, q


def test_apply_correct_estimate_round_trip(sim, tmp_path, capsys):
    p, q = sim
    real, lab2, png = tmp_path / "real.tif", tmp_path / "lab2.tif", tmp_path / "panel.png"
    assert main(["microscope", "apply", str(p), str(real), "--dose", "300", "--curtain-amplitude", "0.04",
                 "--shading-depth", "0.3", "--xy-drift-px", "1", "--bits", "8", "--dtype", "uint8", "--seed", "4",
                 "--labels", str(q), "--labels-out", str(lab2), "--panel", str(png)]) == 0
    v = read_volume(real)
    assert v.data.dtype == np.uint8 and v.meta.voxel_size_nm.z == 8 and v.meta.energy_kev == 2.0
    applied = v.meta.parameters["microscope"]["applied"]
    assert applied["model"]["detector"]["electrons_per_pixel"] == 300 and applied["model"]["seed"] == 4
    assert len(applied["realised"]["shifts_px"]) == 6 and v.meta.seed == 4
    assert read_volume(lab2).data.shape == (6, 96, 96)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # same seed, same stack
    again = tmp_path / "again.tif"
    assert main(["microscope", "apply", str(p), str(again), "--dose", "300", "--curtain-amplitude", "0.04",
                 "--shading-depth", "0.3", "--xy-drift-px", "1", "--bits", "8", "--dtype", "uint8", "--seed", "4"]) == 0
    assert np.array_equal(read_volume(again).data, v.data)

    fixed = tmp_path / "fixed.tif"
    capsys.readouterr()
    assert main(["microscope", "correct", str(real), str(fixed), "--align", "--destripe", "--denoise", "gaussian",
                 "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["applied"] == ["align", "destripe", "denoise:gaussian"] and len(rec["shifts_px"]) == 6
    fv = read_volume(fixed)
    assert fv.data.dtype == np.float32
    assert set(fv.meta.parameters["microscope"]) == {"applied", "corrected"}  # what made it and what fixed it
    assert main(["microscope", "correct", str(real), str(tmp_path / "phase.tif"), "--destripe", "--destripe-method",
                 "phase", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["applied"] == ["destripe"] and rec["config"]["destripe_method"] == "phase"

    model_yaml = tmp_path / "m.yaml"
    assert main(["microscope", "estimate", str(real), "--eta-levels", "0.1,0.5", "--json",
                 "--model-out", str(model_yaml)]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["model"]["detector"]["electrons_per_pixel"] > 0 and "noise" in est["measured"]
    # the fitted model drives 'apply'
    assert main(["microscope", "apply", str(p), str(tmp_path / "b.tif"), "--config", str(model_yaml)]) == 0
    assert main(["microscope", "estimate", str(real)]) == 0
    out = capsys.readouterr().out
    assert "curtains:" in out and "scan lines:" in out and "total (own phases)" in out and "charging:" in out
    # an ideal simulation as the blur reference, and the response fitted
    assert main(["microscope", "estimate", str(real), "--reference", str(p), "--estimate-response", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["measured"]["blur"]["relative_to"] == "reference" and "gamma" in est["measured"]["response"]
    assert "gamma_interval" in est["measured"]["response"] and "present" in est["measured"]["charging"]
    assert main(["microscope", "estimate", str(real), "--estimate-charging", "--no-align", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert (est["model"]["charging"]["strength"] > 0) == est["measured"]["charging"]["present"]


@pytest.mark.parametrize("args, text", [
    (["apply", "{p}", "{o}", "--dose", "-1"], "--dose:"),
    (["apply", "{p}", "{o}", "--random", "3"], "--random:"),
    (["apply", "{p}", "{o}", "--labels-out", "{o}"], "--labels-out:"),
    (["apply", "{p}", "{o}", "--dtype", "int64"], "--dtype:"),
    (["correct", "{p}", "{o}"], "nothing to do"),
    (["correct", "{p}", "{o}", "--denoise", "wiener"], "--denoise:"),
    (["correct", "{p}", "{o}", "--destripe", "--destripe-levels", "0"], "--destripe-levels:"),
    (["correct", "{p}", "{o}", "--destripe", "--destripe-method", "fft"], "--destripe-method:"),
    (["estimate", "{p}", "--eta-levels", "0.5,0.1"], "--eta-levels:"),
    (["estimate", "{p}", "--eta-levels", "0.5"], "--eta-levels:"),
    (["correct", "{missing}", "{o}", "--align"], "file not found"),
    (["correct", "{p}", "{o}", "--align", "--align-region", "0:24,90:100"], "--align-region: rows 0:24, columns"),
    (["correct", "{p}", "{o}", "--align", "--align-region", "0:4,0:96"], "--align-region: 4 x 96 px is too small"),
    (["correct", "{p}", "{o}", "--align", "--align-region", "0-24,0:96"], "--align-region: expected Y0:Y1,X0:X1"),
    (["correct", "{p}", "{o}", "--destripe", "--align-region", "0:24,0:96"], "--align-region: needs --align"),
    (["correct", "{p}", "{o}", "--destripe", "--align-region", "auto"], "--align-region: needs --align"),
    (["correct", "{p}", "{o}", "--align", "--align-search-px", "0.5"], "--align-search-px: Input should be greater"),
    (["correct", "{p}", "{o}", "--destripe", "--align-search-px", "3"], "--align-search-px: needs --align"),
])
def test_errors_are_one_line_with_exit_2_and_no_output(sim, tmp_path, capsys, args, text):
    p, _ = sim
    o = tmp_path / "out.tif"
    fill = {"p": str(p), "o": str(o), "missing": str(tmp_path / "nope.tif")}
    assert main(["microscope", *[a.format(**fill) for a in args]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fibsynth: error:") and text in err[0], err
    assert not o.exists()


def test_outputs_replace_only_fibsynth_files(sim, tmp_path, capsys):
    p, q = sim
    mine = tmp_path / "notes.tif"
    mine.write_bytes(b"not fibsynth's")
    for argv in (["apply", str(p), str(mine)], ["correct", str(p), str(mine), "--align"],
                 ["apply", str(p), str(p)], ["apply", str(p), str(tmp_path / "o.tif"), "--panel", str(mine)]):
        assert main(["microscope", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fibsynth: error:"), err
    assert mine.read_bytes() == b"not fibsynth's" and not (tmp_path / "o.tif").exists()
    # its own output is replaced
    out = tmp_path / "again.tif"
    assert main(["microscope", "apply", str(p), str(out), "--dose", "100"]) == 0
    assert main(["microscope", "apply", str(p), str(out), "--dose", "200"]) == 0


def test_panel_bytes():
    _, eta = phantom((2, 48, 48), 1)
    assert before_after_png(eta, eta[:, ::-1])[:4] == b"\x89PNG"
