"""The output rule: fibsynth replaces only its own outputs, never an input (fibsynth.io.outputs)."""

import numpy as np
import pytest
import tifffile

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, atomic_path, check_output, owner_problem, write_volume

META = VolumeMeta(kind="image", voxel_size_nm=VoxelSize(x=2, y=2, z=2))


@pytest.mark.parametrize("name,dtype", [("a.tif", np.uint8), ("b.tif", np.int16), ("c.npy", np.float32),
                                        ("d", np.uint16), ("e.zarr", np.uint8)])
def test_own_outputs_may_be_replaced(tmp_path, name, dtype):
    p = tmp_path / name
    write_volume(p, np.ones((2, 3, 3), dtype), META)
    assert owner_problem(p) is None
    write_volume(p, np.zeros((2, 3, 3), dtype), META)  # replaced
    assert check_output(p) == p


def test_foreign_things_are_refused_and_kept(tmp_path):
    tifffile.imwrite(tmp_path / "raw.tif", np.ones((2, 3, 3), np.uint8))
    np.save(tmp_path / "raw.npy", np.ones(3))
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("x")
    (tmp_path / "x.zarr").mkdir()
    (tmp_path / "plain").write_text("x")
    (tmp_path / "link.tif").symlink_to(tmp_path / "raw.tif")
    for name, why in [("raw.tif", "TIFF that fibsynth did not write"), ("raw.npy", ".npy that fibsynth did not"),
                      ("folder", "notes.txt"), ("x.zarr", "Zarr store"), ("plain", "existing file"),
                      ("link.tif", "symbolic link")]:
        assert why in owner_problem(tmp_path / name)
        with pytest.raises(FibsynthError, match="replaces only its own outputs"):
            write_volume(tmp_path / name, np.ones((2, 3, 3), np.uint8), META)
    assert (tmp_path / "folder" / "notes.txt").read_text() == "x"
    assert tifffile.imread(tmp_path / "raw.tif").sum() == 18


def test_atomic_path_never_deletes_a_foreign_folder(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    (d / "mine.txt").write_text("keep")
    with pytest.raises(FibsynthError, match="did not write"):
        with atomic_path(d) as tmp:
            tmp.mkdir()
    assert (d / "mine.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_path(d, may_replace=lambda p: True) as tmp:  # a caller that owns the place (the run cache)
        tmp.mkdir()
    assert list(d.iterdir()) == []


def test_output_against_inputs(tmp_path):
    inp = tmp_path / "in.tif"
    write_volume(inp, np.ones((1, 2, 2), np.uint8), META)
    (tmp_path / "slices").mkdir()
    with pytest.raises(FibsynthError, match="is also an input"):
        check_output(tmp_path / "." / "in.tif", inputs=[inp])
    with pytest.raises(FibsynthError, match="holds the input"):
        check_output(tmp_path, inputs=[inp])
    with pytest.raises(FibsynthError, match="inside the input folder"):
        check_output(tmp_path / "slices" / "o.tif", inputs=[tmp_path / "slices"])
    with pytest.raises(FibsynthError, match="sidecar"):
        check_output(tmp_path / "v.npy.json", kind="file", inputs=[tmp_path / "v.npy"])
    with pytest.raises(FibsynthError, match="ending in .md"):
        check_output(tmp_path / "t.tif", kind="file", suffixes=(".md",))
    with pytest.raises(FibsynthError, match="unknown suffix"):
        check_output(tmp_path / "o.bmp")
    with pytest.raises(FibsynthError, match="does not exist"):
        check_output(tmp_path / "nope" / "o.tif")
    assert check_output(tmp_path / "o.tif", inputs=[inp, None]) == tmp_path / "o.tif"
