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
    assert main(["synth", str(src), str(out), "--energy-kev", "2", "--projection-out", str(proj),
                 "--translation", "gan"]) == 0  # the CycleGAN is no longer the default (issue 15): ask for it
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


def test_synth_paired_translator_at_4kev_and_its_dose(tmp_path: Path, capsys) -> None:
    """--translation paired works where no CycleGAN is shipped (4 keV); its shot noise follows the dose."""
    solid, model = leveled_wave((4, 40, 40), 5.0, 0.3, 40.0, seed=2, return_model=True)
    src = tmp_path / "s.tif"
    write_volume(src, solid, model.meta())
    outs = {}
    for dose in (20, 2000):
        out = tmp_path / f"p{dose}.tif"
        assert main(["synth", str(src), str(out), "--energy-kev", "4", "--translation", "paired",
                     "--electrons-per-pixel", str(dose), "--seed", "3"]) == 0
        outs[dose] = read_volume(out)
    img = outs[20]
    assert img.meta.parameters["translator"] == "paired" and img.meta.parameters["electrons_per_pixel"] == 20
    gold = solid.astype(bool)
    assert all(img.data[k][gold[k]].mean() > img.data[k][~gold[k]].mean() for k in range(solid.shape[0]))
    # binomial shot noise about one mean image: the difference of the two doses scatters as
    # sqrt(m (1 - m) (1/20 + 1/2000)), m the mean yield (the 2000-electron image is nearly m)
    m = np.clip(outs[2000].data, 0.0, 1.0)
    expected = float(np.sqrt(np.mean(m * (1 - m) * (1 / 20 + 1 / 2000))))
    diff = float(np.std(outs[20].data - outs[2000].data))
    assert 0.75 * expected < diff < 1.33 * expected, (diff, expected)
    assert abs(float(outs[20].data.mean()) - float(outs[2000].data.mean())) < 0.02
    assert main(["synth", str(src), str(tmp_path / "bad.tif"), "--energy-kev", "4", "--translation", "paired",
                 "--electrons-per-pixel", "-1"]) == 2
    assert not (tmp_path / "bad.tif").exists()
