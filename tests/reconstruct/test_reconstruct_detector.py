"""``fibsynth reconstruct --detector``: SE images of open pores get training images from an SE imaging model (the SE
projection on the fast engine, the Monte Carlo's detector model with --engine mc), recorded in the metadata."""

from __future__ import annotations

import json

import numpy as np

from fibsynth.cli import main
from fibsynth.io import read_volume

VZ = (8.0, 4.0, 4.0)


def _structure(shape, seed=1):
    from fibsynth.structure import leveled_wave

    return leveled_wave(shape, VZ, 0.4, 28.0, seed=seed).astype(np.uint8)


def test_fast_se_training_images_differ_from_bse_and_by_detector():
    from fibsynth.reconstruct.generate import image_structure

    s = _structure((8, 32, 32))
    bse, rb = image_structure(s, VZ, 2.0, materials=("gold", "vacuum"))
    inl, ri = image_structure(s, VZ, 2.0, materials=("gold", "vacuum"), detector="inlens")
    se, rs = image_structure(s, VZ, 2.0, materials=("gold", "vacuum"), detector="se")
    assert "SE projection" in ri["engine"] and ri["detector"] == "inlens" and ri["view"] == "straight"
    assert rs["detector"] == "se" and rs["view"] == "all" and rs["bse_weight"] == 0.0
    assert "SE projection" not in rb["engine"]
    # the ideal se image counts every SE leaving a pore wall, the in-lens one only those that fly out: never more
    # SE (the in-lens BSE share is added on top of the SE, so compare where it cannot matter: pore-wall pixels)
    assert se.mean() > 0 and inl.mean() > 0 and not np.allclose(se, inl)
    face = s[: se.shape[0]] == 1
    assert se[face].mean() > se[~face].mean()  # the face brighter than what is seen down the pores
    assert abs(np.corrcoef(inl.ravel(), bse.ravel())[0, 1]) < 0.999


def test_monte_carlo_training_images_use_the_detector_model():
    from fibsynth.reconstruct.generate import image_structure

    s = _structure((3, 12, 12), seed=2)
    img, rec = image_structure(s, VZ, 2.0, engine="mc", materials=("gold", "vacuum"), electrons_per_pixel=3,
                               detector="inlens", seed=1)
    assert rec["engine"] == "Monte Carlo" and rec["detector"] == "inlens" and rec["pore_view"] == "straight"
    assert img.shape == (3, 12, 12) and np.isfinite(img).all() and img.max() > 0


def test_reconstruct_an_inlens_stack_of_open_pores(tmp_path):
    """End to end on a tiny in-lens SE stack (SE projection + noise): the training images are SE images, and the
    detector is in the summary, in the generate step's record and in the segmentation's metadata."""
    from fibsynth.config import VoxelSize
    from fibsynth.fastsim.se_projection import project_se
    from fibsynth.io import VolumeMeta, write_volume

    truth = _structure((8, 40, 40), seed=5)
    img, _ = project_se(truth, VZ, 2.0)
    rng = np.random.default_rng(0)
    u8 = np.clip(40 + 120 * img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    vox = VoxelSize.from_xy_z(4, 8)
    write_volume(tmp_path / "se.tif", u8, VolumeMeta(kind="image", voxel_size_nm=vox, energy_kev=2.0))
    out = tmp_path / "out"
    rc = main(["reconstruct", str(tmp_path / "se.tif"), str(out), "--pore", "vacuum", "--detector", "inlens",
               "--structures", "1", "--val-structures", "1", "--synth-slices", "8", "--synth-side", "32",
               "--seg-steps", "2", "--no-reestimate", "--seed", "3", "--quiet"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["detector"] == "inlens" and s["settings"]["detector"] == "inlens"
    gen = [st for st in s["steps"] if st["step"] == "generate"][0]
    d = next((out / "work" / "cache").glob(gen["key"] + "*"))
    recs = json.loads((d / "structures.json").read_text())
    assert all(r["imaging"]["detector"] == "inlens" and "SE projection" in r["imaging"]["engine"] for r in recs)
    # SE of open pores: the first pass (real stack and the calibration's simulations) takes two gray classes; the
    # brightest of three is mostly the bright edges there (lead15: U-Net 0.627 -> 0.835 on the in-lens silicon stack)
    est_step = [st for st in s["steps"] if st["step"] == "estimate"][0]
    est = json.loads((next((out / "work" / "cache").glob(est_step["key"] + "*")) / "estimate.json").read_text())
    assert set(est["methods"]) == {"otsu", "kmeans"}
    seg = read_volume(out / "segmentation.tif")
    assert seg.meta.parameters["detector"] == "inlens" and seg.meta.materials == {"0": "vacuum", "1": "gold"}


def test_fast_stand_ins_and_monte_carlo_with_filled_pores_is_accepted():
    """Where the workflow needs a fast image: the SE projection for open pores (in-lens for ET), the BSE projection
    for filled pores (Monte Carlo SE runs only); the settings accept MC SE with filled pores."""
    from fibsynth.reconstruct import ReconstructSettings
    from fibsynth.reconstruct.generate import fast_detector
    from fibsynth.reconstruct.settings import check_imaging

    assert fast_detector("et", "vacuum") == "inlens" and fast_detector("se", "vacuum") == "se"
    assert fast_detector("inlens", "epoxy") == "bse" and fast_detector("bse", "epoxy") == "bse"
    s = ReconstructSettings(engine="mc", detector="et", pore="epoxy")
    check_imaging(s, 2.0)  # no error
