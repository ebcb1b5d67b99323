"""CycleGAN training on a toy pair of domains: losses fall, cycle reconstruction improves, resume reproduces the
uninterrupted run exactly, several input channels, model files are weights only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.gan import Architecture, TrainSettings, Translator, train
from fibsynth.gan.model import WEIGHTS, load_generator, load_state, to_unit

from gan_helpers import toy_domains

ARCH = Architecture(gen_channels=4, gen_depth=2, disc_channels=4)


def _settings(**kw):
    base = dict(epochs=2, patch=32, stride=16, samples=2, seed=3)
    base.update(kw)
    return TrainSettings(**base)


def _cycle_error(model_dir, a):
    import torch

    gab, cfg = load_generator(model_dir, "ab")
    gba, _ = load_generator(model_dir, "ba")
    x = torch.from_numpy(to_unit(a, cfg.source)[:, None])
    g = torch.Generator().manual_seed(0)
    k = cfg.architecture.noise_channels

    def z(t):  # the generators' noise input channels
        return torch.cat([t, torch.randn((t.shape[0], k, *t.shape[2:]), generator=g)], 1)

    with torch.no_grad():
        return float((gba(z(gab(z(x)))) - x).abs().mean())


def test_losses_fall_and_cycle_improves(tmp_path):
    a, b = toy_domains(n=4, size=64)
    held_a, _ = toy_domains(n=2, size=64, seed=7)
    r0 = train([a], [b], tmp_path / "m0", _settings(epochs=1, max_patches=1), ARCH, progress=False)
    err0 = _cycle_error(tmp_path / "m0", held_a)  # after one step: close to the initialisation
    # lr 1e-3 (not the default 1e-4) so that a few dozen steps show the trend on 2 shared cores
    res = train([a], [b], tmp_path / "m", _settings(epochs=4, max_patches=24, lr=1e-3), ARCH, progress=False)
    h = res["history"]
    assert len(h) == 4 and r0["history"]
    assert h[-1]["monitor"] < 0.7 * h[0]["monitor"]  # lambda (cycle + 0.5 identity)
    assert h[-1]["cycle"] < 0.7 * h[0]["cycle"]
    assert min(e["d"] for e in h[1:]) < h[0]["d"]  # least-squares discriminator loss (not monotone: a game)
    err = _cycle_error(tmp_path / "m", held_a)
    assert err < 0.6 * err0, (err0, err)
    # the outputs: config, weights, history, one sample PNG per epoch, a checkpoint
    m = tmp_path / "m"
    cfg = json.loads((m / "config.json").read_text())
    assert cfg["source"]["dtype"] == "float32" and cfg["target"]["dtype"] == "uint16"
    assert cfg["training"]["status"] == "finished" and cfg["training"]["epochs_run"] == 4
    assert sorted(p.name for p in (m / "samples").iterdir()) == [f"epoch_{k:04d}.png" for k in range(4)]
    assert (m / "checkpoints" / "last.ckpt").is_file() and len(json.loads((m / "history.json").read_text())) == 4
    out = Translator(m, tile=64, overlap=16)(a)[0]
    assert out.dtype == np.uint16 and out.shape == a.shape
    assert cfg["target"]["lo"][0] - 1 <= out.min() and out.max() <= cfg["target"]["hi"][0] + 1


def test_resume_reproduces_uninterrupted_run(tmp_path):
    import torch

    a, b = toy_domains(n=2, size=48)
    train([a], [b], tmp_path / "full", _settings(epochs=2, max_patches=6), ARCH, progress=False)
    train([a], [b], tmp_path / "part", _settings(epochs=1, max_patches=6), ARCH, progress=False)
    with pytest.raises(FibsynthError, match="resume"):  # library errors name the Python parameter (was --resume)
        train([a], [b], tmp_path / "part", _settings(epochs=2, max_patches=6), ARCH, progress=False)
    res = train([a], [b], tmp_path / "part", _settings(epochs=2, max_patches=6), ARCH, resume=True, progress=False)
    assert res["epochs"] == 2 and len(res["history"]) == 2
    for key in WEIGHTS.values():
        s1, s2 = load_state(tmp_path / "full" / key), load_state(tmp_path / "part" / key)
        assert s1.keys() == s2.keys()
        for k in s1:
            assert torch.equal(s1[k], s2[k]), k
    h1 = json.loads((tmp_path / "full" / "history.json").read_text())
    h2 = json.loads((tmp_path / "part" / "history.json").read_text())
    assert h1 == h2


def test_training_is_deterministic_and_seeded(tmp_path):
    a, b = toy_domains(n=2, size=48)
    r1 = train([a], [b], tmp_path / "s1", _settings(epochs=1, max_patches=4), ARCH, progress=False)
    r2 = train([a], [b], tmp_path / "s2", _settings(epochs=1, max_patches=4), ARCH, progress=False)
    r3 = train([a], [b], tmp_path / "s3", _settings(epochs=1, max_patches=4, seed=4), ARCH, progress=False)
    assert r1["history"] == r2["history"] and r1["history"] != r3["history"]


def test_two_input_channels(tmp_path):
    a, b = toy_domains(n=2, size=48)
    a2 = (a * 0.5 + 0.2).astype(np.float32)
    train([a, a2], [b], tmp_path / "m", _settings(epochs=1, max_patches=2), ARCH, progress=False)
    tr = Translator(tmp_path / "m", tile=64, overlap=16)
    assert tr.in_channels == 2 and tr.gen.stem[0].in_channels == 2 + ARCH.noise_channels
    out = tr([a, a2])[0]
    assert out.shape == a.shape
    with pytest.raises(FibsynthError, match="2 input channel"):
        tr([a])


def test_no_transposed_convolutions():
    import torch

    from fibsynth.gan.model import make_generator

    g = make_generator(Architecture())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert any(isinstance(m, torch.nn.Conv2d) for m in g.modules())


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_model_files_are_weights_only(tmp_path):
    import torch

    from gan_helpers import random_model

    d = random_model(tmp_path / "m")
    load_generator(d)  # the genuine one loads
    marker = tmp_path / "pwned"
    torch.save({"x": _Evil(str(marker))}, d / "generator_ab.pt")
    with pytest.raises(FibsynthError, match="refused") as e:
        load_generator(d)
    assert not marker.exists() and "\n" not in str(e.value)
    (d / "generator_ab.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(FibsynthError, match="refused"):
        load_generator(d)
    torch.save([torch.zeros(2)], d / "generator_ab.pt")
    with pytest.raises(FibsynthError, match="state_dict"):
        load_generator(d)
    torch.save({"stem.0.weight": torch.zeros(3, 3)}, d / "generator_ab.pt")
    with pytest.raises(FibsynthError, match="do not match the architecture"):
        load_generator(d)
    (d / "config.json").write_text("{broken")
    with pytest.raises(FibsynthError, match="not valid JSON"):
        load_generator(d)
    (d / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(FibsynthError, match="unknown model format"):
        load_generator(d)
    with pytest.raises(FibsynthError, match="shipped"):
        load_generator(tmp_path / "nope")
