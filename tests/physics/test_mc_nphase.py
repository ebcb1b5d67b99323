"""One material per label in the Monte Carlo stack (issue 17, item 2): n-phase stacks, the binary form kept."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, read_volume, write_volume
from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
from fibsynth.physics.montecarlo.setup import stack_materials
from fibsynth.physics.montecarlo.stack import simulate_stack

VOXEL = VoxelSize.coerce(5.0)


def _settings(n_e: int = 40, **geometry) -> StackSettings:
    return StackSettings(beam=Beam(energy_kev=2.0), geometry=StackGeometry(**geometry), electrons_per_pixel=n_e,
                         seed=7)


def test_two_labels_identical_to_binary():
    rng = np.random.default_rng(1)
    vol = (rng.random((3, 8, 8)) < 0.4).astype(np.uint8)
    binary = simulate_stack(vol, VOXEL, _settings(), slices=(0, 2), progress=False)
    labels = simulate_stack(vol, VOXEL, _settings(materials=["epoxy", "gold"]), slices=(0, 2), progress=False)
    assert np.array_equal(binary["eta"], labels["eta"]) and np.array_equal(binary["std"], labels["std"])
    assert np.array_equal(binary["energy_hist"], labels["energy_hist"])
    # the binary record did not change; the label form records its list
    assert "materials" not in _settings().record()
    assert _settings(materials=["epoxy", "gold"]).record()["materials"] == ["epoxy", "gold"]


def test_three_phase_gray_values_follow_bulk_eta():
    # three wide stripes (along y) of epoxy, Ni and Au, the same through z: each pixel's gray value is mostly its
    # own phase's backscatter, so the per-phase means are ordered as the materials' bulk eta (epoxy < Ni < Au)
    vol = np.zeros((2, 12, 12), np.uint8)
    vol[:, 4:8] = 2  # Ni
    vol[:, 8:] = 1  # Au
    res = simulate_stack(vol, VOXEL, _settings(n_e=60, materials=["epoxy", "Au", "Ni"]), slices=(0, 1),
                         progress=False)
    img = res["eta"][0]
    face = vol[0]
    inner = np.zeros_like(face, bool)
    inner[:, 1:3] = inner[:, 5:7] = inner[:, 9:11] = True  # pixels away from the phase boundaries
    mean = {lab: float(img[(face == lab) & inner].mean()) for lab in (0, 1, 2)}
    assert mean[0] < mean[2] < mean[1]
    # published magnitudes at 2 keV (carbon-like epoxy ~0.05-0.1, Ni ~0.3, Au ~0.45): well separated
    assert mean[2] - mean[0] > 0.1 and mean[1] - mean[2] > 0.05


def test_geometry_validation_one_line():
    with pytest.raises(FibsynthError, match="not both") as e:
        StackGeometry(materials=["epoxy", "Au", "Ni"], solid="Pt")
    assert e.value.param == "materials"
    with pytest.raises(FibsynthError, match="ambiguous") as e:
        StackGeometry(materials=["epoxy", "Au", "Ni"], backing="solid")
    assert e.value.param == "backing"
    assert StackGeometry(materials=["epoxy", "Au"], backing="solid").n_labels == 2
    with pytest.raises(Exception, match="one material per label"):
        StackGeometry(materials=["epoxy"])
    # materials resolved per label; a backing material after them
    mats, backing, repeat = stack_materials(_settings(materials=["epoxy", "Au", "Ni"], backing="silicon"))
    assert [m.name for m in mats] == ["epoxy", "Au", "Ni", "silicon"] and backing == 3 and not repeat
    # open pores with two solids: vacuum may be any label's material, not all of them
    mats, _, _ = stack_materials(_settings(materials=["vacuum", "Au", "Ni"]))
    assert mats[0].is_vacuum and not mats[1].is_vacuum
    assert StackGeometry(materials=["vacuum", "Au", "Ni"]).open_pores
    with pytest.raises(FibsynthError, match="every label is vacuum"):
        stack_materials(_settings(materials=["vacuum", "vacuum"]))
    # labels beyond the materials: refused before any work, naming what to give
    vol = np.zeros((2, 4, 4), np.uint8)
    vol[0, 0, 0] = 2
    with pytest.raises(FibsynthError, match="binary") as e:
        simulate_stack(vol, VOXEL, _settings(), progress=False)
    assert "materials" in str(e.value)
    vol[0, 0, 0] = 3
    with pytest.raises(FibsynthError, match="labels up to 3 but 3 materials"):
        simulate_stack(vol, VOXEL, _settings(materials=["epoxy", "Au", "Ni"]), progress=False)
    # flat keywords merge into a given geometry without its defaults (no false "not both")
    s = StackSettings(geometry=StackGeometry(materials=["epoxy", "Au", "Ni"]), energy_kev=2, electrons_per_pixel=5)
    assert s.geometry.n_labels == 3
    # the settings travel to dask workers as JSON: both forms validate back; the binary dump has no materials key
    assert StackSettings.model_validate_json(s.model_dump_json()) == s
    assert "materials" not in _settings().model_dump()["geometry"]
    assert StackSettings.model_validate_json(_settings().model_dump_json()) == _settings()


def test_stack_cli_materials(tmp_path, capsys):
    s = np.zeros((3, 6, 6), np.uint8)
    s[1:, :3] = 1
    s[1:, 4:] = 2
    src = tmp_path / "s.npy"
    write_volume(src, s, VolumeMeta(kind="structure", voxel_size_nm=VoxelSize.from_xy_z(5, 5)))
    out = tmp_path / "img.npy"
    rc = main(["mc", "stack", str(src), str(out), "--energy-kev", "2", "--electrons-per-pixel", "10",
               "--slices", "1:2", "--workers", "1", "--materials", "epoxy,Au,Ni"])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    v = read_volume(out)
    assert v.meta.materials == {"0": "epoxy", "1": "Au", "2": "Ni"}
    assert v.meta.parameters["materials"] == ["epoxy", "Au", "Ni"]
    # the materials a structure's metadata records for its labels are used when none are given, and give the
    # same image as giving them
    rec = tmp_path / "rec.npy"
    write_volume(rec, s, VolumeMeta(kind="structure", voxel_size_nm=VoxelSize.from_xy_z(5, 5),
                                    materials={"0": "epoxy", "1": "Au", "2": "Ni"}))
    rc = main(["mc", "stack", str(rec), str(tmp_path / "rec_img.npy"), "--energy-kev", "2",
               "--electrons-per-pixel", "10", "--slices", "1:2", "--workers", "1"])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    assert np.array_equal(read_volume(tmp_path / "rec_img.npy").data, v.data)
    # a 3-label structure without --materials, or with too few: one line naming the flag
    for extra in ([], ["--materials", "epoxy,Au"]):
        rc = main(["mc", "stack", str(src), str(tmp_path / "x.npy"), "--energy-kev", "2", "--electrons-per-pixel",
                   "5", "--workers", "1", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, err
        assert ("--materials" in err) if not extra else ("0..1" in err), err
    rc = main(["mc", "stack", str(src), str(tmp_path / "x.npy"), "--energy-kev", "2", "--electrons-per-pixel", "5",
               "--materials", "epoxy,Au,Ni", "--solid", "Pt"])
    err = capsys.readouterr().err
    assert rc == 2 and "--materials" in err and "not both" in err
    assert not (tmp_path / "x.npy").exists()
