"""Segmentation of three or more phases (issue 17, item 2): n output classes, labels 0..n-1, multi-Otsu baseline."""

import numpy as np
import pytest
import torch

from fibsynth.errors import FibsynthError
from fibsynth.metrics import evaluate_phases
from fibsynth.segment import predict_array
from fibsynth.segment.baseline import multiotsu_segment
from fibsynth.segment.model import ModelConfig, build_net
from fibsynth.segment.train import TrainSettings, fit


def _random_model(mode, classes, **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(mode=mode, features=(4, 8, 16), num_res_units=0, norm=[(0.0, 1.0)], classes=classes, **kw)
    return build_net(cfg).eval(), cfg


@pytest.mark.parametrize("mode,kw,roi", [("2.5d", {"k": 1}, (16, 24)), ("3d", {}, (16, 16, 16))])
def test_n_class_probabilities_blocks_and_labels(mode, kw, roi):
    img = np.random.default_rng(3).random((13, 40, 36)).astype(np.float32)
    model = _random_model(mode, 3, **kw)
    full = predict_array(model, img, block=64, roi=roi, probabilities=True)
    assert full.shape == (13, 3, 40, 36)
    np.testing.assert_allclose(full.sum(1), 1.0, atol=1e-5)  # blended softmax: still a distribution
    halves = np.concatenate([predict_array(model, img, roi=roi, z_range=(0, 6), probabilities=True),
                             predict_array(model, img, roi=roi, z_range=(6, 13), probabilities=True)])
    np.testing.assert_allclose(halves, full, rtol=0, atol=1e-5)
    lab = predict_array(model, img, roi=roi, block=5)
    assert lab.dtype == np.uint8 and lab.max() <= 2
    np.testing.assert_array_equal(lab, full.argmax(1))


def _three_phase(shape, seed):
    from fibsynth.structure import multiphase

    lab = multiphase(shape, 4.0, (0.5, 0.3, 0.2), kind="particles", particle_radius_nm=(12, 8), seed=seed)
    rng = np.random.default_rng(seed + 100)
    gray = np.array([0.1, 0.5, 0.3], np.float32)[lab]  # label 2 between 0 and 1: the order is not the labels'
    return (gray + rng.normal(0, 0.08, lab.shape)).astype(np.float32), lab


def test_train_three_classes_beats_chance_and_records_multiotsu(tmp_path):
    img, lab = _three_phase((12, 32, 32), 1)
    s = TrainSettings(mode="2d", features=(4, 8), num_res_units=0, patch=16, stride=8, batch=8, lr=1e-2,
                      val_fraction=0.25, seed=3, epochs=6, classes=3)
    rec = fit([img], [lab], tmp_path / "m", s, verbose=False)
    assert rec["classes"] == 3 and "multi-otsu" in rec["baseline"]
    assert 0.8 < rec["otsu_val_mds"] <= 1.0  # well separated gray levels, mapped in their brightness order
    timg, tlab = _three_phase((6, 32, 32), 2)
    pred = predict_array(tmp_path / "m", timg)
    assert set(np.unique(pred).tolist()) <= {0, 1, 2}
    score = evaluate_phases(pred, tlab, 3)
    assert score["MDS"] > 0.7, score  # a 60-step net on 9 slices: far above chance (~0.33)
    # labels outside 0..classes-1 are refused in one line
    with pytest.raises(FibsynthError, match="label stack 0"):
        fit([img], [np.where(lab == 2, 3, lab).astype(np.uint8)], tmp_path / "bad", s, verbose=False)
    assert not (tmp_path / "bad").exists()


def test_multiotsu_baseline_order():
    img, lab = _three_phase((8, 32, 32), 5)
    raw, t = multiotsu_segment(img, 3)
    assert len(t) == 2 and 0.1 < t[0] < 0.3 < t[1] < 0.5
    mapped, _ = multiotsu_segment(img, 3, order=[0, 2, 1])  # darkest -> 0, middle -> 2, brightest -> 1
    good, bad = evaluate_phases(mapped, lab, 3)["MDS"], evaluate_phases(raw, lab, 3)["MDS"]
    assert good > 0.75 and good > bad + 0.1, (good, bad)  # noise sigma 0.08 against gaps of 0.2: ~0.84
    with pytest.raises(FibsynthError, match="permutation"):
        multiotsu_segment(img, 3, order=[0, 1, 1])


def test_baseline_cli_multiotsu(tmp_path, capsys):
    import json

    from fibsynth.cli import main
    from fibsynth.io import VolumeMeta, read_volume, write_volume

    img, lab = _three_phase((8, 32, 32), 5)
    write_volume(tmp_path / "img.npy", img, VolumeMeta(kind="image", voxel_size_nm=4.0))
    rc = main(["segment", "baseline", str(tmp_path / "img.npy"), str(tmp_path / "b.npy"), "--method", "multiotsu",
               "--classes", "3", "--order", "0,2,1", "--json"])
    assert rc == 0, capsys.readouterr().err
    info = json.loads(capsys.readouterr().out)
    v = read_volume(tmp_path / "b.npy")
    assert info["order"] == [0, 2, 1] and v.meta.generator == "baseline"
    np.testing.assert_array_equal(v.data, multiotsu_segment(img, 3, order=[0, 2, 1])[0])
    assert main(["segment", "baseline", str(tmp_path / "img.npy"), str(tmp_path / "c.npy"), "--method",
                 "multiotsu", "--order", "0,1,1"]) == 2
    assert "permutation" in capsys.readouterr().err and not (tmp_path / "c.npy").exists()
