"""The fast path's default translation (issue 15): the paired translator wherever it is valid (gold/epoxy at the
energies it was trained on), else the CycleGAN with a note saying why; ``gan`` stays selectable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fibsynth import pipeline
from fibsynth.errors import FibsynthError
from fibsynth.fastsim.translator import load_paired
from fibsynth.structure import leveled_wave


@pytest.fixture(scope="module")
def small():
    return leveled_wave((4, 32, 32), 5.0, 0.3, 40.0, seed=5)


def test_default_is_the_paired_translator_where_it_is_trained(small):
    lo, hi = load_paired().energy_range
    for e in (lo, 2.0, hi):
        assert pipeline.best_translation(e)[0] == "paired"
    default = pipeline.fast_stack(small, 5.0, 2.0, seed=4, electrons_per_pixel=50)
    paired = pipeline.fast_stack(small, 5.0, 2.0, seed=4, electrons_per_pixel=50, translation="paired")
    np.testing.assert_array_equal(default.data, paired.data)  # the same engine, the same shot noise
    assert default.meta.parameters["translator"] == "paired" and default.meta.parameters["electrons_per_pixel"] == 50
    assert "paired translator" in default.meta.parameters["translation_choice"]
    assert "translation_choice" not in paired.record  # asked for explicitly: nothing to explain
    # the CycleGAN stays selectable and differs
    gan = pipeline.fast_stack(small, 5.0, 2.0, seed=4, translation="gan")
    assert gan.meta.parameters["translation_model"] == "proj2mc-2kev-au-epoxy"
    assert not np.array_equal(gan.data, default.data)


def test_default_falls_back_with_a_note(small):
    lo, hi = load_paired().energy_range
    # outside the trained energies: as gan, and no CycleGAN is shipped there either -> one error naming both
    with pytest.raises(FibsynthError) as ei:
        pipeline.fast_stack(small, 5.0, hi + 3.0)
    msg = str(ei.value.message)
    assert "no shipped translation model" in msg and "paired translator" in msg and f"{lo:g}-{hi:g} keV" in msg
    assert ei.value.param == "energy_kev" and "\n" not in msg
    # another material pair: the note names the pair the paired translator is trained for
    how, why = pipeline.best_translation(2.0, "gold", "vacuum")
    assert how == "gan" and "gold/epoxy" in why
    # a CycleGAN given as model: that model, as before
    assert pipeline.best_translation(2.0, model="some/model")[0] == "gan"
    assert pipeline.best_translation(2.0, materials=["epoxy", "Au", "Ni"])[0] == "gan"
    with pytest.raises(FibsynthError, match="auto, gan, paired or projection"):
        pipeline.fast_stack(small, 5.0, 2.0, translation="cyclegan")  # type: ignore[arg-type]


def test_synth_cli_and_experiment_step_default_to_paired(tmp_path: Path, capsys, small) -> None:
    from fibsynth.cli import main
    from fibsynth.experiment.steps import FastParams
    from fibsynth.io import read_volume, write_volume
    from fibsynth.io.metadata import VolumeMeta

    assert FastParams(energy_kev=2).translation == "best"
    src = tmp_path / "s.tif"
    write_volume(src, small, VolumeMeta(kind="structure", voxel_size_nm=5.0))
    assert main(["synth", str(src), str(tmp_path / "o.tif"), "--energy-kev", "1", "--electrons-per-pixel", "30"]) == 0
    meta = read_volume(tmp_path / "o.tif").meta
    assert meta.parameters["translator"] == "paired" and meta.parameters["electrons_per_pixel"] == 30
    assert "paired translator" in capsys.readouterr().err
