"""``fibsynth gan`` train/translate end to end on tiny stacks, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.io import read_volume, write_volume

from gan_helpers import random_model, toy_domains


def one_line_error(capsys, args, needle):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err


def test_train_and_translate(tmp_path, capsys):
    a, b = toy_domains(n=2, size=48)
    write_volume(tmp_path / "a.tif", a)
    write_volume(tmp_path / "b.tif", b)
    m = tmp_path / "model"
    args = ["gan", "train", "--source", str(tmp_path / "a.tif"), "--target", str(tmp_path / "b.tif"), "--out", str(m),
            "--epochs", "1", "--patch", "32", "--stride", "32", "--channels", "4", "--depth", "2",
            "--disc-channels", "4", "--max-patches", "2", "--no-progress", "--threads", "1"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().err
    one_line_error(capsys, args, "--resume")  # refuses to overwrite a run
    assert main(args + ["--epochs", "2", "--resume"]) == 0  # the last --epochs wins
    assert "2 epochs" in capsys.readouterr().err
    for suffix in ("tif", "zarr"):
        out = tmp_path / f"t.{suffix}"
        assert main(["gan", "translate", str(m), str(tmp_path / "a.tif"), str(out), "--tile", "32", "--overlap", "8"]) == 0
        v = read_volume(out)
        assert v.data.shape == a.shape and v.data.dtype == np.uint16 and v.meta.generator == "cyclegan"
    out = tmp_path / "r.npy"
    assert main(["gan", "translate", str(m), str(tmp_path / "b.tif"), str(out), "--reverse", "--dtype", "float32"]) == 0
    assert read_volume(out).data.dtype == np.float32


def test_cli_errors_are_one_line(tmp_path, capsys):
    a, b = toy_domains(n=1, size=40)
    write_volume(tmp_path / "a.tif", a)
    write_volume(tmp_path / "b.tif", b)
    base = ["gan", "train", "--source", str(tmp_path / "a.tif"), "--target", str(tmp_path / "b.tif"), "--out",
            str(tmp_path / "m")]
    one_line_error(capsys, ["gan", "train", "--source", str(tmp_path / "no.tif"), "--target", str(tmp_path / "b.tif"),
                            "--out", str(tmp_path / "m")], "file not found")
    one_line_error(capsys, base + ["--patch", "30"], "--patch")
    one_line_error(capsys, base + ["--norm", "layer"], "--norm")
    one_line_error(capsys, base + ["--epochs", "0"], "--epochs")
    one_line_error(capsys, base + ["--resume"], "--resume")
    one_line_error(capsys, base + ["--devices", "x"], "--devices")
    one_line_error(capsys, ["gan", "translate", str(tmp_path / "nomodel"), str(tmp_path / "a.tif"), str(tmp_path / "o.tif")],
                   "shipped")
    d = random_model(tmp_path / "rm")
    (d / "generator_ab.pt").write_bytes(b"\x80\x04junk")
    one_line_error(capsys, ["gan", "translate", str(d), str(tmp_path / "a.tif"), str(tmp_path / "o.tif")], "refused")
    d2 = random_model(tmp_path / "rm2")
    one_line_error(capsys, ["gan", "translate", str(d2), str(tmp_path / "a.tif"), str(tmp_path / "o.tif"),
                            "--tile", "30"], "--tile")
    one_line_error(capsys, ["gan", "translate", str(d2), str(tmp_path / "a.tif"), str(tmp_path / "o.tif"),
                            "--channel", str(tmp_path / "a.tif")], "input channel")
