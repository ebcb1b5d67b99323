"""The ``fibsynth mc`` command line: JSON / CSV contracts, stack output with metadata, one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, read_volume, write_volume


def test_bulk_json(capsys):
    assert main(["mc", "bulk", "--material", "Au", "--energy-kev", "2", "--electrons", "2000", "--seed", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"eta", "eta_std", "electrons", "electrons_per_second"}
    assert out["electrons"] == 2000 and 0.3 < out["eta"] < 0.6
    assert out["eta_std"] == np.sqrt(out["eta"] * (1 - out["eta"]) / 2000)


def test_bad_inputs_one_line(capsys):
    assert main(["mc", "bulk", "--material", "Qq", "--energy-kev", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--material" in err
    assert main(["mc", "bulk", "--material", "Au", "--energy-kev", "45"]) == 2
    assert "--energy-kev" in capsys.readouterr().err


def test_layers_csv(tmp_path, capsys):
    out = tmp_path / "t.csv"
    rc = main(["mc", "layers", "--film", "C:2.26", "--substrate", "Au", "--thickness-nm", "0:20:10",
               "--energy-kev", "2,3", "--electrons", "500", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["energy_kev", "film", "substrate", "thickness_nm", "eta", "eta_std"]
    assert [r["thickness_nm"] for r in rows] == ["0", "10", "20"] * 2
    assert {r["energy_kev"] for r in rows} == {"2", "3"}


def test_stack_cli(tmp_path, capsys):
    s = np.zeros((4, 6, 6), np.uint8)
    s[2:, :3] = 1
    src = tmp_path / "s.npy"
    write_volume(src, s, VolumeMeta(kind="structure", voxel_size_nm=VoxelSize.from_xy_z(5, 5)))
    out = tmp_path / "img.tif"
    rc = main(["mc", "stack", str(src), str(out), "--energy-kev", "2", "--electrons-per-pixel", "20",
               "--slices", "1:3", "--workers", "1", "--probe-nm", "2"])
    assert rc == 0, capsys.readouterr().err
    v = read_volume(out)
    assert v.data.shape == (2, 6, 6) and v.data.dtype == np.float32
    assert v.meta.kind == "image" and v.meta.energy_kev == 2.0
    assert v.meta.materials == {"0": "epoxy", "1": "gold"} and v.meta.seed == 0
    std = read_volume(tmp_path / "img_std.tif").data
    assert np.allclose(std, np.sqrt(v.data * (1 - v.data) / 20), atol=1e-6)
    assert not (tmp_path / "img.tif.mcwork.zarr").exists()
    # no voxel size anywhere -> one-line error naming --voxel-nm
    bare = tmp_path / "b.npy"
    write_volume(bare, s, VolumeMeta(kind="structure"))
    assert main(["mc", "stack", str(bare), str(tmp_path / "x.tif"), "--energy-kev", "2",
                 "--electrons-per-pixel", "5", "--workers", "1"]) == 2
    assert "--voxel-nm" in capsys.readouterr().err
