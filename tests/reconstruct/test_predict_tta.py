"""reconstruct's predict step with test-time augmentation: block by block from the memory-mapped stack, equal to
the whole-stack prediction with the same symmetries, and the setting is validated."""

from __future__ import annotations

import numpy as np
import pytest


def test_predict_blocks_with_tta_equals_whole_stack_tta(tmp_path):
    import torch

    from fibsynth.reconstruct.settings import ReconstructSettings
    from fibsynth.reconstruct.workflow import predict_blocks
    from fibsynth.segment.infer import predict_array
    from fibsynth.segment.model import ModelConfig, build_net, save_model

    rng = np.random.default_rng(2)
    img = rng.normal(120, 30, (7, 16, 24)).astype(np.float32)
    np.save(tmp_path / "real.npy", img)
    torch.manual_seed(0)  # an untrained network: the test checks the symmetries and blocking, not the segmentation
    cfg = ModelConfig(mode="2.5d", k=1, features=(4, 8), num_res_units=0, patch=16, norm=[(60.0, 180.0)])
    save_model(tmp_path / "model", build_net(cfg), cfg)
    predict_blocks(tmp_path / "model", tmp_path / "real.npy", tmp_path / "p8.npy", block=3, tta=8)
    predict_blocks(tmp_path / "model", tmp_path / "real.npy", tmp_path / "p1.npy", block=3)
    p8, p1 = np.load(tmp_path / "p8.npy"), np.load(tmp_path / "p1.npy")
    np.testing.assert_allclose(p8, predict_array(str(tmp_path / "model"), img, probabilities=True, tta=8), atol=1e-5)
    np.testing.assert_allclose(p1, predict_array(str(tmp_path / "model"), img, probabilities=True), atol=1e-6)
    assert np.abs(p8 - p1).mean() > 1e-4
    assert ReconstructSettings().tta == 1  # default: no gain measured on the test stacks (docs/reconstruct.md)
    for bad in (0, 9):
        with pytest.raises(Exception):
            ReconstructSettings(tta=bad)
