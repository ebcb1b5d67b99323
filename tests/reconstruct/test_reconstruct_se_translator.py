"""``fibsynth reconstruct``'s fast SE images of open pores: the shipped paired SE translator where it applies (its
detector, solid, energy and incidence -- in-lens, silicon/vacuum, 2 keV, 38 degrees), else the SE projection; which
one and why is recorded in the training data's records, the summary, the report and the segmentation's metadata.
BSE training images are untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.errors import FibsynthError
from fibsynth.fastsim import load_paired
from fibsynth.reconstruct import generate as G
from fibsynth.reconstruct.settings import ReconstructSettings, check_imaging
from fibsynth.structure import leveled_wave

VZ = (5.0, 5.0, 5.0)  # the translator's training voxels
SI = ("silicon", "vacuum")


@pytest.fixture(scope="module")
def s():
    return leveled_wave((8, 32, 32), VZ, 0.4, 40.0, seed=4).astype(np.uint8)


def test_inlens_training_images_at_2kev_come_from_the_translator(s):
    img, rec = G.image_structure(s, VZ, 2.0, materials=SI, detector="inlens", seed=3)
    assert rec["translation"] == "paired" and "paired SE translator" in rec["engine"]
    assert rec["model"] == "paired_translator_se.pt" and "2 keV" in rec["translation_choice"]
    # exactly the translator's expected (noise-free) image: the augmentation adds the real stack's noise
    _, mean = load_paired(detector="inlens")(s, VZ, 2.0, electrons_per_pixel=0, seed=0, solid="silicon",
                                             pore="vacuum", detector="inlens")
    np.testing.assert_array_equal(img, mean)
    assert img.dtype == np.float32 and img.shape == s.shape and img.min() >= 0.0
    face = s.astype(bool)
    assert img[face].mean() > img[~face].mean()  # the silicon face brighter than what is seen down the pores
    proj, prec = G.image_structure(s, VZ, 2.0, materials=SI, detector="inlens", translation="projection")
    assert prec["translation"] == "projection" and "as asked" in prec["translation_choice"]
    assert "SE projection of open pores" in prec["engine"] and "translator" not in prec["engine"]
    assert not np.allclose(img, proj) and np.corrcoef(img.ravel(), proj.ravel())[0, 1] > 0.5


def test_elsewhere_the_se_projection_is_used_and_the_reason_recorded(s):
    assert G.se_translation("auto", 2.0, SI, "inlens")[0] == "paired"
    assert G.se_translation("paired", 2.0, SI, "inlens")[0] == "paired"
    for args, words in [((3.0, SI, "inlens"), "3 keV"), ((2.0, ("gold", "vacuum"), "inlens"), "silicon/vacuum"),
                        ((2.0, SI, "se"), "se detector")]:
        use, why = G.se_translation("auto", *args)
        assert use == "projection" and "does not apply" in why and words in why, why
    img, rec = G.image_structure(s[:3], VZ, 3.0, materials=SI, detector="inlens")
    assert rec["translation"] == "projection" and "3 keV" in rec["translation_choice"]
    assert "SE projection of open pores" in rec["engine"] and img.shape == (3, 32, 32)


def test_paired_where_it_does_not_apply_is_refused_in_one_line_naming_the_parameter(s):
    for args, param in [(("paired", 3.0, SI, "inlens"), "translation"),
                        (("paired", 2.0, ("gold", "vacuum"), "inlens"), "translation"),
                        (("paired", 2.0, SI, "se"), "translation"),
                        (("cyclegan", 2.0, SI, "inlens"), "translation"),
                        (("nonsense", 2.0, SI, "inlens"), "translation"),
                        (("auto", 2.0, ("silicon", "epoxy"), "inlens"), "detector"),
                        (("auto", 2.0, SI, "et"), "detector")]:
        with pytest.raises(FibsynthError) as e:
            G.se_translation(*args)
        assert e.value.param == param and "\n" not in str(e.value), (args, e.value)
    with pytest.raises(FibsynthError) as e:
        G.image_structure(s, VZ, 3.0, materials=SI, detector="inlens", translation="paired")
    assert e.value.param == "translation" and "3 keV" in str(e.value)
    # the settings accept paired for SE; the energy-dependent refusal comes before any step runs
    st = ReconstructSettings(detector="inlens", pore="vacuum", solid="silicon", translation="paired")
    check_imaging(st, 2.0)
    with pytest.raises(FibsynthError) as e:
        check_imaging(st, 3.0)
    assert e.value.param == "translation"
    with pytest.raises(FibsynthError) as e:
        ReconstructSettings(detector="inlens", pore="vacuum", translation="cyclegan")
    assert e.value.param == "translation"


def test_bse_training_images_are_unchanged(s):
    """The BSE branch: the paired (BSE) translator's expected image, with the record it always had."""
    img, rec = G.image_structure(s, VZ, 2.0)
    assert set(rec) == {"engine", "model"} and rec["model"] == load_paired().weights.name
    _, mean = load_paired()(s, VZ, 2.0, electrons_per_pixel=0, seed=0, solid="gold", pore="epoxy")
    np.testing.assert_array_equal(img, mean)


def _stack(path, shape=(8, 40, 40), epp=50):
    """A tiny in-lens SE stack of silicon with open pores: the translator itself with its shot noise."""
    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume

    truth = leveled_wave(shape, VZ, 0.45, 40.0, seed=8).astype(np.uint8)
    noisy, _ = load_paired(detector="inlens")(truth, VZ, 2.0, electrons_per_pixel=epp, seed=1, solid="silicon",
                                              pore="vacuum", detector="inlens")
    u8 = np.clip(20 + 150 * noisy, 0, 255).astype(np.uint8)
    write_volume(path, u8, VolumeMeta(kind="image", voxel_size_nm=VoxelSize.from_xy_z(5, 5), energy_kev=2.0))
    return path


def test_reconstruct_records_the_se_translation(tmp_path, capsys):
    """End to end: an in-lens silicon/vacuum stack at 2 keV gets translator-made training images; the summary,
    the generate step's records, the segmentation's metadata and the report say so and why. ``paired`` at 3 keV:
    one line naming --translation, exit 2, nothing written."""
    from fibsynth.io import read_volume

    stack = _stack(tmp_path / "si.tif")
    out = tmp_path / "out"
    common = ["--pore", "vacuum", "--solid", "silicon", "--detector", "inlens", "--quiet"]
    assert main(["reconstruct", str(stack), str(tmp_path / "bad"), *common, "--translation", "paired",
                 "--energy-kev", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fibsynth: error:") and "\n" not in err and "--translation" in err and "3 keV" in err, err
    assert not (tmp_path / "bad").exists()
    rc = main(["reconstruct", str(stack), str(out), *common, "--structures", "1", "--val-structures", "1",
               "--synth-slices", "8", "--synth-side", "32", "--seg-steps", "2", "--seg-seeds", "1",
               "--no-reestimate", "--seed", "3"])
    assert rc == 0
    summ = json.loads((out / "summary.json").read_text())
    se = summ["se_translation"]
    assert se["translation"] == "paired" and se["detector"] == "inlens" and "2 keV" in se["why"]
    assert se["translator"]["materials"] == ["silicon", "vacuum"] and "measured" in se["translator"]
    recs = summ["rounds"][0]["structures"]
    assert all(r["imaging"]["translation"] == "paired" and r["imaging"]["translation_choice"] == se["why"]
               for r in recs)
    seg = read_volume(out / "segmentation.tif")
    assert seg.meta.parameters["se_translation"]["translation"] == "paired"
    assert "paired SE translator" in (out / "report.html").read_text()
