"""fibsynth evaluate / isotropy: JSON contract, metadata voxel size, one-line errors."""

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, write_volume


def _struct(n=32, seed=0):
    g = ndi.gaussian_filter(np.random.default_rng(seed).standard_normal((n, n, n)), 2)
    return (g > 0).astype(np.uint8)


def test_evaluate_json(tmp_path, capsys):
    t = _struct()
    p = t.copy()
    p[0, :4, :4] ^= 1
    write_volume(tmp_path / "t.tif", t, VolumeMeta(kind="structure"))
    write_volume(tmp_path / "p.npy", p, VolumeMeta(kind="structure"))
    assert main(["evaluate", str(tmp_path / "p.npy"), "--truth", str(tmp_path / "t.tif"), "--json"]) in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"MP", "MGP", "MDS", "dice_solid", "dice_pore"}
    assert out["MP"] == pytest.approx(100 * 16 / t.size)
    assert main(["evaluate", str(tmp_path / "p.npy"), "--truth", str(tmp_path / "t.tif")]) in (0, None)
    assert "MDS" in capsys.readouterr().out
    write_volume(tmp_path / "s.npy", t[:-1], VolumeMeta(kind="structure"))
    assert main(["evaluate", str(tmp_path / "s.npy"), "--truth", str(tmp_path / "t.tif"), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fibsynth: error:") and "shape" in err and len(err.strip().splitlines()) == 1


def test_isotropy_json_metadata_and_options(tmp_path, capsys):
    a = _struct(40)
    meta = VolumeMeta(kind="structure", voxel_size_nm=VoxelSize(x=2.0, y=2.0, z=4.0))
    write_volume(tmp_path / "a.tif", a, meta)
    png = tmp_path / "f.png"
    assert main(["isotropy", str(tmp_path / "a.tif"), "--json", "--plot", str(png)]) in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"e_tpcf", "e_lpf", "e_diameter", "D_xy_nm", "D_xz_nm", "D_yz_nm", "solid_fraction"}
    assert png.stat().st_size > 1000
    assert out["solid_fraction"] == pytest.approx(a.mean())
    # the metadata's 2 x 2 x 4 nm voxel doubles the xy diameter relative to 1 nm pixels
    assert main(["isotropy", str(tmp_path / "a.tif"), "--voxel-nm", "1", "--json"]) in (0, None)
    out1 = json.loads(capsys.readouterr().out)
    assert out["D_xy_nm"] == pytest.approx(2 * out1["D_xy_nm"])
    assert main(["isotropy", str(tmp_path / "a.tif"), "--voxel-nm", "2", "--slice-nm", "4", "--json"]) in (0, None)
    assert json.loads(capsys.readouterr().out) == out


def test_isotropy_without_voxel_size_fails(tmp_path, capsys):
    write_volume(tmp_path / "a.npy", _struct(16), VolumeMeta(kind="structure"))
    assert main(["isotropy", str(tmp_path / "a.npy"), "--json"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "--voxel-nm" in cap.err and len(cap.err.strip().splitlines()) == 1
