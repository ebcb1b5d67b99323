"""``fibsynth reconstruct --materials a,b,c`` (three phases) end to end on a tiny realistic stack with minimal
budgets: per-phase outputs and metadata, the first-pass estimate, the report (headless Chromium), one-line errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.io import read_volume

REPO = Path(__file__).resolve().parents[2]
TINY = ["--structures", "1", "--val-structures", "1", "--synth-slices", "8", "--synth-side", "32", "--seg-steps", "2",
        "--no-reestimate", "--seed", "3", "--quiet"]


def _maker():
    spec = importlib.util.spec_from_file_location("realistic_stack", REPO / "benchmarks" / "realistic_stack.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """12 x 40 x 40: three phases from two thresholds of a band-pass random field (darkest = label 0), each with
    its gray level, blurred and degraded by the test's artifact model."""
    from scipy.ndimage import gaussian_filter

    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume

    R = _maker()
    d = tmp_path_factory.mktemp("tiny3")
    vz = (8.0, 4.0, 4.0)
    f = R.bandpass_field((12, 40, 40), vz, 60.0, 0.5, np.random.default_rng(1))
    truth = np.digitize(f, np.quantile(f, [0.4, 0.75])).astype(np.uint8)
    ideal = gaussian_filter(np.array([0.15, 0.5, 0.9], np.float32)[truth], (0.7, 1.0, 1.0))
    u8, t, _ = R.degrade(ideal, truth, seed=4)
    vox = VoxelSize.from_xy_z(4, 8)
    write_volume(d / "stack.tif", u8, VolumeMeta(kind="image", voxel_size_nm=vox, energy_kev=2.0))
    write_volume(d / "truth.tif", t, VolumeMeta(kind="label", voxel_size_nm=vox))
    return d


@pytest.fixture(scope="module")
def run(tiny):
    out = tiny / "out"
    rc = main(["reconstruct", str(tiny / "stack.tif"), str(out), "--truth", str(tiny / "truth.tif"),
               "--materials", "epoxy,Ni,Au", *TINY])
    assert rc == 0
    return out


def test_outputs_metadata_and_per_phase_evaluation(run, tiny):
    for f in ("segmentation.tif", "confidence.tif", "multiotsu.tif", "probability_0.tif", "probability_2.tif",
              "summary.json", "report.html"):
        assert (run / f).is_file(), f
    seg = read_volume(run / "segmentation.tif")
    truth = np.asarray(read_volume(tiny / "truth.tif").data)
    assert seg.data.shape == truth.shape and seg.data.dtype == np.uint8 and int(np.asarray(seg.data).max()) <= 2
    assert seg.meta.materials == {"0": "epoxy", "1": "Ni", "2": "Au"} and seg.meta.kind == "label"
    conf = np.asarray(read_volume(run / "confidence.tif").data)
    assert conf.min() >= -1e-6 and conf.max() <= 1 + 1e-6
    p = sum(np.asarray(read_volume(run / f"probability_{i}.tif").data, np.float64) for i in range(3))
    assert np.allclose(p, 1.0, atol=1e-4)  # the classes' probabilities per voxel sum to 1
    s = json.loads((run / "summary.json").read_text())
    assert s["phases"] == 3 and s["materials"]["2"] == "Au"
    q = s["estimate_first_pass"]["quantities"]
    for i in range(3):
        assert 0 < q[f"fraction_{i}"]["value"] < 1 and q[f"fraction_{i}"]["uncertainty"] > 0
        assert q[f"diameter_{i}_nm"]["value"] > 4.0
    assert abs(sum(q[f"fraction_{i}"]["value"] for i in range(3)) - 1) < 1e-6
    ev = s["evaluation"]
    assert set(ev) == {"U-Net (fibsynth)", "multi-Otsu", "ground truth"}
    mo = ev["multi-Otsu"]
    # the bright phase (Au) is label 2, the dark one label 0: multi-Otsu's order from the materials is right
    assert mo["MDS"] > 0.55 and mo["phases"]["2"]["Dice"] > 0.5 and mo["phases"]["0"]["Dice"] > 0.5
    assert {"fraction", "diameter_nm", "e_tpcf", "D_xy_nm"} <= set(ev["U-Net (fibsynth)"]["phases"]["1"])
    assert s["training"]["val_multiotsu_mds"] is not None
    gen = s["structures"][0]
    assert gen["parameters"]["kind"] == "two-field" and len(gen["parameters"]["fractions"]) == 3
    html = (run / "report.html").read_text()
    assert "3 phases" in html and "phase 2 (Au)" in html and "multi-Otsu" in html


def test_report_loads_in_chromium(run, tmp_path):
    spec = importlib.util.spec_from_file_location("report_browser", REPO / "tests" / "test_report_browser.py")
    rb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rb)
    rb.check_report_in_chromium(run / "report.html", tmp_path, min_images=6)


