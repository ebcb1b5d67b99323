"""Smoke test of the end-to-end demo at reduced size: every stage runs and the report is self-contained."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from fibsynth.cli import main
from fibsynth.io import read_volume


def _real_stack(path: Path) -> Path:
    """A small uint16 image stack standing in for a user's FIB-SEM data (only its reading is tested here)."""
    from fibsynth.io import VolumeMeta, write_volume

    rng = np.random.default_rng(0)
    data = (20000 + 3000 * rng.standard_normal((5, 40, 56))).clip(0, 65535).astype(np.uint16)
    write_volume(path, data, VolumeMeta(kind="image"))
    return path


def test_reduced_demo_runs_and_writes_a_self_contained_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    real = _real_stack(tmp_path / "my_fibsem.tif")
    assert main(["demo", "--out", str(out), "--size", "48", "--seed", "3", "--real", str(real)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    m = summary["measured"]
    assert abs(m["solid_fraction (measured)"] - m["solid_fraction (requested)"]) <= 0.01
    assert 0 < summary["montecarlo"]["mean BSE yield over epoxy"] < summary["montecarlo"]["mean BSE yield over gold"] < 1

    structure = read_volume(out / "structure.tif")
    assert structure.meta.kind == "structure" and structure.meta.seed == 3
    mc = read_volume(out / "montecarlo.tif")
    assert mc.meta.kind == "image" and mc.meta.energy_kev == 2.0
    assert mc.data.dtype == np.float32 and mc.data.shape == (3, 48, 48)
    assert mc.meta.offset_voxels == (24, 0, 0)  # slices 24..26 of the structure: it overlays them in napari
    assert mc.meta.generator == "montecarlo" and mc.meta.materials == {"0": "epoxy", "1": "gold"}

    seg = summary["segmentation"]
    assert 0 <= seg["2.5D U-Net: MP"] <= 100 and 0 <= seg["Otsu: MDS"] <= 1
    pred = read_volume(out / "heldout_segmented.tif")
    assert pred.meta.kind == "label" and pred.data.shape == (48, 48, 48)
    assert set(np.unique(pred.data).tolist()) <= {0, 1}
    # the demo's fast path: the paired translator by default (the shipped CycleGAN before issue 15), at the MC's dose
    fast_params = read_volume(out / "synthetic_train.tif").meta.parameters
    assert fast_params["translator"] == "paired" and fast_params["electrons_per_pixel"] == 100

    assert summary["real_stack"]["shape (z, y, x)"] == "(5, 40, 56)"
    assert summary["real_stack"]["dtype"] == "uint16"

    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    assert "Real stack" in html
    assert "my_fibsem.tif" in html
    # self-contained: no external resources
    assert not re.search(r"""(src|href)=['"]https?://""", html)


def test_demo_real_stack_errors_are_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.tif"
    bad.write_text("not an image")
    assert main(["demo", "--out", str(tmp_path / "d"), "--size", "48", "--real", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "notes.tif" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "d").exists()  # checked before any work or output
    assert main(["demo", "--out", str(tmp_path / "d"), "--size", "48", "--real", str(tmp_path / "missing.tif")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
