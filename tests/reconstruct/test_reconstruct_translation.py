"""Which fast-path translation reconstruct's training images get (generate.image_structure)."""

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.reconstruct import generate as G
from fibsynth.reconstruct.settings import ReconstructSettings
from fibsynth.structure import leveled_wave

VOX = (8.0, 4.0, 4.0)


@pytest.fixture(scope="module")
def solid():
    return leveled_wave((6, 48, 48), VOX, 0.3, 30.0, seed=3)


def test_auto_uses_the_paired_translator_for_gold_epoxy(solid):
    img, rec = G.image_structure(solid, VOX, 2.0)
    assert "paired translator" in rec["engine"]
    # the expected (noise-free) image: gold brighter than epoxy, in backscatter-yield units
    assert img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0
    assert img[solid.astype(bool)].mean() > img[~solid.astype(bool)].mean() + 0.1
    again, _ = G.image_structure(solid, VOX, 2.0, seed=99)
    np.testing.assert_array_equal(img, again)  # no noise: the augmentation adds the real stack's


def test_auto_falls_back_where_the_paired_translator_does_not_apply(solid):
    _, rec = G.image_structure(solid, VOX, 2.0, materials=("gold", "vacuum"))
    assert "paired" not in rec["engine"]
    _, rec = G.image_structure(solid, VOX, 2.0, translation="cyclegan")
    assert "CycleGAN" in rec["engine"]
    _, rec = G.image_structure(solid, VOX, 2.0, translation="projection")
    assert "projection" in rec["engine"] and "paired" not in rec["engine"]


def test_explicit_paired_outside_its_training_is_refused_naming_the_parameter(solid):
    with pytest.raises(FibsynthError) as e:
        G.image_structure(solid, VOX, 8.0, translation="paired")
    assert e.value.param == "energy_kev"
    with pytest.raises(FibsynthError) as e:
        G.image_structure(solid, VOX, 2.0, translation="nonsense")
    assert e.value.param == "translation"
    with pytest.raises(Exception):
        ReconstructSettings(translation="nonsense")
