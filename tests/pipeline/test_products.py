"""The pipeline layer: one function per product, one label per product, the z offset of partial stacks carried
through every file format, napari and OME-Zarr, and the one voxel-size normaliser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, read_volume, write_volume
from fibsynth import pipeline


@pytest.fixture(scope="module")
def tiny():
    return pipeline.make_structure((8, 24, 24), 5.0, solid_fraction=0.3, ligament_nm=25.0, seed=4)


# ------------------------------------------------------------------------------------------------ voxel size

def test_voxel_size_one_normaliser_accepts_every_form():
    v = VoxelSize(x=2.0, y=3.0, z=5.0)
    assert VoxelSize.coerce(v) is v
    assert VoxelSize.coerce((5, 3, 2)) == v  # (z, y, x), the arrays' order
    assert VoxelSize.coerce(np.array([5.0, 3.0, 2.0])) == v
    assert VoxelSize.coerce({"x": 2, "y": 3, "z": 5}) == v
    assert VoxelSize.coerce(4) == VoxelSize(x=4, y=4, z=4) == VoxelSize.coerce(np.float32(4.0))
    assert VolumeMeta(voxel_size_nm=(5, 3, 2)).voxel_size_nm == v  # the metadata takes the same forms
    for bad, what in (((1, 2), "three values"), (-1.0, "must be in"), (float("nan"), "must be in"), ("a", "expected"),
                      ({"x": 1}, "mapping"), ((1, 2, "q"), "numbers"), (None, "expected"), (True, "expected")):
        with pytest.raises(FibsynthError, match=what) as ei:
            VoxelSize.coerce(bad, param="spacing")
        assert ei.value.param == "spacing" and "\n" not in str(ei.value)


def test_stages_share_the_normaliser():
    """The old private normalisers (structure, isotropy, correlation, thickness) now accept and refuse alike."""
    from fibsynth.metrics import mean_ligament_diameter
    from fibsynth.metrics.correlation import directional_tpcf
    from fibsynth.metrics.isotropy import common_lags
    from fibsynth.structure import leveled_wave

    a = leveled_wave((8, 16, 16), {"x": 5, "y": 5, "z": 5}, 0.3, 20.0, seed=1)
    b = leveled_wave((8, 16, 16), VoxelSize(x=5, y=5, z=5), 0.3, 20.0, seed=1)
    np.testing.assert_array_equal(a, b)
    assert mean_ligament_diameter(b, VoxelSize(x=5, y=5, z=5)) == mean_ligament_diameter(b, (5, 5, 5))
    lags, _ = directional_tpcf(b, VoxelSize(x=1, y=1, z=7), axis=0, max_lag=2)
    assert np.allclose(lags, [0, 7, 14])
    assert list(common_lags(VoxelSize(x=2, y=2, z=4), 8.0)) == [4.0, 8.0]
    for call in (lambda: leveled_wave((8, 8, 8), (1, 2), 0.3, 20.0), lambda: mean_ligament_diameter(b, (1, 2)),
                 lambda: common_lags(-1.0, 8.0), lambda: directional_tpcf(b, 0.0, axis=0)):
        with pytest.raises(FibsynthError):
            call()


# ------------------------------------------------------------------------------------------------ products

def test_one_label_and_one_phase_record_per_product(tiny):
    assert tiny.meta.kind == "structure" and tiny.meta.generator == "lwm" and tiny.data.dtype == np.uint8
    mc = pipeline.montecarlo_stack(tiny.data, tiny.meta.voxel_size_nm, slices=(3, 5), energy_kev=2.0,
                                   electrons_per_pixel=3, seed=1)
    assert mc.data.shape == (2, 24, 24) and mc.data.dtype == np.float32
    assert mc.meta.generator == pipeline.MONTECARLO == "montecarlo"
    assert mc.meta.materials == pipeline.PHASES == {"0": "epoxy", "1": "gold"}
    assert mc.meta.offset_voxels == (3, 0, 0) and mc.meta.origin_nm() == (15.0, 0.0, 0.0)
    assert mc.meta.parameters["slices"] == [3, 5] and mc.meta.energy_kev == 2.0 and mc.meta.seed == 1
    assert mc.record["std"].shape == (2, 24, 24)

    fast = pipeline.fast_stack(tiny.data, tiny.meta.voxel_size_nm, 2.0, seed=3, keep_projection=True,
                               translation="gan")  # the CycleGAN (no longer the default, issue 15)
    assert fast.meta.generator == pipeline.FAST == "synth" and fast.meta.materials == pipeline.PHASES
    assert fast.meta.parameters["translation_model"] == "proj2mc-2kev-au-epoxy" and fast.meta.seed == 3
    proj = fast.record["projection_product"]
    assert proj.meta.generator == pipeline.PROJECTION and proj.data.shape == tiny.data.shape
    only = pipeline.fast_stack(tiny.data, (5, 5, 5), 4.0, translation="auto")  # none shipped at 4 keV
    assert only.meta.generator == "projection" and "no model" in only.record["translation"]
    np.testing.assert_allclose(pipeline.fast_stack(tiny.data, 5.0, 2.0, translation="projection").data, proj.data)
    with pytest.raises(FibsynthError, match="no shipped translation model") as ei:
        pipeline.fast_stack(tiny.data, 5.0, 4.0, translation="gan")
    assert ei.value.param == "energy_kev"

    otsu = pipeline.baseline_segmentation(mc.data, mc.meta)
    assert otsu.meta.kind == "label" and otsu.meta.generator == pipeline.BASELINE
    assert otsu.meta.offset_voxels == (3, 0, 0)  # labels of a partial stack sit where the stack sits
    scores = pipeline.evaluation(otsu.data, tiny.data[3:5])
    assert 0 <= scores["MDS"] <= 1 and scores["MDS"] > 0.5  # gold is brighter than epoxy: Otsu finds it


def test_mc_stack_command_records_the_offset(tmp_path, tiny):
    from fibsynth.cli import main

    src = tmp_path / "s.tif"
    tiny.write(src)
    out = tmp_path / "mc.tif"
    assert main(["mc", "stack", str(src), str(out), "--energy-kev", "2", "--electrons-per-pixel", "2",
                 "--slices", "5:7"]) == 0
    m = read_volume(out).meta
    assert m.offset_voxels == (5, 0, 0) and m.generator == "montecarlo" and m.materials == pipeline.PHASES


# ------------------------------------------------------------------------------------------------ the offset

@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".npy", ""])
def test_offset_round_trips_in_every_format(tmp_path, suffix):
    meta = VolumeMeta(kind="image", voxel_size_nm=(8.0, 4.0, 4.0), offset_voxels=(64, 0, 2), generator="montecarlo")
    img = np.arange(3 * 5 * 6, dtype=np.float32).reshape(3, 5, 6)
    path = write_volume(tmp_path / f"part{suffix}", img, meta)
    back = read_volume(path)
    assert back.meta.offset_voxels == (64, 0, 2) and back.meta.origin_nm() == (512.0, 0.0, 8.0)
    from fibsynth.napari import read_fibsynth

    [(_, kwargs, _)] = read_fibsynth(str(path))
    assert kwargs["translate"] == (512.0, 0.0, 8.0) and kwargs["scale"] == (8.0, 4.0, 4.0)
    if suffix == ".zarr":
        attrs = json.loads((path / ".zattrs").read_text())
        ts = attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"]
        assert ts == [{"type": "scale", "scale": [8.0, 4.0, 4.0]}, {"type": "translation", "translation": [512.0, 0.0, 8.0]}]
        # another tool's OME-Zarr: the translation alone (no fibsynth attribute) gives the offset
        del attrs["fibsynth"]
        (path / ".zattrs").write_text(json.dumps(attrs))
        assert read_volume(path).meta.offset_voxels == (64, 0, 2)


def test_whole_volumes_have_no_translate(tmp_path, tiny):
    from fibsynth.napari import read_fibsynth

    path = tiny.write(tmp_path / "s.zarr")
    [(_, kwargs, _)] = read_fibsynth(str(path))
    assert "translate" not in kwargs and read_volume(path).meta.offset_voxels is None
    attrs = json.loads((path / ".zattrs").read_text())
    assert len(attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"]) == 1


def test_napari_writer_takes_the_offset_from_translate(tmp_path):
    from fibsynth.napari import write_image

    img = np.zeros((2, 4, 4), np.float32)
    meta = VolumeMeta(kind="image", voxel_size_nm=(5.0, 2.0, 2.0), offset_voxels=(3, 0, 0))
    attrs = {"scale": (5.0, 2.0, 2.0), "translate": (15.0, 0.0, 0.0), "metadata": {"fibsynth": meta.model_dump(mode="json")}}
    [p] = write_image(str(tmp_path / "a.tif"), img, attrs)
    assert read_volume(p).meta.offset_voxels == (3, 0, 0)
    [p] = write_image(str(tmp_path / "b.tif"), img, {**attrs, "translate": (25.0, 4.0, 0.0)})  # moved in the viewer
    assert read_volume(p).meta.offset_voxels == (5, 2, 0)
    [p] = write_image(str(tmp_path / "c.tif"), img, {"scale": (5.0, 2.0, 2.0), "translate": (0.0, 0.0, 0.0)})
    assert read_volume(p).meta.offset_voxels is None


@pytest.mark.parametrize("kw, param, words", [
    ({"translation": "bogus"}, "translation", "must be best, auto, gan, paired or projection"),
    ({"seed": -1}, "seed", "must be in [0, 2^63)"),
    ({"seed": 2**63}, "seed", "must be in [0, 2^63)"),
    ({"detector": "se", "pore": "vacuum", "translation": "bogus"}, "translation", "must be best, auto"),
    ({"detector": "se", "pore": "vacuum", "translation": "gan"}, "translation", "no CycleGAN exists for se"),
    ({"detector": "se", "pore": "vacuum", "seed": -1}, "seed", "must be in [0, 2^63)"),
    ({"materials": ["epoxy", "Au", "Ni"], "translation": "projection", "seed": -1}, "seed", "must be in [0, 2^63)"),
])
def test_fast_stack_refuses_translation_and_seed_in_one_line(kw, param, words):
    """Every path of fast_stack (BSE, SE, one material per label) refuses an unknown translation and a seed outside
    [0, 2^63) before any work, naming the parameter."""
    vol = np.zeros((4, 16, 16), np.uint8)
    vol[:, :, 8:] = 1 if "materials" not in kw else 2
    vol[:, 8:, :8] = 1
    with pytest.raises(FibsynthError) as e:
        pipeline.fast_stack(vol, 5.0, 2.0, **kw)
    assert e.value.param == param and words in e.value.message, e.value.message
