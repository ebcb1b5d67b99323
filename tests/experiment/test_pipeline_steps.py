"""Experiment steps go through the pipeline layer: one label per product, offsets on partial stacks and their
labels, the Otsu baseline step, and the shipped demo experiment's graph."""

from __future__ import annotations

import json

import numpy as np

from fibsynth.experiment import load_experiment, run_experiment
from fibsynth.experiment.runner import plan
from fibsynth.io import read_volume


def test_montecarlo_baseline_and_evaluate_steps(tmp_path):
    p = tmp_path / "mc.yaml"
    p.write_text(
        "steps:\n"
        "  gt: {kind: structure, params: {shape: [8, 16, 16], voxel_nm: 5, ligament_nm: 20, seed: 2}}\n"
        "  mc: {kind: montecarlo, inputs: {structure: gt}, params: {energy_kev: 2, electrons_per_pixel: 4, slices: [3, 6]}}\n"
        "  otsu: {kind: baseline, inputs: {images: mc}}\n"
        "  ev: {kind: evaluate, inputs: {prediction: otsu}}\n"
    )
    rep = run_experiment(p, workdir=tmp_path / "w", quiet=True)
    assert rep.ran == ["gt", "mc", "otsu", "ev"]
    steps = tmp_path / "w" / "steps"
    mc, lab = read_volume(steps / "mc" / "volume.npy"), read_volume(steps / "mc" / "labels.npy")
    assert mc.meta.generator == "montecarlo" and mc.meta.offset_voxels == (3, 0, 0)
    assert lab.meta.kind == "label" and lab.meta.offset_voxels == (3, 0, 0)  # the labels sit with their images
    gt = np.asarray(read_volume(steps / "gt" / "volume.npy").data)
    np.testing.assert_array_equal(np.asarray(lab.data), gt[3:6])
    otsu = read_volume(steps / "otsu" / "volume.npy")
    assert otsu.meta.generator == "baseline" and otsu.meta.parameters["method"] == "otsu"
    assert otsu.meta.offset_voxels == (3, 0, 0)
    metrics = json.loads((steps / "ev" / "metrics.json").read_text())
    assert 0.5 < metrics["MDS"] <= 1.0  # gold is brighter than epoxy even at 4 electrons per pixel


def test_the_demo_is_a_shipped_experiment():
    from fibsynth.demo import DEMO_EXPERIMENT, EXPORTS

    spec = load_experiment(DEMO_EXPERIMENT, {"size": 48, "mc_first": 24, "mc_stop": 27, "seed": 3, "seed_heldout": 4})
    assert DEMO_EXPERIMENT.is_file() and "fibsynth/pipeline/data" in DEMO_EXPERIMENT.as_posix()
    names, keys, params = plan(spec)
    assert names[-1] == "report" and set(EXPORTS) <= set(names)
    assert params["montecarlo"].slices == (24, 27) and params["synthetic_heldout"].seed == 4
    assert params["segmentation_model"].mode == "2.5d" and params["segmentation_model"].epochs == 12
    # every product the report shows is an input of the report step
    assert set(spec.steps["report"].inputs) >= {"structure", "montecarlo", "segmentation", "otsu", "score_unet"}
