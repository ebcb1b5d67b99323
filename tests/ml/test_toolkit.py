"""The shared ML toolkit (fibsynth.ml): sampler, blending, schedule, weights files, devices/threads, Lightning
wrapper (one-line refusals before any work, Ctrl-C re-raised instead of Lightning's sys.exit(1))."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.ml import EarlyStop, EpochSampler
from fibsynth.ml.checkpoint import content_hash, load_weights, save_weights
from fibsynth.ml.runtime import check_threads, fit, make_trainer, torch_device, torch_threads
from fibsynth.ml.tiling import blend_2d, gaussian_weight, grid_starts, hann_ramp, window_starts


def test_sampler_epochs_are_seeded_and_cover_the_data():
    s = EpochSampler(10, seed=3)
    s.set_epoch(2)
    keys = list(s)
    assert [e for e, _ in keys] == [2] * 10 and sorted(i for _, i in keys) == list(range(10))
    again = EpochSampler(10, seed=3)
    again.set_epoch(2)
    assert list(again) == keys  # (seed, epoch) alone fixes the order: exact resume
    again.set_epoch(3)
    assert list(again) != keys
    # fewer per epoch: a prefix of the same permutation; more: whole permutations one after another
    short = EpochSampler(10, seed=3, per_epoch=4)
    short.set_epoch(2)
    assert [i for _, i in short] == [i for _, i in keys][:4]
    long = EpochSampler(10, seed=3, per_epoch=25)
    long.set_epoch(2)
    idx = [i for _, i in long]
    assert len(long) == 25 and idx[:10] == [i for _, i in keys]
    assert sorted(idx[10:20]) == list(range(10))
    ordered = EpochSampler(5, seed=0, per_epoch=9, shuffle=False)
    assert len(ordered) == 5 and [i for _, i in ordered] == list(range(5))


def test_window_grids():
    assert window_starts(100, 64, 32) == [0, 32, 36] and window_starts(64, 64, 32) == [0]
    assert grid_starts(64 + 2 * 48, 64, 48) == [0, 48, 96]


def test_blending_weights_and_accumulation():
    r = hann_ramp(32, 8, True, True)
    assert np.allclose(r[:8] + r[-8:], 1.0) and np.all(r[8:-8] == 1)  # neighbours' ramps sum to one
    g = gaussian_weight((9, 5))
    assert g.shape == (9, 5) and g.max() == 1 and g.min() >= 1e-3
    # a function that returns its input, blended with Hann ramps over overlapping tiles, is the identity
    x = np.random.default_rng(0).random((2, 40, 40)).astype(np.float32)
    t, ov = 16, 4
    starts = grid_starts(40, t, t - ov)

    def w(y, xx):
        return np.outer(hann_ramp(t, ov, y > 0, y + t < 40), hann_ramp(t, ov, xx > 0, xx + t < 40)).astype(np.float32)

    out = blend_2d(lambda tiles: tiles, x, starts, starts, (t, t), w, batch=3)
    np.testing.assert_allclose(out, x, atol=1e-6)
    out = blend_2d(lambda tiles: tiles[:, :1] * 2, x, starts, starts, (t, t), lambda y, xx: gaussian_weight((t, t)),
                   out_lead=(1,))
    np.testing.assert_allclose(out[0], 2 * x[0], atol=1e-6)


def test_early_stop_rule():
    stop = EarlyStop(patience=2)
    seq = [3.0, 2.0, 2.0, 2.5, 1.0]
    results = [stop.step(v) for v in seq]
    assert results == [False, False, False, True, False]  # equal is not an improvement; 2 bad rounds stop
    assert stop.best == 1.0 and stop.improved


def test_threads_are_scoped_and_checked():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(FibsynthError) as e:
        check_threads(0)
    assert e.value.param == "threads"
    assert check_threads(None) is None and check_threads(2) == 2


def test_devices_are_validated():
    import torch

    assert torch_device("cpu").type == "cpu"
    for bad in ("banana", "cuda:x", ""):
        with pytest.raises(FibsynthError) as e:
            torch_device(bad)
        assert e.value.param == "device" and "\n" not in str(e.value)
    if not torch.cuda.is_available():
        with pytest.raises(FibsynthError, match="no CUDA"):
            torch_device("cuda")


def test_weights_files_refused_in_one_line(tmp_path):
    import torch

    p = save_weights(tmp_path / "w.pt", {"a": torch.ones(2)})
    assert torch.equal(load_weights(p)["a"], torch.ones(2))
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04junk")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    for name, needle in (("empty.pt", "empty"), ("junk.pt", "refused"), ("list.pt", "state_dict"),
                         ("none.pt", "not found")):
        with pytest.raises(FibsynthError, match=needle) as e:
            load_weights(tmp_path / name)
        assert "\n" not in str(e.value)


def test_content_hash():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    b = a.copy()
    assert content_hash([a]) == content_hash([b])
    b[1, 2, 3] += 1
    assert content_hash([a]) != content_hash([b])
    assert content_hash([a]) != content_hash([a.astype(np.float64)])
    assert content_hash([a, a]) != content_hash([a])


def test_trainer_settings_refused_before_any_work():
    import torch

    with pytest.raises(FibsynthError) as e:
        make_trainer(accelerator="cpu", strategy="banana", logger=False)
    assert e.value.param == "strategy"
    if not torch.cuda.is_available():
        with pytest.raises(FibsynthError) as e:
            make_trainer(accelerator="gpu", logger=False)
        assert e.value.param == "accelerator"


def test_ctrl_c_inside_lightning_is_reraised():
    import signal

    import lightning.pytorch as pl
    import torch

    class Boom(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

        def training_step(self, batch, _):
            raise KeyboardInterrupt

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    loader = torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=2)
    trainer = make_trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                           enable_checkpointing=False, enable_model_summary=False)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        fit(trainer, Boom(), loader)
    assert signal.getsignal(signal.SIGINT) == handler  # Lightning's "ignore Ctrl-C while shutting down" undone
