"""The --backend/--device switch of `fibsynth mc`: the torch path gives the numba engine's physics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, read_volume, write_volume


def _bulk(capsys, *extra) -> dict:
    assert main(["mc", "bulk", "--material", "Au", "--energy-kev", "2", "--electrons", "8000", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_bulk_torch_backend_agrees_with_numba(capsys) -> None:
    a = _bulk(capsys, "--seed", "1")
    b = _bulk(capsys, "--seed", "2", "--backend", "torch", "--device", "cpu")
    assert abs(a["eta"] - b["eta"]) < 4 * math.hypot(a["eta_std"], b["eta_std"]), (a, b)


def test_device_needs_torch_backend_and_cuda_is_reported(capsys) -> None:
    assert main(["mc", "bulk", "--material", "Au", "--energy-kev", "2", "--electrons", "10", "--device", "cpu"]) == 2
    assert "--device applies to --backend torch only" in capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        args = ["mc", "bulk", "--material", "Au", "--energy-kev", "2", "--electrons", "10", "--backend", "torch",
                "--device", "cuda"]
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no CUDA device" in err[0]


def test_stack_torch_backend(tmp_path: Path, capsys) -> None:
    vol = np.zeros((6, 8, 8), np.uint8)
    vol[:, :, :4] = 1
    src = tmp_path / "s.tif"
    write_volume(src, vol, VolumeMeta(kind="structure", voxel_size_nm=VoxelSize(x=3, y=3, z=3)))
    out = tmp_path / "img.tif"
    args = ["mc", "stack", str(src), str(out), "--energy-kev", "2", "--electrons-per-pixel", "40", "--slices", "1:3",
            "--backend", "torch", "--device", "cpu", "--workers", "1"]
    assert main(args) == 0
    img = read_volume(out).data
    assert img.shape == (2, 8, 8)
    assert img[:, :, :4].mean() > img[:, :, 4:].mean() + 0.15  # gold bright, epoxy dark
    bad = ["mc", "stack", str(src), str(tmp_path / "x.tif"), "--energy-kev", "2", "--electrons-per-pixel", "4",
           "--backend", "torch", "--workers", "2"]
    assert main(bad) == 2
    assert "--workers 1" in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("backend", ["cupy", "NUMBA"])
def test_unknown_backend(backend: str, capsys) -> None:
    assert main(["mc", "bulk", "--material", "Au", "--energy-kev", "2", "--electrons", "10", "--backend", backend]) == 2
    assert "--backend must be numba or torch" in capsys.readouterr().err
