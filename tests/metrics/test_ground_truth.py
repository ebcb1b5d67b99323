"""MP, MGP, Dice, MDS against hand counts and sklearn-free direct formulas; degenerate cases; lazy arrays."""

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.metrics.ground_truth import evaluate_segmentation


def test_hand_counted_example():
    truth = np.array([[[1, 1, 0, 0], [1, 0, 0, 0]]], np.uint8)  # 3 solid, 5 pore
    pred = np.array([[[1, 0, 1, 0], [1, 0, 0, 0]]], np.uint8)  # TP=2, FN=1, FP=1, TN=4
    r = evaluate_segmentation(pred, truth)
    assert (r["TP"], r["TN"], r["FP"], r["FN"]) == (2, 4, 1, 1)
    assert r["MP"] == pytest.approx(100 * 2 / 8)
    assert r["MGP"] == pytest.approx(100 * 1 / 3)
    assert r["dice_solid"] == pytest.approx(4 / 6)
    assert r["dice_pore"] == pytest.approx(8 / 10)
    assert r["MDS"] == pytest.approx((4 / 6 + 8 / 10) / 2)


def test_random_against_set_definitions_and_chunking():
    rng = np.random.default_rng(0)
    truth = rng.random((23, 9, 7)) < 0.4
    pred = truth ^ (rng.random(truth.shape) < 0.1)
    inter = np.sum(pred & truth)
    dice = 2 * inter / (pred.sum() + truth.sum())  # |A n B| / mean size -- set form of Eq. 6
    r1 = evaluate_segmentation(pred.astype(np.uint8), truth.astype(np.uint8), chunk=1)
    r5 = evaluate_segmentation(pred, truth, chunk=5)
    assert r1 == r5
    assert r1["dice_solid"] == pytest.approx(dice)
    assert r1["MP"] == pytest.approx(100 * np.mean(pred != truth))
    assert r1["MGP"] == pytest.approx(100 * np.sum(truth & ~pred) / truth.sum())
    # swapping the roles of the phases swaps the two Dice scores, MDS and MP are unchanged
    rs = evaluate_segmentation(~pred, ~truth)
    assert rs["dice_solid"] == pytest.approx(r1["dice_pore"]) and rs["MDS"] == pytest.approx(r1["MDS"])
    assert rs["MP"] == pytest.approx(r1["MP"])


def test_dask_and_zarr_inputs(tmp_path):
    da = pytest.importorskip("dask.array")
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(1)
    truth = (rng.random((20, 8, 8)) < 0.5).astype(np.uint8)
    pred = truth.copy()
    pred[3, 2, 2] ^= 1
    ref = evaluate_segmentation(pred, truth)
    z = zarr.open_array(tmp_path / "t.zarr", mode="w", shape=truth.shape, chunks=(4, 8, 8), dtype="u1")
    z[:] = truth
    r = evaluate_segmentation(da.from_array(pred, chunks=(3, 8, 8)), z, chunk=7)
    assert r == ref
    assert r["FP"] + r["FN"] == 1


def test_degenerate_cases():
    zeros = np.zeros((3, 4, 5), np.uint8)
    r = evaluate_segmentation(zeros, zeros)  # no solid anywhere: perfect agreement
    assert r["MP"] == 0 and np.isnan(r["MGP"]) and r["dice_solid"] == 1 and r["MDS"] == 1
    ones = np.ones_like(zeros)
    r = evaluate_segmentation(ones, zeros)  # everything wrong
    assert r["MP"] == 100 and np.isnan(r["MGP"]) and r["dice_solid"] == 0 and r["dice_pore"] == 0
    r = evaluate_segmentation(zeros, ones)
    assert r["MGP"] == 100 and r["MDS"] == 0
    with pytest.raises(FibsynthError, match="same shape"):
        evaluate_segmentation(zeros, np.zeros((3, 4, 6), np.uint8))
    with pytest.raises(FibsynthError, match="binary"):
        evaluate_segmentation(zeros + 2, zeros)
    with pytest.raises(FibsynthError, match="empty"):
        evaluate_segmentation(np.zeros((0, 4, 4)), np.zeros((0, 4, 4)))
