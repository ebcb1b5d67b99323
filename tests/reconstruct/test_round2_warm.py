"""Round 2's U-Nets (ReconstructSettings.round2_init / round2_steps, docs/reconstruct.md "round16"): by default half of
round 1's optimizer steps from random weights, or warm-started from round 1's networks. ``segment.train.fit(init=...)``
starts from the saved network's weights (and its input scale, or the new data's), refuses another network in one line;
round 1's trainings keep their settings; the workflow's train step keys a warm start and a shortened round 2 apart from
a full training from random weights (whose key is the one it always had), so a round 2 cached by an older run is
never taken for another kind."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fibsynth.errors import FibsynthError


def _data(seed: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    lbl = (rng.random((6, 16, 16)) < 0.4).astype(np.uint8)
    img = (scale * (0.2 + 0.6 * lbl + rng.normal(0, 0.1, lbl.shape))).astype(np.float32)
    return img, lbl


def _params(d):
    import torch

    from fibsynth.segment.model import MODEL_FILE

    return {k: v for k, v in torch.load(d / MODEL_FILE, weights_only=True).items() if k.endswith("weight")}


def test_fit_starts_from_the_init_network(tmp_path):
    import torch

    from fibsynth.segment.model import build_net, load_config
    from fibsynth.segment.train import BelowBaselineWarning, TrainSettings, fit

    s = TrainSettings(mode="2d", features=(4, 8), num_res_units=0, patch=16, stride=16, batch=2, lr=1e-2,
                      val_fraction=0.34, seed=0, steps=2, val_every=2)
    img, lbl = _data(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BelowBaselineWarning)
        fit([img], [lbl], tmp_path / "a", s, verbose=False)
    a = _params(tmp_path / "a")
    img2, lbl2 = _data(1, scale=3.0)  # other data, another gray scale
    tiny = s.model_copy(update={"seed": 1, "lr": 1e-9})
    with warnings.catch_warnings():  # (BelowBaselineWarning: two steps at lr 1e-9 learn nothing)
        warnings.simplefilter("ignore", BelowBaselineWarning)
        rec = fit([img2], [lbl2], tmp_path / "warm", tiny, verbose=False, init=tmp_path / "a")
    warm = _params(tmp_path / "warm")
    # two steps of lr 1e-9 leave the warm start at round 1's weights; seed 1's random weights are others
    assert max(float((warm[k] - a[k]).abs().max()) for k in a) < 1e-6
    torch.manual_seed(1)
    cold = {k: v for k, v in build_net(load_config(tmp_path / "a")).state_dict().items() if k in a}
    assert max(float((cold[k] - a[k]).abs().max()) for k in a) > 1e-2
    assert rec["init"]["model"] == str(tmp_path / "a") and len(rec["init"]["sha256"]) == 64
    # the warm network keeps the input scale its weights learned, not the new data's (3 x brighter)
    norm = load_config(tmp_path / "warm").norm
    assert norm == load_config(tmp_path / "a").norm and rec["init"]["norm"] == "init"
    # ... or, asked for, the new data's (the weights still round 1's)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BelowBaselineWarning)
        fit([img2], [lbl2], tmp_path / "warm_data", tiny, verbose=False, init=tmp_path / "a", init_norm="data")
        fit([img2], [lbl2], tmp_path / "cold", tiny, verbose=False)
    assert load_config(tmp_path / "warm_data").norm == load_config(tmp_path / "cold").norm != norm
    assert max(float((_params(tmp_path / "warm_data")[k] - a[k]).abs().max()) for k in a) < 1e-6
    # another network is refused in one line naming init, before anything is written
    with pytest.raises(FibsynthError) as e:
        fit([img2], [lbl2], tmp_path / "bad", s.model_copy(update={"features": (4, 8, 16)}), verbose=False,
            init=tmp_path / "a")
    assert e.value.param == "init" and "features" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "bad").exists()


def test_round2_train_key_and_plan():
    from fibsynth.experiment.cache import step_key
    from fibsynth.reconstruct import ReconstructSettings
    from fibsynth.reconstruct import workflow as W

    d = ReconstructSettings()
    assert d.round2_init == "scratch" and d.round2_steps == 0.5  # the default (docs/reconstruct.md, round16)
    s = ReconstructSettings(round2_init="round1", round2_steps=0.25)
    _, _, _, ts, plan = W.synth_plan(s, (128, 192, 192))
    # from random weights: the key of before round16 (settings and images only)
    params, inputs = W.train_key(ts, "IMAGES")
    assert params == {"settings": ts.model_dump(mode="json", exclude=W.NOT_KEYED)} and inputs == {"images": "IMAGES"}
    cold = step_key("reconstruct.train", params, inputs)
    assert W._Steps.key("train", params, inputs) == cold
    warm = W._Steps.key("train", *W.train_key(ts, "IMAGES", "ROUND1NET"))
    other = W._Steps.key("train", *W.train_key(ts, "IMAGES", "OTHERNET"))
    assert len({cold, warm, other}) == 3  # neither kind of round 2 is reused for the other, nor another start
    assert W.train_key(ts, "IMAGES", "ROUND1NET")[1] == {"images": "IMAGES", "init": "ROUND1NET"}
    assert W.train_key(ts, "IMAGES", "ROUND1NET")[0]["init_norm"] == W.ROUND2_NORM
    # round 2's optimizer steps: whole validation rounds, at least one, at most round 1's
    assert plan["optimizer_steps"] == 600 and plan["steps_per_epoch"] == 20
    assert W.round2_plan(s, plan) == {"init": "round1", "epochs": 8, "optimizer_steps": 160}
    # round 1's networks keep their settings (and keys) whatever round 2 does; round 2's train round2_steps of them
    for j in (0, 1):
        ts1, n1 = W.round_train_settings(s, ts, plan, j)
        assert ts1 == ts.model_copy(update={"seed": j}) and n1 == 600
        ts2, n2 = W.round_train_settings(s, ts, plan, j, second=True)
        assert ts2 == ts1.model_copy(update={"epochs": 8}) and n2 == 160
    # the default: round 2 from scratch, half of round 1's steps (its key differs from round 1's only there)
    assert W.round_train_settings(d, ts, plan, 1, second=True) == (ts.model_copy(update={"seed": 1, "epochs": 15}), 300)
    full = ReconstructSettings(round2_init="scratch", round2_steps=1)
    assert W.round_train_settings(full, ts, plan, 1, second=True) == (ts.model_copy(update={"seed": 1}), 600)
    assert W.round2_plan(full, plan)["epochs"] == plan["epochs"]
    assert W.round2_plan(ReconstructSettings(round2_steps=0.001), plan)["optimizer_steps"] == 20
    with pytest.raises(Exception):
        ReconstructSettings(round2_steps=0)
