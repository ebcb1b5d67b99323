"""Segmenting the real stack block by block with bounded memory, from a Zarr input."""

from __future__ import annotations

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, write_volume


def _untrained_model_and_stack(tmp_path, shape, seed):
    """A two-phase stack (``real.npy``) and an untrained 2.5D U-Net (``model``) in ``tmp_path``: the tests check the
    blocking, not the segmentation."""
    import torch

    from fibsynth.segment.model import ModelConfig, build_net, save_model

    rng = np.random.default_rng(seed)
    lbl = (rng.random(shape) > 0.5).astype(np.uint8)
    np.save(tmp_path / "real.npy", (60 + 120 * lbl + rng.normal(0, 10, lbl.shape)).astype(np.float32))
    torch.manual_seed(0)
    cfg = ModelConfig(mode="2.5d", k=1, features=(4, 8), num_res_units=0, patch=16, norm=[(60.0, 180.0)])
    save_model(tmp_path / "model", build_net(cfg), cfg)


def test_predict_blocks_from_zarr_equals_whole_stack_prediction(tmp_path):
    from fibsynth.reconstruct.inspect import read_stack
    from fibsynth.reconstruct.workflow import predict_blocks
    from fibsynth.segment.infer import predict_array
    from fibsynth.segment.model import ModelConfig, build_net, save_model

    rng = np.random.default_rng(1)
    lbl = (rng.random((7, 16, 16)) > 0.5).astype(np.uint8)
    img = (60 + 120 * lbl + rng.normal(0, 10, lbl.shape)).clip(0, 255).astype(np.uint8)
    write_volume(tmp_path / "stack.zarr", img, VolumeMeta(kind="image", voxel_size_nm=VoxelSize.from_xy_z(4, 8)),
                 chunks=(2, 16, 16))
    raw, voxel, _, _ = read_stack(tmp_path / "stack.zarr")
    assert raw.shape == img.shape and voxel.zyx() == (8.0, 4.0, 4.0)
    np.save(tmp_path / "real.npy", raw.astype(np.float32))
    import torch

    torch.manual_seed(0)  # an untrained network: the test checks the blocking, not the segmentation
    cfg = ModelConfig(mode="2.5d", k=1, features=(4, 8), num_res_units=0, patch=16, norm=[(60.0, 180.0)])
    save_model(tmp_path / "model", build_net(cfg), cfg)
    rec = predict_blocks(tmp_path / "model", tmp_path / "real.npy", tmp_path / "prob.npy", block=3)
    prob = np.load(tmp_path / "prob.npy")
    whole = predict_array(str(tmp_path / "model"), raw.astype(np.float32), block=32, probabilities=True)
    assert rec["blocks"] == 3 and prob.shape == img.shape
    np.testing.assert_allclose(prob, whole, atol=1e-5)
    assert rec["solid_fraction"] == float((prob > 0.5).mean())


def test_predict_blocks_on_gpu_equals_cpu(tmp_path):
    """The GPU path (``device="cuda"``: model and blocks on the GPU, larger batches) gives the CPU's probabilities."""
    import pytest
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from fibsynth.ml.runtime import lightning_device
    from fibsynth.reconstruct.workflow import predict_blocks

    _untrained_model_and_stack(tmp_path, (9, 40, 40), 2)
    predict_blocks(tmp_path / "model", tmp_path / "real.npy", tmp_path / "cpu.npy", block=4, device="cpu")
    predict_blocks(tmp_path / "model", tmp_path / "real.npy", tmp_path / "gpu.npy", block=4, device="cuda")
    np.testing.assert_allclose(np.load(tmp_path / "gpu.npy"), np.load(tmp_path / "cpu.npy"), atol=1e-3)
    assert lightning_device("auto") == {"accelerator": "gpu", "devices": "0,"}


def test_an_interrupted_prediction_resumes_from_its_last_block(tmp_path):
    """Ctrl-C (or a killed job) during the prediction: the rerun predicts only the blocks not done and writes the
    map an uninterrupted run writes."""
    import pytest

    from fibsynth.reconstruct.workflow import predict_blocks

    _untrained_model_and_stack(tmp_path, (9, 16, 16), 3)
    ref = predict_blocks(tmp_path / "model", tmp_path / "real.npy", tmp_path / "ref.npy", block=2)

    def stop_after_two(done, total):
        if done == 4:
            raise KeyboardInterrupt

    part = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        predict_blocks(tmp_path / "model", tmp_path / "real.npy", tmp_path / "p.npy", block=2, resume=part,
                       progress=stop_after_two)
    assert not (tmp_path / "p.npy").exists() and (part / "done.json").is_file()
    seen = []
    rec = predict_blocks(tmp_path / "model", tmp_path / "real.npy", tmp_path / "p.npy", block=2, resume=part,
                         progress=lambda done, total: seen.append(done))
    assert seen == [6, 8, 9]  # only the blocks not done
    assert rec["resumed_at_slice"] == 4 and rec["solid_fraction"] == ref["solid_fraction"]
    assert np.array_equal(np.load(tmp_path / "p.npy"), np.load(tmp_path / "ref.npy"))
    assert not part.exists()
