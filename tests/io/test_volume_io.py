"""Volume I/O: round trips with metadata, atomic writes, one-line errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, as_binary, read_structure, read_volume, write_volume

FORMATS = ["vol.tif", "vol.tiff", "vol.zarr", "vol.npy", "slices"]


def _meta(**kw) -> VolumeMeta:
    base = dict(
        kind="structure",
        voxel_size_nm=VoxelSize(x=2.5, y=2.5, z=7.0),
        generator="test",
        parameters={"solid_fraction": 0.3, "ligament_nm": 20.0},
        seed=42,
        energy_kev=2.0,
        materials={"0": "epoxy", "1": "gold"},
    )
    base.update(kw)
    return VolumeMeta(**base)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_round_trip_keeps_data_and_metadata(tmp_path: Path, name: str, dtype) -> None:
    rng = np.random.default_rng(1)
    data = (rng.random((4, 9, 11)) * 200).astype(dtype)
    meta = _meta()
    out = write_volume(tmp_path / name, data, meta)
    vol = read_volume(out)
    assert vol.data.dtype == dtype
    np.testing.assert_array_equal(vol.data, data)
    got = vol.meta.model_dump()
    want = meta.model_dump()
    assert got == want
    # nothing else left in the folder: no temporary names
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_tiff_is_an_imagej_hyperstack_fiji_can_scale(tmp_path: Path) -> None:
    data = np.zeros((3, 5, 6), np.uint8)
    write_volume(tmp_path / "a.tif", data, _meta(voxel_size_nm=VoxelSize(x=4, y=4, z=10)))
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.is_imagej
        ij = tif.imagej_metadata
        assert ij["unit"] == "nm" and ij["spacing"] == pytest.approx(10)
        assert ij["images"] == 3
        xres = tif.pages[0].tags["XResolution"].value
        assert xres[1] / xres[0] == pytest.approx(4.0, rel=1e-6)


def test_reads_foreign_lzw_imagej_tiff_in_microns(tmp_path: Path) -> None:
    """A stack as Fiji writes it (LZW, micron units, no fibsynth metadata): voxel size converted to nm."""
    data = (np.arange(2 * 4 * 5) % 2).reshape(2, 4, 5).astype(np.uint8)
    p = tmp_path / "fiji.tif"
    tifffile.imwrite(
        p, data, imagej=True, compression="lzw", resolution=(1 / 0.005, 1 / 0.005),
        metadata={"spacing": 0.01, "unit": "micron", "axes": "ZYX"},
    )
    vol = read_volume(p)
    np.testing.assert_array_equal(vol.data, data)
    v = vol.meta.voxel_size_nm
    assert (v.x, v.y, v.z) == pytest.approx((5.0, 5.0, 10.0))


def test_folder_of_slices_sorted_naturally(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    for i in [0, 1, 2, 10, 11]:  # lexical order would put 10 before 2
        tifffile.imwrite(folder / f"img{i}.tif", np.full((3, 4), i, np.uint16))
    vol = read_volume(folder)
    assert vol.data[:, 0, 0].tolist() == [0, 1, 2, 10, 11]


def test_folder_with_mismatched_slice_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    tifffile.imwrite(folder / "a0.tif", np.zeros((3, 4), np.uint8))
    tifffile.imwrite(folder / "a1.tif", np.zeros((3, 5), np.uint8))
    with pytest.raises(FibsynthError, match="a1.tif"):
        read_volume(folder)


def test_zarr_is_ome_ngff_with_scale(tmp_path: Path) -> None:
    write_volume(tmp_path / "v.zarr", np.ones((2, 3, 4), np.uint8), _meta(voxel_size_nm=VoxelSize(x=3, y=3, z=9)))
    attrs = json.loads((tmp_path / "v.zarr" / ".zattrs").read_text())
    ms = attrs["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [9, 3, 3]


def test_lazy_zarr_read_and_dask_write(tmp_path: Path) -> None:
    import dask.array as da

    data = np.random.default_rng(0).integers(0, 2, (6, 8, 8), dtype=np.uint8)
    write_volume(tmp_path / "a.zarr", da.from_array(data, chunks=(2, 4, 4)), _meta(), chunks=(2, 4, 4))
    vol = read_volume(tmp_path / "a.zarr", lazy=True)
    assert isinstance(vol.data, da.Array)
    np.testing.assert_array_equal(vol.data.compute(), data)


def test_real_lzw_fibsem_reconstruction(sofc_path: Path) -> None:
    vol = read_structure(sofc_path)
    assert vol.data.shape == (201, 201, 201)
    assert vol.data.dtype == np.uint8
    assert set(np.unique(vol.data).tolist()) == {0, 1}
    assert vol.meta.voxel_size_nm is None  # the file stores none


def test_binary_accepts_fiji_masks_and_rejects_gray(tmp_path: Path) -> None:
    assert as_binary(np.array([[[0, 255]]], np.uint8)).tolist() == [[[0, 1]]]
    assert as_binary(np.array([[[True, False]]])).dtype == np.uint8
    p = tmp_path / "gray.tif"
    write_volume(p, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    with pytest.raises(FibsynthError, match=r"gray.tif: not a binary volume"):
        read_structure(p)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((2, 2, 2, 2), np.float32), "expected a 3D"),
        (np.array([[[0.0, np.nan]]], np.float32), "NaN"),
        (np.zeros(5, np.float32), "expected a 3D"),
    ],
)
def test_bad_arrays_are_refused_without_output(tmp_path: Path, data, match) -> None:
    with pytest.raises(FibsynthError, match=match):
        write_volume(tmp_path / "bad.tif", data)
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(FibsynthError, match="file not found"):
        read_volume(tmp_path / "nope.tif")
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(FibsynthError, match="corrupt.tif: cannot read TIFF"):
        read_volume(bad)
    png = tmp_path / "x.png"
    png.touch()
    with pytest.raises(FibsynthError, match="unknown suffix"):
        read_volume(png)


def test_rgb_tiff_refused(tmp_path: Path) -> None:
    p = tmp_path / "rgb.tif"
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 7  # real colour: the channels differ
    tifffile.imwrite(p, rgb, photometric="rgb")
    with pytest.raises(FibsynthError, match="single-channel"):
        read_volume(p)


def test_gray_saved_as_rgb_is_read_as_gray_with_a_note(tmp_path: Path) -> None:
    from fibsynth.errors import InputNote

    gray = np.random.default_rng(0).integers(0, 255, (4, 8, 9), dtype=np.uint8)
    p = tmp_path / "rgb.tif"
    tifffile.imwrite(p, np.repeat(gray[..., None], 3, -1), photometric="rgb")
    with pytest.warns(InputNote, match="equal channels"):
        vol = read_volume(p)
    np.testing.assert_array_equal(np.asarray(vol.data), gray)
    folder = tmp_path / "slices"
    folder.mkdir()
    for k in range(4):
        tifffile.imwrite(folder / f"s{k}.tif", np.repeat(gray[k, ..., None], 3, -1), photometric="rgb")
    with pytest.warns(InputNote):
        np.testing.assert_array_equal(np.asarray(read_volume(folder).data), gray)


def test_imagej_stack_labelled_channels_is_read_as_slices(tmp_path: Path) -> None:
    """tifffile.imwrite(..., imagej=True) of a 3-D array labels its axis channels; Fiji files say slices."""
    from fibsynth.errors import InputNote

    data = np.arange(5 * 6 * 7, dtype=np.uint16).reshape(5, 6, 7)
    p = tmp_path / "ij.tif"
    tifffile.imwrite(p, data, imagej=True, resolution=(1 / 0.004, 1 / 0.004),
                     metadata={"spacing": 0.008, "unit": "micron"})
    with pytest.warns(InputNote, match="5 slices"):
        vol = read_volume(p)
    np.testing.assert_array_equal(np.asarray(vol.data), data)
    assert (vol.meta.voxel_size_nm.x, vol.meta.voxel_size_nm.z) == pytest.approx((4.0, 8.0))
    two = tmp_path / "two.tif"  # channels beside slices: a real multi-channel file, refused
    tifffile.imwrite(two, np.zeros((3, 2, 6, 7), np.uint16), imagej=True, metadata={"axes": "ZCYX"})
    with pytest.raises(FibsynthError, match="2 channels"):
        read_volume(two)


def test_failed_write_leaves_previous_file_intact(tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "keep.tif"
    write_volume(p, np.ones((1, 2, 2), np.uint8))
    import fibsynth.io.volume as v

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(v, "_write_tiff", boom)
    with pytest.raises(RuntimeError):
        write_volume(p, np.zeros((1, 2, 2), np.uint8))
    np.testing.assert_array_equal(read_volume(p).data, 1)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["keep.tif"]


def test_voxel_size_must_be_positive() -> None:
    # the library names the Python parameters; the CLI prints them as --voxel-nm / --slice-nm
    with pytest.raises(FibsynthError, match="voxel_nm") as ei:
        VoxelSize.from_xy_z(0.0)
    assert ei.value.cli_line().startswith("--voxel-nm")
    with pytest.raises(FibsynthError, match="slice_nm") as ei:
        VoxelSize.from_xy_z(2.0, float("nan"))
    assert ei.value.cli_line().startswith("--slice-nm")


def test_slice_folder_keeps_bulky_tables_once(tmp_path: Path) -> None:
    """A wave table of 1000 x 4 numbers goes to the sidecar, not into each of the slices."""
    meta = _meta(parameters={"wave_table": [[0.1, 0.2, 0.3, 0.4]] * 1000, "q0": 0.1})
    write_volume(tmp_path / "s", np.zeros((3, 4, 5), np.uint8), meta)
    assert read_volume(tmp_path / "s").meta.parameters["wave_table"] == meta.parameters["wave_table"]
    one = read_volume(tmp_path / "s" / "slice_00000.tif").meta
    assert "wave_table" not in one.parameters and one.parameters["q0"] == 0.1
    assert one.voxel_size_nm == meta.voxel_size_nm and one.seed == meta.seed


def test_resolve_voxel_size_one_rule_for_every_command() -> None:
    from fibsynth.io import resolve_voxel_size

    f = VoxelSize(x=4, y=4, z=12)
    assert resolve_voxel_size(f) == f
    assert resolve_voxel_size(f, voxel_nm=2.0) == VoxelSize(x=2, y=2, z=2)  # --slice-nm defaults to --voxel-nm
    assert resolve_voxel_size(f, voxel_nm=2.0, slice_nm=5.0) == VoxelSize(x=2, y=2, z=5)
    assert resolve_voxel_size(f, slice_nm=7.0) == VoxelSize(x=4, y=4, z=7)  # only the slice thickness replaced
    assert resolve_voxel_size(None, voxel_nm=3.0) == VoxelSize(x=3, y=3, z=3)
    with pytest.raises(FibsynthError, match=r"vol.tif: has no voxel size .* pass --voxel-nm"):
        resolve_voxel_size(None, slice_nm=5.0, source="vol.tif")
    with pytest.raises(FibsynthError, match=r"--slice-nm must be in \(0, 1e6\]"):
        resolve_voxel_size(f, slice_nm=-1.0)


def test_label_volumes_open_in_fiji_with_their_label_range(tmp_path: Path) -> None:
    """ImageJ/Fiji show an 8-bit image over 0..255 unless the file names a display range: a 0/1 segmentation
    would open all black. Label and structure volumes name 0..(largest label); gray images do not."""
    seg = np.zeros((4, 6, 7), np.uint8)
    seg[:, 2:4] = 1
    write_volume(tmp_path / "seg.tif", seg, VolumeMeta(kind="label", materials={"0": "epoxy", "1": "gold"}))
    three = np.zeros((4, 6, 7), np.uint8)
    three[:, :, 3] = 2  # labels 0 and 2 present, 1 absent: the range still covers all three materials
    write_volume(tmp_path / "three.tif", three,
                 VolumeMeta(kind="structure", materials={"0": "epoxy", "1": "Ni", "2": "YSZ"}))
    nomat = np.zeros((3, 5, 5), np.uint16)
    nomat[0, 0, 0] = 3
    write_volume(tmp_path / "nomat.tif", nomat, VolumeMeta(kind="label"))
    img = (np.arange(4 * 6 * 7).reshape(4, 6, 7) % 200).astype(np.uint8)
    write_volume(tmp_path / "img.tif", img, VolumeMeta(kind="image"))
    empty_first = seg.copy()
    empty_first[0] = 0
    write_volume(tmp_path / "seg_slices", empty_first, VolumeMeta(kind="label"))

    def rng(p: Path):
        with tifffile.TiffFile(p) as t:
            ij = t.imagej_metadata or {}
            return ij.get("min"), ij.get("max")

    assert rng(tmp_path / "seg.tif") == (0.0, 1.0)
    assert rng(tmp_path / "three.tif") == (0.0, 2.0)
    assert rng(tmp_path / "nomat.tif") == (0.0, 3.0)
    assert rng(tmp_path / "img.tif") == (None, None)
    # every slice of a folder gets the volume's range, the all-0 first slice too
    slices = sorted((tmp_path / "seg_slices").glob("slice_*.tif"))
    assert slices and all(rng(p) == (0.0, 1.0) for p in slices)
    # and the data and metadata read back unchanged
    back = read_volume(tmp_path / "seg.tif")
    assert np.array_equal(np.asarray(back.data), seg) and back.meta.kind == "label"
