"""`fibsynth synth`: projection + shipped CycleGAN in one step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fibsynth.cli import main
from fibsynth.io import read_volume, write_volume
from fibsynth.structure import leveled_wave


def test_synth_with_the_shipped_model(tmp_path: Path, capsys) -> None:
    solid, model = leveled_wave((12, 48, 48), 5.0, 0.3, 40.0, seed=4, return_model=True)
    src = tmp_path / "s.tif"
    write_volume(src, solid, model.meta())
    out, proj = tmp_path / "mc_like.tif", tmp_path / "proj.tif"
    assert main(["synth", str(src), str(out), "--energy-kev", "2", "--projection-out", str(proj)]) == 0
    img = read_volume(out)
    assert img.data.shape == solid.shape and img.data.dtype == np.float32
    assert img.meta.kind == "image" and img.meta.energy_kev == 2.0
    assert img.meta.parameters["translation_model"] == "proj2mc-2kev-au-epoxy"
    assert img.meta.voxel_size_nm == model.meta().voxel_size_nm
    assert np.isfinite(img.data).all()
    # the translated image keeps the structure: gold on the face is brighter than pore, in every slice
    gold = solid.astype(bool)
    assert all(img.data[k][gold[k]].mean() > img.data[k][~gold[k]].mean() for k in range(solid.shape[0]))
    assert read_volume(proj).meta.generator == "projection"


def test_synth_without_a_model_for_that_energy(tmp_path: Path, capsys) -> None:
    src = tmp_path / "s.tif"
    solid, model = leveled_wave((4, 32, 32), 5.0, 0.3, 40.0, seed=1, return_model=True)
    write_volume(src, solid, model.meta())
    assert main(["synth", str(src), str(tmp_path / "o.tif"), "--energy-kev", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no shipped translation model" in err[0] and "fibsynth gan train" in err[0]
    assert not (tmp_path / "o.tif").exists()
