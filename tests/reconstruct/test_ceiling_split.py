"""The own-truth ceiling's ``blocks`` split (benchmarks/reconstruct_ceiling.py, for the 3D U-Net): no training or
validation slice reaches a test prediction, whatever the network's receptive field."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("reconstruct_ceiling", REPO / "benchmarks" / "reconstruct_ceiling.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _slices(ranges) -> set[int]:
    return {z for a, b in ranges for z in range(a, b)}


@pytest.mark.parametrize("nz,thick,gap", [(128, 32, 4), (128, 30, 3), (60, 12, 2), (200, 48, 6)])
def test_blocks_parts_are_apart(nz, thick, gap):
    C = _bench()
    p = C.split_slices(nz, "blocks", thick=thick, gap=gap)
    train, val, test, inp = (_slices(p[n]) for n in ("train", "val", "test", "test_input"))
    assert not (train & val or train & test or val & test)
    assert all(0 <= a < b <= nz for n in p for a, b in p[n])
    # the slices a test part is predicted from hold no labelled (trained or validated) slice
    assert test <= inp and not inp & (train | val)
    # every labelled slice at least gap + 1 slices from every test slice; parts thick enough for a 3D patch
    assert min(abs(t - s) for t in test for s in train | val) == gap + 1
    assert all(b - a >= thick for a, b in p["train"] + p["val"]) and len(test) >= 4
    # training on both sides of the test part (the brightness drift is interpolated, not extrapolated)
    assert min(train) < min(test) and max(train) > max(test)
    with pytest.raises(ValueError, match="thick or gap"):
        C.split_slices(3 * thick + 3 * gap + 3, "blocks", thick=thick, gap=gap)


@pytest.mark.parametrize("mode", ["3d", "2.5d"])
def test_blocks_test_prediction_never_reads_labelled_slices(mode):
    """NaN in every training and validation slice: the test slices' P(solid) stays finite (a whole-stack 3D
    prediction, as the interleaved split does it, turns them NaN: the check can fail)."""
    import torch

    from fibsynth.segment.model import ModelConfig, build_net

    C = _bench()
    nz = 3 * 12 + 3 * 2 + 6
    p = C.split_slices(nz, "blocks", thick=12, gap=2)
    img = np.random.default_rng(0).random((nz, 16, 16)).astype(np.float32)
    for a, b in p["train"] + p["val"]:
        img[a:b] = np.nan
    torch.manual_seed(0)
    cfg = ModelConfig(mode=mode, k=2, features=(4, 8), num_res_units=0, patch=8, norm=[(0.0, 1.0)])
    net = build_net(cfg).eval()
    prob = C.predict_test((net, cfg), img, p)
    assert prob.shape == (sum(b - a for a, b in p["test"]), 16, 16) and np.isfinite(prob).all()
    if mode == "3d":
        leaky = {k: v for k, v in p.items() if k != "test_input"}  # whole stack as context
        assert np.isnan(C.predict_test((net, cfg), img, leaky)).any()
