"""``fibsynth structure lwm | hierarchical | import``: outputs, metadata, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from fibsynth.cli import main
from fibsynth.io import read_structure, read_volume


def test_lwm_tif_and_zarr_identical_with_metadata(tmp_path, capsys):
    base = ["--shape", "24", "28", "32", "--voxel-nm", "2", "--slice-nm", "3", "--solid-fraction", "0.3",
            "--ligament-nm", "14", "--waves", "200", "--seed", "5"]
    assert main(["structure", "lwm", str(tmp_path / "a.tif"), *base]) == 0
    assert main(["structure", "lwm", str(tmp_path / "b.zarr"), *base, "--chunks", "8", "8", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["generator"] == "lwm" and summary["shape"] == [24, 28, 32]
    a, b = read_structure(tmp_path / "a.tif"), read_structure(tmp_path / "b.zarr")
    assert np.array_equal(a.data, b.data)
    assert abs(a.data.mean() - 0.3) <= 0.01
    meta = b.meta
    assert meta.kind == "structure" and meta.generator == "lwm" and meta.seed == 5
    assert (meta.voxel_size_nm.x, meta.voxel_size_nm.y, meta.voxel_size_nm.z) == (2.0, 2.0, 3.0)
    p = meta.parameters
    assert len(p["wave_table"]) == 200 and len(p["wave_table"][0]) == 4
    assert p["q0_per_nm"] > 0 and p["solid_fraction"] == 0.3 and p["ligament_nm"] == 14.0
    assert read_volume(tmp_path / "b.zarr", lazy=True).data.chunksize == (8, 8, 8)


def test_hierarchical_cli(tmp_path):
    out = tmp_path / "h.npy"
    rc = main(["structure", "hierarchical", str(out), "--shape", "48", "48", "48", "--voxel-nm", "3",
               "--upper-ligament-nm", "60", "--lower-ligament-nm", "12", "--upper-solid-fraction", "0.5",
               "--lower-solid-fraction", "0.4", "--seed", "2", "--waves", "300"])
    assert rc == 0
    v = read_structure(out)
    assert v.meta.generator == "hierarchical"
    assert abs(v.data.mean() - 0.2) <= 0.02
    assert v.meta.parameters["upper"]["ligament_nm"] == 60.0


def test_config_yaml_and_cli_override(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("shape: [16, 16, 16]\nvoxel-nm: 1.0\nsolid_fraction: 0.4\nligament_nm: 6\nwaves: 100\nseed: 1\n")
    assert main(["structure", "lwm", str(tmp_path / "a.npy"), "--config", str(cfg)]) == 0
    assert main(["structure", "lwm", str(tmp_path / "b.npy"), "--config", str(cfg), "--seed", "2"]) == 0
    a, b = read_structure(tmp_path / "a.npy"), read_structure(tmp_path / "b.npy")
    assert a.meta.seed == 1 and b.meta.seed == 2 and not np.array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--solid-fraction", "1.2"], "--solid-fraction"),
        (["--solid-fraction", "0"], "--solid-fraction"),
        (["--ligament-nm", "1"], "--ligament-nm"),
        (["--waves", "0"], "--waves"),
        (["--voxel-nm", "-1"], "--voxel-nm"),
        (["--shape", "0", "8", "8"], "--shape"),
    ],
)
def test_bad_values_exit_2_one_line_no_output(tmp_path, capsys, args, needle):
    good = {"--shape": ["8", "8", "8"], "--voxel-nm": ["1"], "--solid-fraction": ["0.3"], "--ligament-nm": ["4"]}
    opts = dict(good)
    opts[args[0]] = args[1:]
    argv = ["structure", "lwm", str(tmp_path / "x.tif")]
    for k, v in opts.items():
        argv += [k, *v]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fibsynth: error:") and needle in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_missing_required_option(tmp_path, capsys):
    assert main(["structure", "lwm", str(tmp_path / "x.tif"), "--shape", "8", "8", "8", "--voxel-nm", "1"]) == 2
    assert "--solid-fraction" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_import_fiji_mask_needs_voxel_size(tmp_path, capsys):
    rng = np.random.default_rng(0)
    mask = (rng.random((6, 10, 12)) < 0.4).astype(np.uint8) * 255
    src = tmp_path / "mask.tif"
    tifffile.imwrite(src, mask)  # plain TIFF: no voxel size
    out = tmp_path / "s.tif"
    assert main(["structure", "import", str(src), str(out)]) == 2
    assert "--voxel-nm" in capsys.readouterr().err and not out.exists()
    assert main(["structure", "import", str(src), str(out), "--voxel-nm", "4", "--slice-nm", "10", "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    v = read_structure(out)
    assert np.array_equal(v.data, mask // 255) and v.meta.kind == "structure"
    assert (v.meta.voxel_size_nm.x, v.meta.voxel_size_nm.z) == (4.0, 10.0)
    assert info["solid_fraction"] == pytest.approx(float((mask > 0).mean()))


def test_import_rejects_grey_volume(tmp_path, capsys):
    src = tmp_path / "grey.npy"
    np.save(src, np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    assert main(["structure", "import", str(src), str(tmp_path / "o.tif"), "--voxel-nm", "1"]) == 2
    assert "not a binary volume" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()