@pytest.mark.parametrize("args, words", [
    (["--phases", "2"], "--phases"),
    (["--materials", "epoxy,Au"], "materials"),
    (["--materials", "epoxy,vacuum,Au"], "--materials"),
    (["--materials", "epoxy,Au,unobtainium"], "--materials"),
    (["--phases", "4", "--materials", "epoxy,Ni,Au"], "phases"),
])
def test_errors_are_one_line(tiny, tmp_path, capsys, args, words):
    out = tmp_path / "o"
    rc = main(["reconstruct", str(tiny / "stack.tif"), str(out), *args, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and words in err, err
    assert not (out / "segmentation.tif").exists()


def test_forward_consistency_and_moved(tiny):
    """The re-estimate round's label-free choice: the truth, imaged again, correlates better with the stack than a
    degraded segmentation; ``moved_phases`` names what left its uncertainty."""
    from scipy.ndimage import binary_dilation

    from fibsynth.reconstruct.multiphase import forward_consistency_phases, moved_phases

    real = np.asarray(read_volume(tiny / "stack.tif").data, np.float32)
    truth = np.asarray(read_volume(tiny / "truth.tif").data)
    worse = truth.copy()
    worse[binary_dilation(truth == 2, iterations=2) & (truth == 0)] = 2  # the bright phase grown into the filling
    mats = ("epoxy", "Ni", "Au")
    r_true = forward_consistency_phases(truth, real, (8.0, 4.0, 4.0), 2.0, mats)
    r_worse = forward_consistency_phases(worse, real, (8.0, 4.0, 4.0), 2.0, mats)
    assert r_true > r_worse and r_true > 0.3
    q = lambda v, u: {"value": v, "uncertainty": u}  # noqa: E731
    old = {"quantities": {"fraction_0": q(0.4, 0.02), "fraction_1": q(0.3, 0.02), "network_diameter_nm": q(30, 2)}}
    new = {"quantities": {"fraction_0": q(0.45, 0.01), "fraction_1": q(0.31, 0.01), "network_diameter_nm": q(31, 1)}}
    assert moved_phases(old, new, 2) == ["fraction_0"]


def test_report_phase_panels_show_the_results(run, tiny):
    """The report's per-phase panels say what the outputs hold: for the U-Net, multi-Otsu and the ground truth, one
    row per phase with its material and the fraction of that label in the written volume (and the Dice and the MDS
    of the summary's scores), and the share of undecided voxels of confidence.tif."""
    import html as H
    import re

    page = (run / "report.html").read_text()
    s = json.loads((run / "summary.json").read_text())
    vols = {"U-Net (fibsynth)": run / "segmentation.tif", "multi-Otsu": run / "multiotsu.tif",
            "ground truth": tiny / "truth.tif"}
    assert set(s["evaluation"]) == set(vols)
    for name, f in vols.items():
        m = re.search(re.escape(H.escape(name)) + r": per phase.*?</caption>(.*?)</table>", page, re.S)
        assert m, name
        rows = dict(re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", m.group(1)))
        lab = np.asarray(read_volume(f).data)
        ev = s["evaluation"][name]
        for i, mat in enumerate(("epoxy", "Ni", "Au")):
            cell = rows[H.escape(f"phase {i} ({mat})")]
            assert f"fraction {(lab == i).mean():.3f}" in cell, (name, i, cell)
            if name != "ground truth":
                assert f"Dice vs truth {ev['phases'][str(i)]['Dice']:.3f}" in cell, (name, i, cell)
        if name != "ground truth":
            assert rows["all phases"].startswith(f"MDS {ev['MDS']:.3f}")
        assert len(rows) == 3 + (name != "ground truth")
    conf = np.asarray(read_volume(run / "confidence.tif").data)
    assert f"{100 * float((conf < 0.5).mean()):.1f} % of the voxels have a confidence below 0.5" in H.unescape(page)


def test_a_new_prediction_does_not_measure_multiotsu_again(run, tiny):
    """multi-Otsu's row is a step of its own, keyed by the stack (the estimate's labels): a new prediction (here
    another --block) redoes the U-Net's evaluation only (the code before redid the whole evaluation), and writes
    again only the files made from the prediction."""
    from fibsynth.reconstruct.workflow import output_stamp

    before = {p.name: output_stamp(p) for p in run.iterdir() if p.is_file()}
    ev = json.loads((run / "summary.json").read_text())["evaluation"]
    assert main(["reconstruct", str(tiny / "stack.tif"), str(run), "--truth", str(tiny / "truth.tif"),
                 "--materials", "epoxy,Ni,Au", *TINY, "--block", "4"]) == 0
    s = json.loads((run / "summary.json").read_text())
    st = {r["step"]: r["status"] for r in s["steps"]}
    assert st["phases_train"] == st["phases_multiotsu"] == "cached"
    assert st["phases_predict"] == st["phases_evaluate"] == "ran"
    assert s["evaluation"]["multi-Otsu"] == ev["multi-Otsu"] and s["evaluation"]["ground truth"] == ev["ground truth"]
    after = {p.name: output_stamp(p) for p in run.iterdir() if p.is_file()}
    assert after["multiotsu.tif"] == before["multiotsu.tif"]
    assert all(after[f] != before[f] for f in ("segmentation.tif", "probability_0.tif", "summary.json"))
