"""Test-time augmentation (in-plane symmetries averaged): the full group makes the prediction equivariant under
the plane's symmetries, the inverse transforms line each prediction up with the input, blocks still stitch."""

import numpy as np
import pytest
import torch

from fibsynth.errors import FibsynthError
from fibsynth.segment import predict_array
from fibsynth.segment.infer import TTA_OPS, BlockPredictor, _dihedral, _dihedral_inverse
from fibsynth.segment.model import ModelConfig, build_net


def _model(mode="2.5d", **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(mode=mode, features=(4, 8, 16), num_res_units=0, norm=[(0.0, 1.0)], **kw)
    return build_net(cfg).eval(), cfg


def test_dihedral_ops_are_the_eight_distinct_symmetries_and_invert():
    a = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    outs = {_dihedral(a, r, f).tobytes() for r, f in TTA_OPS}
    assert len(TTA_OPS) == 8 and len(outs) == 8
    for r, f in TTA_OPS:
        np.testing.assert_array_equal(_dihedral_inverse(_dihedral(a, r, f), r, f), a)


@pytest.mark.parametrize("mode,kw", [("2.5d", {"k": 2}), ("3d", {})])
def test_full_tta_is_equivariant_and_one_is_plain(mode, kw):
    rng = np.random.default_rng(0)
    img = rng.random((8, 32, 32)).astype(np.float32)
    model = _model(mode, **kw)
    plain = predict_array(model, img, probabilities=True)
    np.testing.assert_array_equal(predict_array(model, img, probabilities=True, tta=1), plain)
    p8 = predict_array(model, img, probabilities=True, tta=8)
    assert np.abs(p8 - plain).mean() > 1e-4  # an untrained net is not symmetric: TTA changes it
    # the full group: predicting a rotated / flipped stack gives the rotated / flipped prediction
    for r, f in ((1, False), (2, True), (3, True)):
        q = predict_array(model, np.ascontiguousarray(_dihedral(img, r, f)), probabilities=True, tta=8)
        np.testing.assert_allclose(q, _dihedral(p8, r, f), atol=1e-5)
    # the mean of the manual transforms (inverse applied) is what tta=2 returns
    man = 0.5 * (plain + np.rot90(predict_array(model, np.ascontiguousarray(np.rot90(img, 1, axes=(1, 2))),
                                               probabilities=True), -1, axes=(1, 2)))
    np.testing.assert_allclose(predict_array(model, img, probabilities=True, tta=2), man, atol=1e-5)


def test_tta_blocks_stitch_and_bad_tta_is_refused():
    img = np.random.default_rng(1).random((11, 24, 40)).astype(np.float32)  # not square: rotations swap y, x
    model = _model("2.5d", k=2)
    full = predict_array(model, img, block=64, probabilities=True, tta=8)
    halves = np.concatenate([predict_array(model, img, z_range=(0, 5), probabilities=True, tta=8),
                             predict_array(model, img, z_range=(5, 11), probabilities=True, tta=8)])
    np.testing.assert_allclose(halves, full, atol=1e-5)
    for bad in (0, 9):
        with pytest.raises(FibsynthError) as e:
            BlockPredictor(*model, tta=bad)
        assert e.value.param == "tta"
