"""``fibsynth fast``: JSON contract of eta, project output and metadata, calibrate/train-eta, one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.fastsim.network import load_model
from fibsynth.io import VolumeMeta, read_volume, write_volume
from fibsynth.physics.backscatter import hunger_kuechler


def one_line_error(capsys, args, needle):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err


def test_eta_json(capsys):
    assert main(["fast", "eta", "--material", "gold", "--energy-kev", "2", "--depth-nm", "0:40:10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"depth_nm", "eta", "hunger_kuechler_bulk"}
    assert out["depth_nm"] == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert out["eta"] == pytest.approx(load_model().predict(2.0, 79, out["depth_nm"]).tolist(), abs=2e-6)
    assert np.all(np.diff(out["eta"]) < 0)
    assert out["hunger_kuechler_bulk"] == pytest.approx(hunger_kuechler("Au", 2.0))


def test_project_cli(tmp_path, capsys):
    s = np.zeros((6, 8, 5), np.uint8)
    s[4:, :, :2] = 1
    src = tmp_path / "s.npy"
    write_volume(src, s, VolumeMeta(kind="structure", voxel_size_nm=VoxelSize.from_xy_z(5, 10), seed=9))
    out = tmp_path / "p.tif"
    assert main(["fast", "project", str(src), str(out), "--energy-kev", "2", "--slices-behind", "3",
                 "--incidence-deg", "0"]) == 0, capsys.readouterr().err
    v = read_volume(out)
    assert v.data.shape == s.shape and v.data.dtype == np.float32
    m = v.meta
    assert m.kind == "image" and m.generator == "projection" and m.energy_kev == 2.0 and m.seed == 9
    assert m.materials == {"0": "epoxy", "1": "gold"} and m.voxel_size_nm.z == 10
    assert m.parameters["slices_behind"] == 3 and m.parameters["incidence_deg"] == 0
    d = v.data
    assert np.all(d[4:, :, :2] == 1) and np.all(d[:, :, 2:] == 0)
    assert 0 < d[3, 0, 0] < 1 and 0 < d[2, 0, 0] < d[3, 0, 0] and d[1, 0, 0] == 0  # K = 3 slices
    # default K follows the range; no voxel size -> one-line error naming --voxel-nm
    bare = tmp_path / "b.npy"
    write_volume(bare, s, VolumeMeta(kind="structure"))
    capsys.readouterr()
    one_line_error(capsys, ["fast", "project", str(bare), str(out), "--energy-kev", "2"], "--voxel-nm")
    assert main(["fast", "project", str(bare), str(out), "--energy-kev", "1", "--voxel-nm", "5"]) == 0
    assert read_volume(out).meta.parameters["slices_behind"] == read_volume(out).meta.parameters["slices_behind_default"]


def test_calibrate_and_train(tmp_path, capsys):
    table = tmp_path / "t.csv"
    assert main(["fast", "calibrate", "--out", str(table), "--energies", "1,2", "--substrates", "C,Cu,Au",
                 "--thickness-nm", "0:40:20", "--electrons", "200"]) == 0
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 18
    assert {"energy_kev", "film", "substrate", "Z", "thickness_nm", "eta", "eta_std"} <= set(rows[0])
    capsys.readouterr()
    w = tmp_path / "w.pt"
    assert main(["fast", "train-eta", str(table), "--out", str(w), "--max-epochs", "3", "--holdout", "2:Cu",
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["held_out_curves"] == ["2:Cu"] and rep["epochs_run"] == 3 and w.exists()
    assert (tmp_path / "w.json").exists()
    assert main(["fast", "eta", "--material", "Au", "--energy-kev", "1", "--weights", str(w), "--json"]) == 0
    one_line_error(capsys, ["fast", "train-eta", str(table), "--out", str(w), "--holdout", "3:Cu"], "--holdout")
    one_line_error(capsys, ["fast", "train-eta", str(table), "--out", str(tmp_path / "w.bin")], ".pt")


def test_one_line_errors(tmp_path, capsys):
    one_line_error(capsys, ["fast", "eta", "--material", "Qq", "--energy-kev", "2", "--json"], "--material")
    one_line_error(capsys, ["fast", "eta", "--material", "Au", "--energy-kev", "99"], "--energy-kev")
    one_line_error(capsys, ["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "10:0:5"], "--depth-nm")
    one_line_error(capsys, ["fast", "eta", "--material", "Au", "--energy-kev", "2", "--weights",
                            str(tmp_path / "none.pt")], "not found")
    one_line_error(capsys, ["fast", "train-eta", str(tmp_path / "none.csv"), "--out", str(tmp_path / "w.pt")],
                   "not found")
    one_line_error(capsys, ["fast", "calibrate", "--out", str(tmp_path / "c.csv"), "--electrons", "0"], "--electrons")
    s = np.full((3, 4, 4), 2, np.uint8)
    src = tmp_path / "s.npy"
    write_volume(src, s, VolumeMeta(kind="image", voxel_size_nm=VoxelSize.from_xy_z(5, 5)))
    assert main(["fast", "project", str(src), str(tmp_path / "o.tif"), "--energy-kev", "2"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    ok = tmp_path / "ok.npy"
    write_volume(ok, np.zeros((3, 4, 4), np.uint8), VolumeMeta(kind="structure", voxel_size_nm=VoxelSize.from_xy_z(5, 5)))
    one_line_error(capsys, ["fast", "project", str(ok), str(tmp_path / "o.tif"), "--energy-kev", "2",
                            "--slices-behind", "0"], "--slices-behind")
    one_line_error(capsys, ["fast", "project", str(ok), str(tmp_path / "o.tif"), "--energy-kev", "2",
                            "--normalise", "max"], "--normalise")


def test_project_spread_option(tmp_path, capsys):
    s = np.zeros((8, 9, 9), np.uint8)
    s[5, 4, 4] = 1
    src = tmp_path / "v.npy"
    write_volume(src, s, VolumeMeta(kind="structure", voxel_size_nm=VoxelSize.from_xy_z(5, 5)))
    outs = {}
    for sp in ("0", "0.5"):
        out = tmp_path / f"p{sp}.npy"
        assert main(["fast", "project", str(src), str(out), "--energy-kev", "2", "--incidence-deg", "0",
                     "--spread", sp]) == 0
        outs[sp] = read_volume(out)
    assert outs["0.5"].meta.parameters["spread"] == 0.5
    # depth 20 nm: window half-width round(0.5 * 20 / 5) = 2 px -> 1/25 of the first-hit contrast
    assert outs["0.5"].data[1, 4, 4] == pytest.approx(outs["0"].data[1, 4, 4] / 25, rel=1e-5)
    capsys.readouterr()
    one_line_error(capsys, ["fast", "project", str(src), str(tmp_path / "q.npy"), "--energy-kev", "2",
                            "--spread", "-1"], "--spread")
