"""fibsynth's napari reader and writers: plain LayerData in and out, no napari needed."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, read_volume, write_volume
from fibsynth.napari import napari_get_reader, read_fibsynth, write_image, write_labels


@pytest.fixture
def structure():
    rng = np.random.default_rng(3)
    return (rng.random((6, 10, 12)) < 0.3).astype(np.uint8)


def _meta(kind="structure"):
    return VolumeMeta(kind=kind, voxel_size_nm=VoxelSize(x=2.0, y=3.0, z=5.0), generator="lwm", seed=7,
                      parameters={"solid_fraction": 0.3}, energy_kev=None)


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".npy", ""])
def test_reader_round_trip_fibsynth_files(tmp_path, structure, suffix):
    path = write_volume(tmp_path / f"vol{suffix}", structure, _meta())
    reader = napari_get_reader(str(path))
    assert reader is read_fibsynth
    [(data, kwargs, layer_type)] = reader(str(path))
    assert layer_type == "labels"
    assert kwargs["name"] == "vol"
    assert kwargs["scale"] == (5.0, 3.0, 2.0)  # z, y, x
    meta = kwargs["metadata"]["fibsynth"]
    assert meta["kind"] == "structure" and meta["generator"] == "lwm" and meta["seed"] == 7
    assert meta["voxel_size_nm"] == {"x": 2.0, "y": 3.0, "z": 5.0}
    assert meta["parameters"]["solid_fraction"] == 0.3
    np.testing.assert_array_equal(np.asarray(data), structure)


def test_reader_zarr_is_lazy(tmp_path, structure):
    path = write_volume(tmp_path / "big.zarr", structure, _meta())
    [(data, _, _)] = read_fibsynth(path)
    assert type(data).__module__.startswith("dask")


def test_reader_image_kind_and_energy(tmp_path):
    img = np.linspace(0, 1, 2 * 8 * 9, dtype=np.float32).reshape(2, 8, 9)
    meta = _meta("image").model_copy(update={"energy_kev": 2.0, "generator": "montecarlo"})
    path = write_volume(tmp_path / "mc.tif", img, meta)
    [(data, kwargs, layer_type)] = read_fibsynth(str(path))
    assert layer_type == "image"
    assert kwargs["metadata"]["fibsynth"]["energy_kev"] == 2.0
    assert np.allclose(data, img)


def test_reader_label_kind(tmp_path):
    lab = np.zeros((3, 5, 5), np.uint16)
    lab[1, 2:4, 2:4] = 300
    path = write_volume(tmp_path / "lab.npy", lab, _meta("label"))
    [(data, kwargs, layer_type)] = read_fibsynth(str(path))
    assert layer_type == "labels" and data.dtype == np.uint16 and kwargs["metadata"]["fibsynth"]["kind"] == "label"


def test_reader_fiji_style_tiff(tmp_path):
    """A TIFF written as Fiji does (ImageJ hyperstack, micron units, no fibsynth metadata)."""
    img = np.arange(4 * 6 * 7, dtype=np.uint16).reshape(4, 6, 7)
    path = tmp_path / "fiji.tif"
    tifffile.imwrite(path, img, imagej=True, resolution=(1 / 0.004, 1 / 0.005),
                     metadata={"axes": "ZYX", "spacing": 0.01, "unit": "micron"})
    [(data, kwargs, layer_type)] = read_fibsynth(str(path))
    assert layer_type == "image"  # kind unknown: gray values
    assert kwargs["scale"] == pytest.approx((10.0, 5.0, 4.0))
    assert kwargs["metadata"]["fibsynth"]["kind"] is None
    np.testing.assert_array_equal(data, img)


def test_reader_tiff_without_voxel_size_has_no_scale(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((2, 4, 4), np.uint8), photometric="minisblack")
    [(_, kwargs, _)] = read_fibsynth(str(path))
    assert "scale" not in kwargs


def test_get_reader_declines_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bundle.app").mkdir()
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None
    assert napari_get_reader(str(tmp_path / "empty")) is None  # folder without TIFF slices
    assert napari_get_reader(str(tmp_path / "bundle.app")) is None
    assert napari_get_reader([str(tmp_path / "notes.txt"), str(tmp_path / "x.tif")]) is None


def test_reader_several_paths(tmp_path, structure):
    a = write_volume(tmp_path / "a.tif", structure, _meta())
    b = write_volume(tmp_path / "b.npy", structure, _meta())
    layers = napari_get_reader([str(a), str(b)])([str(a), str(b)])
    assert [k["name"] for _, k, _ in layers] == ["a", "b"]


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".npy"])
def test_writer_round_trip_keeps_metadata(tmp_path, structure, suffix):
    """read -> (layer) -> write -> read: the metadata survives and the layer's scale is the voxel size."""
    src = write_volume(tmp_path / "src.tif", structure, _meta())
    [(data, kwargs, layer_type)] = read_fibsynth(src)
    attrs = {**kwargs, "scale": (6.0, 3.0, 2.0)}  # the user changed the slice thickness in the viewer
    written = write_labels(str(tmp_path / f"out{suffix}"), np.asarray(data).astype(np.int32), attrs)
    assert written == [str(tmp_path / f"out{suffix}")]
    vol = read_volume(written[0])
    assert vol.data.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(vol.data), structure)
    assert vol.meta.voxel_size_nm == VoxelSize(x=2.0, y=3.0, z=6.0)
    assert vol.meta.kind == "structure" and vol.meta.generator == "lwm" and vol.meta.seed == 7
    assert vol.meta.parameters["solid_fraction"] == 0.3


def test_writer_image_from_plain_napari_layer(tmp_path):
    """An image layer napari made itself: no fibsynth metadata, scale set by the user, float64 data."""
    img = np.random.default_rng(0).random((3, 8, 8))
    out = write_image(str(tmp_path / "img.tif"), img, {"name": "x", "scale": (10.0, 4.0, 4.0), "metadata": {}})
    vol = read_volume(out[0])
    assert vol.data.dtype == np.float32 and np.allclose(vol.data, img, atol=1e-6)
    assert vol.meta.kind == "image" and vol.meta.generator == "napari"
    assert vol.meta.voxel_size_nm == VoxelSize(x=4.0, y=4.0, z=10.0)


def test_writer_default_scale_means_unknown_voxel(tmp_path):
    out = write_image(str(tmp_path / "img.npy"), np.zeros((2, 3, 3), np.float32), {"scale": (1.0, 1.0, 1.0)})
    assert read_volume(out[0]).meta.voxel_size_nm is None


def test_writer_labels_kind_and_dtype(tmp_path):
    lab = np.zeros((2, 4, 4), np.int64)
    lab[0, 1, 1] = 70000
    out = write_labels(str(tmp_path / "lab.zarr"), lab, {"scale": (1.0, 2.0, 2.0)})
    vol = read_volume(out[0])
    assert vol.meta.kind == "label" and vol.data.dtype == np.uint32 and int(vol.data.max()) == 70000
    with pytest.raises(Exception, match="negative"):
        write_labels(str(tmp_path / "neg.tif"), -lab, {})


def test_writer_rejects_rgb(tmp_path):
    with pytest.raises(Exception, match="RGB"):
        write_image(str(tmp_path / "rgb.tif"), np.zeros((4, 4, 3), np.uint8), {"rgb": True})
