"""Structures of three or more phases (issue 17, item 2): label volumes 0..n-1 with their phases recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, read_labels, read_volume, write_volume
from fibsynth.structure import import_labels, multiphase, phase_fractions

SHAPE = (24, 32, 32)


def test_two_field_fractions_seed_and_metadata():
    lab, model = multiphase(SHAPE, 4.0, (0.4, 0.35, 0.25), ligament_nm=(16, 20), seed=3, return_model=True)
    assert lab.dtype == np.uint8 and set(np.unique(lab).tolist()) == {0, 1, 2}
    f = phase_fractions(lab, 3)
    # field A is leveled exactly on this volume (pore = 0.4); field B splits the solid with its own level
    assert abs(f[0] - 0.4) < 0.01 and abs(f[1] - 0.35) < 0.05 and abs(f[2] - 0.25) < 0.05
    meta = model.meta()
    assert meta.generator == "multiphase" and meta.kind == "structure" and meta.seed == 3
    assert meta.materials == {"0": "epoxy", "1": "Ni", "2": "Zr0.852Y0.148O1.926:5.9"}
    assert np.allclose(meta.parameters["fractions_measured"], f)
    assert np.array_equal(lab, multiphase(SHAPE, 4.0, (0.4, 0.35, 0.25), ligament_nm=(16, 20), seed=3))
    assert not np.array_equal(lab, multiphase(SHAPE, 4.0, (0.4, 0.35, 0.25), ligament_nm=(16, 20), seed=4))
    # label 1 + 2 is exactly the single-field solid network of field A (the split does not move the pore)
    assert np.array_equal(lab > 0, model.fields[0].solid().astype(bool))


def test_particles_in_matrix():
    lab, model = multiphase(SHAPE, 4.0, (0.6, 0.25, 0.15), kind="particles", particle_radius_nm=(12, 8),
                            phases=("epoxy", "Au", "Ni"), seed=1, return_model=True)
    f = phase_fractions(lab, 3)
    one_sphere = (4 / 3 * np.pi * 3**3) / lab.size  # overshoot: at most one sphere of the phase
    assert 0.25 <= f[1] <= 0.25 + one_sphere + 1e-9 and 0.15 <= f[2] <= 0.15 + 0.5 * one_sphere + 1e-9
    assert model.meta().materials == {"0": "epoxy", "1": "Au", "2": "Ni"}
    # spheres: the largest inscribed ball of label 1 has about the requested radius (3 voxels)
    from scipy import ndimage

    r = ndimage.distance_transform_edt(np.pad(lab == 1, 1, mode="wrap")).max()
    assert 2.5 <= r <= 4.5


@pytest.mark.parametrize("kw, param, text", [
    (dict(fractions=(0.5, 0.3, 0.3)), "fractions", "sum to 1"),
    (dict(fractions=(0.5, 0.5)), "fractions", "3 fractions"),
    (dict(fractions=(0.4, 0.3, 0.3), phases=("a", "b")), "phases", "one phase per label"),
    (dict(fractions=(0.4, 0.3, 0.3), ligament_nm=(4,)), "ligament_nm", "under 2 voxels"),
    (dict(fractions=(0.4, 0.3, 0.3), kind="particles", particle_radius_nm=(8, 8, 8)), "particle_radius_nm", "one radius"),
])
def test_bad_inputs_one_line(kw, param, text):
    with pytest.raises(FibsynthError, match=text) as e:
        multiphase(SHAPE, 4.0, **kw)
    assert e.value.param == param and "\n" not in str(e.value)


def test_import_labels_and_cli(tmp_path, capsys):
    lab = np.zeros((4, 6, 6), np.int32)
    lab[:, 2:4] = 1
    lab[:, 4:] = 2
    src = tmp_path / "user.npy"
    np.save(src, lab)
    info = import_labels(src, tmp_path / "s.tif", voxel_nm=5.0, phases=["epoxy", "Au", "Ni"])
    assert info["n_phases"] == 3 and np.allclose(info["fractions"], [1 / 3] * 3)
    v = read_volume(tmp_path / "s.tif")
    assert v.data.dtype == np.uint8 and np.array_equal(v.data, lab)
    assert v.meta.materials == {"0": "epoxy", "1": "Au", "2": "Ni"} and v.meta.voxel_size_nm.x == 5.0
    # refused in one line: a missing label, negative labels, gray values, a phase list of the wrong length
    for bad, text in ((np.where(lab == 1, 3, lab), "absent"), (lab - 1, "0..254"), (lab * 0.5, "integers")):
        np.save(src, bad)
        with pytest.raises(FibsynthError, match=text):
            import_labels(src, tmp_path / "x.tif", voxel_nm=5.0)
    np.save(src, lab)
    with pytest.raises(FibsynthError, match="one phase per label"):
        import_labels(src, tmp_path / "x.tif", voxel_nm=5.0, phases=["epoxy", "Au"])
    assert not (tmp_path / "x.tif").exists()
    # the CLI
    rc = main(["structure", "import", str(src), str(tmp_path / "c.npy"), "--voxel-nm", "5", "--labels",
               "--phases", "epoxy,Au,Ni", "--json"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["n_phases"] == 3
    assert read_labels(tmp_path / "c.npy", n=3).meta.materials["2"] == "Ni"
    with pytest.raises(FibsynthError, match=r"0\.\.1"):
        read_labels(tmp_path / "c.npy", n=2)
    rc = main(["structure", "import", str(src), str(tmp_path / "d.npy"), "--voxel-nm", "5"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "binary" in err


def test_multiphase_cli(tmp_path, capsys):
    out = tmp_path / "m.npy"
    rc = main(["structure", "multiphase", str(out), "--shape", "16", "24", "24", "--voxel-nm", "4", "--kind",
               "particles", "--fractions", "0.6,0.3,0.1", "--radius-nm", "10,6", "--phases", "epoxy,Au,Ni",
               "--seed", "2", "--json"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    v = read_volume(out)
    assert v.meta.generator == "multiphase" and v.meta.materials == {"0": "epoxy", "1": "Au", "2": "Ni"}
    assert np.allclose(summary["fractions_measured"], phase_fractions(v.data, 3))
    rc = main(["structure", "multiphase", str(tmp_path / "n.npy"), "--shape", "16", "24", "24", "--voxel-nm", "4",
               "--fractions", "0.6,0.3,0.3"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--fractions" in err and "sum to 1" in err
    rc = main(["structure", "multiphase", str(tmp_path / "n.npy"), "--shape", "16", "24", "24", "--voxel-nm", "4",
               "--kind", "particles", "--fractions", "0.6,0.4", "--radius-nm", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and "--radius-nm" in err, err
    assert not (tmp_path / "n.npy").exists()
    # a user volume written with fibsynth metadata but bad labels, read as labels: one line
    write_volume(tmp_path / "f.npy", np.full((2, 3, 3), 0.5, np.float32), VolumeMeta(voxel_size_nm=VoxelSize.coerce(1)))
    with pytest.raises(FibsynthError):
        read_labels(tmp_path / "f.npy")
