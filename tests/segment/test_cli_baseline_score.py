"""Baselines, score tables and one-line CLI errors."""

import csv
import json

import numpy as np
import pytest

from fibsynth.io import VolumeMeta, read_volume, write_volume
from fibsynth.segment.baseline import kmeans_threshold, otsu_threshold

from segtools import VOXEL, cli_segment


def test_thresholds_on_a_bimodal_stack():
    rng = np.random.default_rng(0)
    dark = rng.normal(10, 1, 30000)
    bright = rng.normal(30, 1, 10000)
    img = np.concatenate([dark, bright]).astype(np.float32).reshape(4, 100, 100)
    assert dark.max() < otsu_threshold(img) < bright.min()  # any threshold in the gap is Otsu-optimal
    t, (c0, c1) = kmeans_threshold(img)
    assert c0 == pytest.approx(10, abs=0.05) and c1 == pytest.approx(30, abs=0.05) and t == pytest.approx(20, abs=0.05)
    with pytest.raises(Exception, match="constant"):
        otsu_threshold(np.ones((2, 3, 3)))


@pytest.mark.parametrize("method", ["otsu", "kmeans"])
@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_baseline_cli(tmp_path, capsys, method, suffix):
    img = np.zeros((6, 20, 20), np.uint16)
    img[:, 5:12, 5:12] = 900  # bright = gold
    img += np.random.default_rng(1).integers(0, 50, img.shape).astype(np.uint16)
    write_volume(tmp_path / "in.tif", img, VolumeMeta(kind="image", voxel_size_nm=VOXEL))
    out = tmp_path / f"out{suffix}"
    assert cli_segment(["baseline", str(tmp_path / "in.tif"), str(out), "--method", method, "--json"]) in (0, None)
    info = json.loads(capsys.readouterr().out)
    v = read_volume(out)
    np.testing.assert_array_equal(v.data, (img > 450).astype(np.uint8))
    assert v.meta.kind == "label" and v.meta.voxel_size_nm == VOXEL and v.meta.parameters["method"] == method
    assert info["solid_fraction"] == pytest.approx(49 / 400)


def test_score_table_truth_and_isotropy(tmp_path, capsys):
    from fibsynth.segment.toy import toy_structure

    t = toy_structure((24, 32, 32), seed=2)
    p = t.copy()
    p[:2] = 0
    meta = VolumeMeta(kind="label", voxel_size_nm=VOXEL)
    for name, arr in (("t.tif", t), ("p.tif", p)):
        write_volume(tmp_path / name, arr, meta)
    rc = cli_segment(["score", str(tmp_path / "t.tif"), str(tmp_path / "p.tif"), "--truth", str(tmp_path / "t.tif"),
                      "--name", "perfect", "damaged", "--csv", str(tmp_path / "s.csv"),
                      "--markdown", str(tmp_path / "s.md"), "--isotropy", "--json"])
    assert rc in (0, None)
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["perfect", "damaged"]
    assert rows[0]["MP"] == 0 and rows[0]["MDS"] == 1
    fn = int(t[:2].sum())
    assert rows[1]["MP"] == pytest.approx(100 * fn / t.size) and rows[1]["MGP"] == pytest.approx(100 * fn / t.sum())
    assert {"e_tpcf", "e_lpf", "e_diameter"} <= set(rows[0])
    with open(tmp_path / "s.csv") as fh:
        got = list(csv.DictReader(fh))
    assert float(got[1]["MDS"]) == rows[1]["MDS"]
    md = (tmp_path / "s.md").read_text()
    assert md.startswith("| name | MP ↓ | MGP ↓ | MDS ↑") and "| damaged |" in md
    # without ground truth: isotropy only, voxel size from the file
    assert cli_segment(["score", str(tmp_path / "p.tif"), "--json"]) in (0, None)
    row = json.loads(capsys.readouterr().out)[0]
    assert "MP" not in row and row["e_tpcf"] >= 0


def _one_line_error(capsys, argv, *needles):
    assert cli_segment(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fibsynth: error:") and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def test_cli_errors_are_one_line(tmp_path, capsys, toy_data):
    d, (ip, lp, _, _), _ = toy_data
    out = str(tmp_path / "m")
    _one_line_error(capsys, ["train", "--images", str(ip), "--labels", str(lp), "--mode", "4d", "--out", out], "--mode")
    _one_line_error(capsys, ["train", "--images", str(ip), str(ip), "--labels", str(lp), "--mode", "2d", "--out", out],
                    "--channels-per-stack")
    _one_line_error(capsys, ["train", "--images", str(ip), "--labels", str(lp), "--mode", "2d", "--out", out,
                             "--lr", "-1"], "--lr")
    _one_line_error(capsys, ["train", "--images", str(ip), "--labels", str(lp), "--mode", "2d", "--out", out,
                             "--patch", "36"], "multiple of 8")
    _one_line_error(capsys, ["train", "--images", str(ip), "--labels", str(lp), "--mode", "3d", "--out", out],
                    "too thin")
    _one_line_error(capsys, ["train", "--images", str(ip), "--labels", str(ip), "--mode", "2d", "--out", out],
                    "not a binary volume")
    _one_line_error(capsys, ["train", "--images", str(ip), "--labels", str(lp), "--mode", "2d", "--out", out,
                             "--resume"], "--resume")
    _one_line_error(capsys, ["predict", str(tmp_path / "nomodel"), str(ip), str(tmp_path / "p.tif")], "model folder")
    (tmp_path / "notmodel").mkdir()
    _one_line_error(capsys, ["predict", str(tmp_path / "notmodel"), str(ip), str(tmp_path / "p.tif")], "config.json")
    _one_line_error(capsys, ["baseline", str(ip), str(tmp_path / "b.tif"), "--method", "watershed"], "--method")
    _one_line_error(capsys, ["baseline", str(tmp_path / "missing.tif"), str(tmp_path / "b.tif")], "not found")
    _one_line_error(capsys, ["score", str(lp), "--truth", str(lp), str(lp), str(lp)], "--truth")


def test_predict_cli_errors_with_a_model(tmp_path, capsys, trained_25d, toy_data):
    _, (ip, lp, _, _), _ = toy_data
    _one_line_error(capsys, ["predict", str(trained_25d), str(ip), str(tmp_path / "p.tif"), "--overlap", "1.5"],
                    "--overlap")
    _one_line_error(capsys, ["predict", str(trained_25d), str(ip), str(tmp_path / "p.xyz")], "suffix")
    _one_line_error(capsys, ["predict", str(trained_25d), str(ip), str(tmp_path / "p.tif"), "--roi", "1,2,3"], "--roi")
    # an existing run is not silently overwritten
    _one_line_error(capsys, ["train", "--images", str(ip), "--labels", str(lp), "--mode", "2.5d",
                             "--out", str(trained_25d)], "--resume")
