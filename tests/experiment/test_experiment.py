"""fibsynth run: a tiny experiment runs, reruns nothing, reruns only what a changed parameter touches; bad specs
give one-line errors naming the file, the step and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fibsynth.errors import FibsynthError
from fibsynth.experiment import load_experiment, run_experiment
from fibsynth.experiment.cache import step_key
from fibsynth.experiment.runner import plan

TINY = Path(__file__).with_name("tiny.yaml")
DOWNSTREAM_OF_SEG = ["seg", "pred", "ev", "tab"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("work")
    return wd, run_experiment(TINY, workdir=wd, quiet=True)


def test_tiny_experiment_runs_and_writes_a_table(first_run):
    wd, rep = first_run
    assert rep.ran == ["gt_train", "gt_test", "sml_train", "sml_test", "seg", "pred", "ev", "tab"]
    md = (wd / "tables" / "tab.md").read_text()
    assert "| model | MP | MGP | MDS | e_tpcf |" in md and "| sML |" in md
    metrics = json.loads((wd / "steps" / "ev" / "metrics.json").read_text())
    assert 0.0 <= metrics["MDS"] <= 1.0 and 0.0 <= metrics["MP"] <= 100.0
    csv = (wd / "tables" / "tab.csv").read_text().splitlines()
    assert csv[0] == "model,MP,MGP,MDS,e_tpcf" and csv[1].startswith("sML,")
    assert f"{metrics['MDS']:.3f}" in csv[1]
    fast = json.loads((wd / "steps" / "sml_train" / "DONE.json").read_text())
    assert "projection only" in fast["summary"]["translation"]


def test_rerun_executes_nothing(first_run):
    wd, _ = first_run
    rep = run_experiment(TINY, workdir=wd, quiet=True)
    assert rep.ran == [] and len(rep.cached) == 8


def test_changing_segmentation_parameter_reruns_only_it_and_dependants(first_run, tmp_path):
    wd, _ = first_run
    dry = run_experiment(TINY, workdir=wd, overrides={"epochs": 1}, dry_run=True, quiet=True)
    assert dry.would_run == DOWNSTREAM_OF_SEG
    assert {s.name: s.reason for s in dry.steps}["pred"].startswith("input changed")
    rep = run_experiment(TINY, workdir=wd, overrides={"epochs": 1}, quiet=True)
    assert rep.ran == DOWNSTREAM_OF_SEG
    assert set(rep.cached) == {"gt_train", "gt_test", "sml_train", "sml_test"}
    # and back: the original results are still cached
    assert run_experiment(TINY, workdir=wd, quiet=True).ran == []


def test_force_reruns_step_and_downstream(first_run):
    wd, _ = first_run
    rep = run_experiment(TINY, workdir=wd, force=["ev"], dry_run=True, quiet=True)
    assert rep.would_run == ["ev", "tab"]


def test_cache_key_depends_on_parameters_inputs_and_version():
    k = step_key("fast", {"energy_kev": 2.0}, {"inputs.structure": ["a"]}, version="1")
    assert k == step_key("fast", {"energy_kev": 2.0}, {"inputs.structure": ["a"]}, version="1")
    assert k != step_key("fast", {"energy_kev": 1.0}, {"inputs.structure": ["a"]}, version="1")
    assert k != step_key("fast", {"energy_kev": 2.0}, {"inputs.structure": ["b"]}, version="1")
    assert k != step_key("fast", {"energy_kev": 2.0}, {"inputs.structure": ["a"]}, version="2")
    assert k != step_key("montecarlo", {"energy_kev": 2.0}, {"inputs.structure": ["a"]}, version="1")
    spec = load_experiment(TINY)
    _, k1, _ = plan(spec)
    _, k2, _ = plan(load_experiment(TINY, {"size": 40}))
    assert all(k1[n] != k2[n] for n in k1)  # every step depends on the structures' shape
    _, k3, _ = plan(load_experiment(TINY, {"epochs": 3}))
    assert [n for n in k1 if k1[n] != k3[n]] == DOWNSTREAM_OF_SEG


def _bad(tmp_path, edit) -> str:
    raw = yaml.safe_load(TINY.read_text())
    edit(raw)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(FibsynthError) as ei:
        load_experiment(p)
    msg = str(ei.value)
    assert "\n" not in msg and str(p) in msg
    return msg


def test_bad_specs_give_one_line_errors(tmp_path):
    m = _bad(tmp_path, lambda r: r["steps"]["seg"]["params"].update(bogus=1))
    assert "step 'seg'" in m and "params.bogus" in m
    m = _bad(tmp_path, lambda r: r["steps"]["seg"]["params"].update(epochs=0))
    assert "step 'seg'" in m and "params.epochs" in m and "greater than or equal to 1" in m
    m = _bad(tmp_path, lambda r: r["steps"]["pred"]["inputs"].update(model="nope"))
    assert "step 'pred'" in m and "inputs.model" in m and "unknown step 'nope'" in m
    m = _bad(tmp_path, lambda r: r["steps"]["pred"]["inputs"].pop("model"))
    assert "step 'pred'" in m and "inputs.model" in m and "missing" in m
    m = _bad(tmp_path, lambda r: r["steps"]["gt_train"].update(inputs={"structure": "ev"}))
    assert "step 'gt_train'" in m and "inputs.structure" in m
    m = _bad(tmp_path, lambda r: r["steps"]["sml_train"]["inputs"].update(structure="seg"))
    assert "cycle" in m
    m = _bad(tmp_path, lambda r: r["steps"]["gt_test"]["params"].update(shape=[4, 32, 32]))
    assert "step 'gt_test'" in m and "params.shape" in m and "8..4096" in m
    m = _bad(tmp_path, lambda r: r["steps"]["gt_test"].update(colour="red"))
    assert "step 'gt_test'" in m and "colour" in m
    m = _bad(tmp_path, lambda r: r["steps"]["ev"].update(kind="evalute"))
    assert "step 'ev'" in m and "kind" in m
    m = _bad(tmp_path, lambda r: r["steps"]["seg"]["params"].update(epochs="${nope}"))
    assert "step 'seg'" in m and "${nope}" in m
    m = _bad(tmp_path, lambda r: r["steps"]["tab"]["params"]["cells"]["sML"].update(x="missing_step"))
    assert "step 'tab'" in m and "params.cells" in m and "missing_step" in m
    m = _bad(tmp_path, lambda r: r.update(colour="red"))
    assert "colour" in m and "Extra inputs" in m
    m = _bad(tmp_path, lambda r: r["vars"].update(size="big"))
    assert "step 'gt_t" in m and "params.shape.0" in m and "'big'" in m
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: {a: [unclosed\n")
    with pytest.raises(FibsynthError, match="broken.yaml: not valid YAML"):
        load_experiment(broken)
    with pytest.raises(FibsynthError, match="--set colour: not a variable"):
        load_experiment(TINY, {"colour": 1})
    with pytest.raises(FibsynthError, match="--force nope"):
        run_experiment(TINY, workdir=tmp_path / "w", force=["nope"], quiet=True)


def test_foreach_expands_steps(tmp_path):
    p = tmp_path / "fe.yaml"
    p.write_text(
        "vars: {n: 16}\n"
        "steps:\n"
        "  gt: {kind: structure, params: {shape: ['${n}', '${n}', '${n}']}}\n"
        "  mc_{E}kv: {kind: montecarlo, foreach: {E: [1, 2]}, inputs: {structure: gt},\n"
        "             params: {energy_kev: '${E}', electrons_per_pixel: 2, slices: [0, 1]}}\n"
        "  ev_{E}: {kind: evaluate, foreach: {E: [1, 2]}, inputs: {prediction: 'mc_{E}kv'}}\n"
    )
    spec = load_experiment(p)
    assert list(spec.steps) == ["gt", "mc_1kv", "mc_2kv", "ev_1", "ev_2"]
    assert spec.steps["mc_2kv"].params["energy_kev"] == 2
    assert spec.steps["ev_1"].inputs["prediction"] == "mc_1kv"


def test_tiny_montecarlo_and_degrade_steps(tmp_path):
    p = tmp_path / "mc.yaml"
    p.write_text(
        "steps:\n"
        "  gt: {kind: structure, params: {shape: [8, 16, 16], voxel_nm: 5, ligament_nm: 20}}\n"
        "  mc: {kind: montecarlo, inputs: {structure: gt}, params: {energy_kev: 2, electrons_per_pixel: 3, slices: [2, 4]}}\n"
        "  real: {kind: degrade, inputs: {images: mc}, params: {gamma: 0.5, noise_std: 0.1, seed: 3}}\n"
    )
    rep = run_experiment(p, workdir=tmp_path / "w", quiet=True)
    assert rep.ran == ["gt", "mc", "real"]
    import numpy as np

    from fibsynth.io import read_volume
    mc = read_volume(tmp_path / "w" / "steps" / "mc" / "volume.npy")
    lab = np.asarray(read_volume(tmp_path / "w" / "steps" / "real" / "labels.npy").data)
    gt = np.asarray(read_volume(tmp_path / "w" / "steps" / "gt" / "volume.npy").data)
    assert mc.data.shape == (2, 16, 16) and mc.meta.energy_kev == 2
    assert np.array_equal(lab, gt[2:4])


def test_cli_command_dry_run_json(first_run):
    import typer
    from typer.testing import CliRunner

    from fibsynth.experiment.cli import run

    app = typer.Typer()
    app.command("run")(run)
    app.command("other")(lambda: None)  # keep 'run' a sub-command, as under the fibsynth app
    wd, _ = first_run
    res = CliRunner().invoke(app, ["run", str(TINY), "--workdir", str(wd), "--dry-run", "--json", "--set", "epochs=7"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout[res.stdout.index("{"):])
    assert [s["name"] for s in rep["steps"] if s["status"] == "would run"] == DOWNSTREAM_OF_SEG


def test_adapt_translate_and_fast_with_trained_model(tmp_path):
    p = tmp_path / "da.yaml"
    p.write_text(
        "steps:\n"
        "  gt: {kind: structure, params: {shape: [8, 32, 32], voxel_nm: 5, ligament_nm: 20}}\n"
        "  mc: {kind: montecarlo, inputs: {structure: gt}, params: {energy_kev: 1, electrons_per_pixel: 2}}\n"
        "  proj: {kind: fast, inputs: {structure: gt}, params: {energy_kev: 1, translation: projection}}\n"
        "  gan: {kind: adapt, inputs: {source: proj, target: mc},\n"
        "        params: {epochs: 1, patch: 32, stride: 32, batch: 2, max_patches: 4, gen_channels: 4, gen_depth: 2,\n"
        "                 disc_channels: 4, accelerator: cpu}}\n"
        "  sml: {kind: fast, inputs: {structure: gt, model: gan}, params: {energy_kev: 1}}\n"
        "  tr: {kind: translate, inputs: {model: gan, images: proj}}\n"
    )
    rep = run_experiment(p, workdir=tmp_path / "w", quiet=True)
    assert rep.ran == ["gt", "mc", "proj", "gan", "sml", "tr"]
    summ = {s.name: s.summary for s in rep.steps}
    assert "projection only" in summ["proj"]["translation"]  # no shipped 1 keV model
    assert summ["sml"]["translation"] == "experiment-trained CycleGAN"
    import numpy as np

    from fibsynth.io import read_volume
    steps = tmp_path / "w" / "steps"
    sml = np.asarray(read_volume(steps / "sml" / "volume.npy").data)
    tr = np.asarray(read_volume(steps / "tr" / "volume.npy").data)
    proj = np.asarray(read_volume(steps / "proj" / "volume.npy").data)
    assert sml.shape == proj.shape == (8, 32, 32) and np.isfinite(sml).all()
    assert np.allclose(sml, tr, atol=1e-5)  # fast + model == projection translated by the same model
    assert not np.allclose(tr, proj)
