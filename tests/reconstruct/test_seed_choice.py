"""Choosing among U-Nets trained with different seeds (estimate.choose_candidate, ReconstructSettings.seg_seeds)
and the first pass's per-slice leveling (estimate.level_slices)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.reconstruct import estimate as E

VZ = (8.0, 4.0, 4.0)


def test_choose_candidate_takes_the_most_consistent():
    # the full-size test stack's three seeds (recon8): the under-segmenting seed has the lowest r
    fcs = [{"r": 0.7664, "octants": [0.83] * 8}, {"r": 0.8120, "octants": [0.862] * 8},
           {"r": 0.8117, "octants": [0.865] * 8}]
    c = E.choose_candidate(fcs)
    assert c["chosen"] == 2 and c["score"] == E.CANDIDATE_SCORE == "octant_mean" and c["r"] == [0.7664, 0.8120, 0.8117]
    assert c["scores"] == c["octant_mean"] == pytest.approx([0.83, 0.862, 0.865])
    assert E.choose_candidate(fcs, "r")["chosen"] == 1
    assert E.choose_candidate([{"r": 0.5}])["chosen"] == 0
    assert E.choose_candidate([{"r": 0.5}, {"r": 0.6}])["chosen"] == 1  # no octants: r
    with pytest.raises(FibsynthError) as e:
        E.choose_candidate(fcs, "mds")
    assert e.value.param == "score" and "\n" not in str(e.value)
    with pytest.raises(FibsynthError):
        E.choose_candidate([])


def test_choose_candidate_prefers_the_truth_over_biased_reconstructions():
    """On a stack imaged from a known structure, among the truth and the truth eroded / dilated by one pixel (the
    over- and under-segmenting networks the choice guards against), the truth is chosen."""
    from scipy import ndimage as ndi

    from fibsynth.fastsim.projection import project
    from fibsynth.structure import leveled_wave

    truth = leveled_wave((16, 48, 48), VZ, 0.3, 36.0, seed=2).astype(np.uint8)
    img, _ = project(truth, VZ, 2.0)
    rng = np.random.default_rng(0)
    real = np.clip(30 + 190 * np.asarray(img, np.float64) ** 0.8 + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    k = np.ones((1, 3, 3))
    segs = [ndi.binary_erosion(truth, k), truth, ndi.binary_dilation(truth, k)]
    fcs = [E.forward_consistency_octants(np.asarray(s, np.uint8), real, VZ, 2.0) for s in segs]
    assert E.choose_candidate(fcs)["chosen"] == 1
    assert E.choose_candidate(fcs, "octant_mean")["chosen"] == 1


def test_level_slices_removes_brightness_drift():
    """A stack whose slices drift in gain and offset: leveled, every slice's 2/98 % percentiles equal the median
    ones, and the first pass's solid fraction returns to that of the stack without drift; a stack without drift
    is left nearly unchanged; a flat slice is left as it is."""
    from fibsynth.structure import leveled_wave

    truth = leveled_wave((16, 64, 64), VZ, 0.3, 36.0, seed=5).astype(np.float32)
    rng = np.random.default_rng(1)
    clean = 60 + 100 * truth + rng.normal(0, 12, truth.shape).astype(np.float32)
    z = np.linspace(0, 1, truth.shape[0])[:, None, None].astype(np.float32)
    drifted = clean * (1.0 - 0.3 * z) - 50 * z  # pore gray 60 -> 0, solid 160 -> 62 over the stack
    lev = E.level_slices(drifted)
    lo, hi = np.percentile(lev, E.LEVEL_PERCENTILES, axis=(1, 2))
    assert np.ptp(lo) < 1e-3 * np.ptp(lev) and np.ptp(hi) < 1e-3 * np.ptp(lev)
    phi = {name: float(E.first_pass(a, level=lv, classes=2)["otsu"].mean())
           for name, a, lv in (("clean", clean, False), ("drift", drifted, False), ("leveled", drifted, True))}
    assert abs(phi["leveled"] - phi["clean"]) < 0.01 < abs(phi["drift"] - phi["clean"])
    assert abs(float(E.first_pass(clean, level=True, classes=2)["otsu"].mean()) - phi["clean"]) < 0.01
    flat = drifted.copy()
    flat[3] = 7.0
    assert np.all(E.level_slices(flat)[3] == 7.0)


def test_seg_seeds_chooses_by_forward_consistency(tmp_path):
    """Two U-Nets per round: the summary records both seeds, their forward consistency and the choice (the
    highest r), the truth's score of each; a later one-seed run on the same work folder reuses seed 0's model
    (the first candidate is the one-seed default's network)."""
    from test_reconstruct_cli import _maker

    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume
    from fibsynth.reconstruct import ReconstructSettings, reconstruct

    R = _maker()
    truth = R.grf_structure((12, 40, 40), VZ, 0.35, 60.0, seed=1)
    from scipy.ndimage import gaussian_filter

    u8, t, _ = R.degrade(gaussian_filter(truth.astype(np.float32), (0.7, 1.0, 1.0)), truth, seed=4)
    vox = VoxelSize.from_xy_z(4, 8)
    write_volume(tmp_path / "stack.tif", u8, VolumeMeta(kind="image", voxel_size_nm=vox, energy_kev=2.0))
    write_volume(tmp_path / "truth.tif", t, VolumeMeta(kind="label", voxel_size_nm=vox))
    base = dict(structures=1, val_structures=1, synth_slices=8, synth_side=32, seg_steps=2, reestimate=False, seed=3,
                threads=1)
    work = tmp_path / "work"
    s2 = reconstruct(tmp_path / "stack.tif", tmp_path / "two", ReconstructSettings(**base, seg_seeds=2,
                                                                                   seg_combine="choose"),
                     truth=tmp_path / "truth.tif", quiet=True, work_dir=work)
    ch = s2["rounds"][0]["seed_choice"]
    assert ch["seeds"] == [3, 4] and len(ch["r"]) == 2 and len(ch["octants"]) == 2
    assert ch["scores"] == pytest.approx([float(np.mean(o)) for o in ch["octants"]])
    assert ch["chosen"] == int(np.argmax(ch["scores"])) and s2["rounds"][0]["seed"] == ch["seeds"][ch["chosen"]]
    assert len(s2["candidate_mds"][0]) == 2 and s2["round_mds"][0] == s2["candidate_mds"][0][ch["chosen"]]
    assert len(s2["rounds"][0]["candidates_training"]) == 2
    assert [x["step"] for x in s2["steps"]].count("train") == 2
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["rounds"][0]["seed_choice"]["chosen"] == ch["chosen"]
    assert "networks were trained on the same synthetic data" in (tmp_path / "two" / "report.html").read_text()
    s1 = reconstruct(tmp_path / "stack.tif", tmp_path / "one", ReconstructSettings(**base, seg_seeds=1),
                     truth=tmp_path / "truth.tif", quiet=True, work_dir=work)
    assert s1["rounds"][0]["seed_choice"] is None and s1["rounds"][0]["seed"] == 3 and s1["candidate_mds"] is None
    assert [x["status"] for x in s1["steps"] if x["step"] in ("train", "predict")] == ["cached", "cached"]
    assert s1["round_mds"][0] == pytest.approx(s2["candidate_mds"][0][0])
    # seg_combine="mean" (the default): the same two networks (cached), their P(solid) averaged instead of one chosen
    assert ReconstructSettings().seg_combine == "mean"
    sm = reconstruct(tmp_path / "stack.tif", tmp_path / "mean", ReconstructSettings(**base, seg_seeds=2),
                     truth=tmp_path / "truth.tif", quiet=True, work_dir=work)
    st = {x["step"]: x["status"] for x in sm["steps"]}
    assert st["combine"] == "ran" and "choose_seed" not in st
    assert [x["status"] for x in sm["steps"] if x["step"] in ("train", "predict")] == ["cached"] * 4
    assert sm["rounds"][0]["seed_choice"] is None and sm["rounds"][0]["ensemble_seeds"] == [3, 4]
    from fibsynth.io import read_volume

    preds = [np.load(f.parent / "probability.npy") for f in sorted(work.glob("cache/*/DONE.json"))
             if json.loads(f.read_text())["step"] == "predict"]
    assert len(preds) == 2 and np.abs(preds[0] - preds[1]).max() > 1e-3
    assert np.allclose(np.asarray(read_volume(tmp_path / "mean" / "probability.tif").data), (preds[0] + preds[1]) / 2,
                       atol=1e-6)
    assert "their probabilities P(solid) are averaged" in (tmp_path / "mean" / "report.html").read_text()
    # seg_k (the 2.5D context) reaches the network and the train step's key: only training and prediction rerun
    sk = reconstruct(tmp_path / "stack.tif", tmp_path / "k3", ReconstructSettings(**base, seg_seeds=1, seg_k=3),
                     quiet=True, work_dir=work)
    st = {x["step"]: x["status"] for x in sk["steps"]}
    assert st["train"] == st["predict"] == "ran" and st["generate"] == st["estimate"] == st["translate"] == "cached"
    cfgs = [json.loads((f.parent / "model" / "config.json").read_text()) for f in work.glob("cache/*/DONE.json")
            if json.loads(f.read_text())["step"] == "train"]
    from fibsynth.reconstruct.settings import DEFAULT_SEG_K

    assert DEFAULT_SEG_K != 3 and sorted(c["k"] for c in cfgs) == sorted([DEFAULT_SEG_K] * 2 + [3])
    assert sk["settings"]["seg_k"] == 3 and sk["segmentation_plan"]["context_slices_each_side"] == 3
    html = (tmp_path / "k3" / "report.html").read_text()
    assert "seg_k" in html and "3 neighbours on each side" in html


def test_mean_blocks_is_the_mean_block_by_block(tmp_path):
    from fibsynth.reconstruct.workflow import mean_blocks

    rng = np.random.default_rng(0)
    maps = [rng.random((7, 5, 6), dtype=np.float32) for _ in range(3)]
    for i, m in enumerate(maps):
        np.save(tmp_path / f"p{i}.npy", m)
    mean_blocks([tmp_path / f"p{i}.npy" for i in range(3)], tmp_path / "mean.npy", block=3)
    out = np.load(tmp_path / "mean.npy")
    assert out.dtype == np.float32 and np.allclose(out, np.mean(maps, axis=0), atol=1e-6)
    mean_blocks([tmp_path / "p1.npy"], tmp_path / "one.npy", block=2)
    assert np.array_equal(np.load(tmp_path / "one.npy"), maps[1])
    np.save(tmp_path / "bad.npy", np.zeros((7, 5, 5), np.float32))
    with pytest.raises(FibsynthError):
        mean_blocks([tmp_path / "p0.npy", tmp_path / "bad.npy"], tmp_path / "x.npy")


@pytest.mark.parametrize("value", ["0", "9"])
def test_seg_seeds_refused_in_one_line(tmp_path, capsys, value):
    from fibsynth.cli import main

    rc = main(["reconstruct", str(tmp_path / "none.tif"), str(tmp_path / "out"), "--seg-seeds", value, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--seg-seeds" in err and len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_seg_combine_refused_in_one_line(tmp_path, capsys):
    from fibsynth.cli import main

    rc = main(["reconstruct", str(tmp_path / "none.tif"), str(tmp_path / "out"), "--seg-combine", "max", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--seg-combine" in err and "mean" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_seg_seeds_refused_for_n_phases():
    from fibsynth.reconstruct.multiphase import MultiphaseSettings

    assert MultiphaseSettings(phases=3).seg_seeds == 1
    with pytest.raises(FibsynthError) as e:
        MultiphaseSettings(phases=3, seg_seeds=2)
    assert e.value.param == "seg_seeds" and "\n" not in str(e.value)
