"""What a careless or hostile user does to ``gan train`` / ``gan translate`` (issue 12): every case one line and
exit 2 before any work (no partial config.json), Ctrl-C one "interrupted" line and exit 130 with the last epoch's
checkpoint kept, a checkpoint after every epoch into one ``last.ckpt``, resume refused from a corrupt or foreign
checkpoint."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch

from fibsynth.cli import main
from fibsynth.gan import Translator
from fibsynth.gan.model import WEIGHTS, load_state
from fibsynth.io import write_volume

from gan_helpers import random_model, toy_domains



def invoke(args):
    """The command through typer without cli.main's handling: typer turns a KeyboardInterrupt that leaves the
    command into a returned 130 (a SystemExit from Lightning would propagate instead)."""
    from fibsynth.cli import app

    return app(args=args, standalone_mode=False, prog_name="fibsynth")


def _one_line(capsys, args, needle, code=2):
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err, err
    return err


@pytest.fixture
def pair(tmp_path):
    a, b = toy_domains(n=2, size=40)
    write_volume(tmp_path / "a.tif", a)
    write_volume(tmp_path / "b.tif", b)
    return ["gan", "train", "--source", str(tmp_path / "a.tif"), "--target", str(tmp_path / "b.tif"),
            "--channels", "4", "--depth", "2", "--disc-channels", "4", "--max-patches", "2", "--patch", "32",
            "--stride", "32", "--no-progress", "--threads", "1"]


@pytest.mark.parametrize("extra,needle", [
    (["--patch", "16"], "--patch"),  # the discriminator's three stride-2 layers leave nothing of 16 pixels
    (["--strategy", "banana"], "--strategy"),
    (["--accelerator", "gpu"], "--accelerator"),
    (["--threads", "0"], "--threads"),
])
def test_bad_settings_refused_before_any_output(tmp_path, capsys, pair, extra, needle):
    if "gpu" in extra and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "m"
    _one_line(capsys, pair + ["--out", str(out), "--stride", "16"] + extra, needle)
    assert not out.exists()  # no partial config.json


def test_checkpoint_every_epoch_interrupt_and_resume(tmp_path, capsys, pair, monkeypatch):
    import lightning.pytorch as pl

    gt = importlib.import_module("fibsynth.gan.train")  # the package re-exports the function train

    full = tmp_path / "full"
    assert main(pair + ["--out", str(full), "--epochs", "2"]) == 0
    capsys.readouterr()

    real = gt._samples_callback

    def interrupting(out_dir, sa, sb):  # Ctrl-C at the end of the second epoch, before its checkpoint
        class Stop(pl.Callback):
            def on_train_epoch_end(self, trainer, module):
                if trainer.current_epoch == 1:
                    raise KeyboardInterrupt

        return Stop()

    part = tmp_path / "part"
    monkeypatch.setattr(gt, "_samples_callback", interrupting)
    # Lightning catches the Ctrl-C and calls sys.exit(1): the library gives the KeyboardInterrupt back (the CLI
    # turns it into its one "interrupted" line and exit status 130)
    assert invoke(pair + ["--out", str(part), "--epochs", "2"]) == 130
    ckdir = part / "checkpoints"
    assert sorted(p.name for p in ckdir.iterdir()) == ["last.ckpt"]  # written after epoch 0, kept
    assert torch.load(ckdir / "last.ckpt", weights_only=True)["epoch"] == 0
    monkeypatch.setattr(gt, "_samples_callback", real)
    assert main(pair + ["--out", str(part), "--epochs", "2", "--resume"]) == 0
    for key in WEIGHTS.values():  # the resumed run ends where the uninterrupted one does
        s1, s2 = load_state(full / key), load_state(part / key)
        assert all(torch.equal(s1[k], s2[k]) for k in s1)
    # resuming a finished run with more epochs: still one last.ckpt, now of the last epoch (no last-v1.ckpt)
    assert main(pair + ["--out", str(part), "--epochs", "3", "--resume"]) == 0
    assert sorted(p.name for p in ckdir.iterdir()) == ["last.ckpt"]
    assert torch.load(ckdir / "last.ckpt", weights_only=True)["epoch"] == 2
    assert json.loads((part / "config.json").read_text())["training"]["epochs_run"] == 3
    capsys.readouterr()
    # a checkpoint of another architecture, a corrupt one: one line, and the run's files are untouched
    before = (part / "config.json").read_bytes()
    _one_line(capsys, pair + ["--out", str(part), "--epochs", "4", "--resume", "--channels", "8"], "architecture")
    (ckdir / "last.ckpt").write_bytes(b"PK\x03\x04 garbage")
    _one_line(capsys, pair + ["--out", str(part), "--epochs", "4", "--resume"], "--resume")
    assert (part / "config.json").read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"garbage that is not a torch file"])
def test_unreadable_generator_weights_one_line_exit_2(tmp_path, capsys, content):
    d = random_model(tmp_path / "m")
    (d / "generator_ab.pt").write_bytes(content)
    img = tmp_path / "i.tif"
    write_volume(img, np.zeros((1, 16, 16), np.float32))
    _one_line(capsys, ["gan", "translate", str(d), str(img), str(tmp_path / "o.tif")], "refused")
    assert not (tmp_path / "o.tif").exists()


def test_translator_validates_once_and_scopes_threads(tmp_path, capsys):
    from fibsynth.errors import FibsynthError

    d = random_model(tmp_path / "m")
    for kw, param in (({"device": "banana"}, "device"), ({"batch": 0}, "batch"), ({"threads": 0}, "threads"),
                      ({"tile": 30}, "tile"), ({"seed": -1}, "seed")):
        with pytest.raises(FibsynthError) as e:
            Translator(d, **kw)
        assert e.value.param == param, kw
    before = torch.get_num_threads()
    tr = Translator(d, threads=1, tile=32, overlap=8)
    tr(np.zeros((1, 40, 40), np.float32))
    assert torch.get_num_threads() == before  # the process keeps its thread count
    img = tmp_path / "i.tif"
    write_volume(img, np.zeros((1, 16, 16), np.float32))
    _one_line(capsys, ["gan", "translate", str(d), str(img), str(tmp_path / "o.tif"), "--device", "banana"], "--device")
    if not torch.cuda.is_available():
        _one_line(capsys, ["gan", "translate", str(d), str(img), str(tmp_path / "o.tif"), "--device", "cuda"], "CUDA")
