"""``fibsynth reconstruct`` end to end on a tiny realistic stack with minimal budgets: outputs, metadata, cache,
report, one-line errors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.io import read_volume

REPO = Path(__file__).resolve().parents[2]
TINY = ["--structures", "1", "--val-structures", "1", "--synth-slices", "8", "--synth-side", "32",
        "--gan-epochs", "1", "--gan-patches", "2", "--gan-channels", "4", "--seg-steps", "2",
        "--seg-seeds", "1", "--no-reestimate", "--seed", "3", "--quiet"]


def _maker():
    spec = importlib.util.spec_from_file_location("realistic_stack", REPO / "benchmarks" / "realistic_stack.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 12 x 40 x 40 stack: band-pass random-field truth, blurred, degraded by the test's artifact model."""
    from scipy.ndimage import gaussian_filter

    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume

    R = _maker()
    d = tmp_path_factory.mktemp("tiny")
    vz = (8.0, 4.0, 4.0)
    truth = R.grf_structure((12, 40, 40), vz, 0.35, 60.0, seed=1)
    ideal = gaussian_filter(truth.astype(np.float32), (0.7, 1.0, 1.0))
    u8, t, _ = R.degrade(ideal, truth, seed=4)
    vox = VoxelSize.from_xy_z(4, 8)
    write_volume(d / "stack.tif", u8, VolumeMeta(kind="image", voxel_size_nm=vox, energy_kev=2.0))
    write_volume(d / "truth.tif", t, VolumeMeta(kind="label", voxel_size_nm=vox))
    return d


@pytest.fixture(scope="module")
def run(tiny):
    out = tiny / "out"
    rc = main(["reconstruct", str(tiny / "stack.tif"), str(out), "--truth", str(tiny / "truth.tif"), *TINY])
    assert rc == 0
    return out


def test_outputs_and_metadata(run, tiny):
    for name in ("segmentation.tif", "probability.tif", "confidence.tif", "otsu.tif", "kmeans.tif", "summary.json",
                 "report.html"):
        assert (run / name).is_file(), name
    seg = read_volume(run / "segmentation.tif")
    assert seg.data.shape == (12, 40, 40) and set(np.unique(seg.data)) <= {0, 1}
    assert seg.meta.kind == "label" and seg.meta.voxel_size_nm.zyx() == (8.0, 4.0, 4.0)
    assert seg.meta.energy_kev == 2.0 and seg.meta.materials == {"0": "epoxy", "1": "gold"}
    assert seg.meta.parameters["settings"]["seed"] == 3
    prob = np.asarray(read_volume(run / "probability.tif").data)
    conf = np.asarray(read_volume(run / "confidence.tif").data)
    assert prob.min() >= 0 and prob.max() <= 1
    assert np.allclose(conf, np.abs(2 * prob - 1), atol=1e-6)
    assert np.array_equal(np.asarray(seg.data), (prob > 0.5).astype(np.uint8))
    s = json.loads((run / "summary.json").read_text())
    assert s["energy_kev"] == 2.0 and s["energy_source"] == "from the file"
    ev = s["evaluation"]
    for name in ("U-Net (fibsynth)", "Otsu", "k-means", "ground truth"):
        assert 0 < ev[name]["solid_fraction"] < 1
    for name in ("U-Net (fibsynth)", "Otsu", "k-means"):
        assert 0 <= ev[name]["MDS"] <= 1
    # the baselines written are the thresholds of the stack
    otsu = np.asarray(read_volume(run / "otsu.tif").data)
    assert otsu.mean() == pytest.approx(ev["Otsu"]["solid_fraction"])
    q = s["estimate_first_pass"]["quantities"]
    assert q["solid_fraction"]["uncertainty"] > 0 and q["ligament_nm"]["value"] > 0
    hd = s["rounds"][0]["histogram_distances"]
    assert set(hd) == {"before", "after"} and hd["before"]["wasserstein"] >= 0
    assert [r["step"] for r in s["steps"]] == ["inspect", "estimate", "generate", "adapt", "translate", "train",
                                                "predict", "otsu", "kmeans", "evaluate", "outputs"]
    html = (run / "report.html").read_text()
    assert "<img" in html and "http://" not in html and "https://" not in html
    for text in ("Result", "Confidence", "Your stack", "Structure: estimated and generated", "Histogram distances",
                 "Every parameter"):
        assert text in html
    # the registration's shifts are not called the stage drift: slanted features add to them (big12: 169 px found on a
    # stack misaligned by <= 12 px)
    assert "not the stage drift alone" in html and "largest total drift" not in html


def _stamps(folder: Path) -> dict[str, list]:
    """Every file under ``folder`` (outputs and step cache) as written: size, times, inode."""
    from fibsynth.reconstruct.workflow import output_stamp

    return {p.relative_to(folder).as_posix(): output_stamp(p) for p in folder.rglob("*") if p.is_file()}


def test_second_run_is_cached(run, tiny, capsys):
    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume

    # a rerun writes only the outputs the user deleted or changed: no step runs, no other file (output, summary,
    # report, cache entry) is written again, also with another --threads (where it runs, not what it computes);
    # the code before rewrote every output, the summary and the report on every rerun
    prob = np.asarray(read_volume(run / "probability.tif").data)
    (run / "segmentation.tif").unlink()
    write_volume(run / "confidence.tif", np.zeros((12, 40, 40), np.float32),
                 VolumeMeta(kind="image", voxel_size_nm=VoxelSize.from_xy_z(4, 8)))
    before = _stamps(run)
    rc = main(["reconstruct", str(tiny / "stack.tif"), str(run), "--truth", str(tiny / "truth.tif"), *TINY,
               "--threads", "1"])
    assert rc == 0
    after = _stamps(run)
    changed = {f for f in set(before) | set(after) if before.get(f) != after.get(f)}
    assert {f for f in changed if not f.startswith("work/")} == {"segmentation.tif", "confidence.tif"}
    assert len({f for f in changed if f.startswith("work/cache/")}) == 2  # their two entries (markers) only
    assert np.array_equal(np.asarray(read_volume(run / "segmentation.tif").data), (prob > 0.5).astype(np.uint8))
    assert np.allclose(np.asarray(read_volume(run / "confidence.tif").data), np.abs(2 * prob - 1), atol=1e-6)
    s = json.loads((run / "summary.json").read_text())
    assert s["settings"]["threads"] == "auto"  # the summary of the run that computed the result, not rewritten

    # a changed training parameter redoes only the training and what depends on it
    args = [a if a != "2" or i != TINY.index("--seg-steps") + 1 else "3" for i, a in enumerate(TINY)]
    before, stamps = s["evaluation"], _stamps(run)
    # the unfinished map of a prediction interrupted under yet other settings goes once this run has finished; a
    # look-alike of the user's stays (tests/reconstruct/test_partial_cleanup.py has the others)
    part = run / "work" / "partial"
    for d in (part / ("9" * 64), part / "mine"):
        d.mkdir(parents=True)
        np.save(d / "probability.npy", np.zeros((12, 40, 40), np.float32))
        (d / "done.json").write_text(json.dumps({"slices": 4}))
    assert main(["reconstruct", str(tiny / "stack.tif"), str(run), "--truth", str(tiny / "truth.tif"), *args]) == 0
    assert not (part / ("9" * 64)).exists() and (part / "mine" / "probability.npy").is_file()
    s = json.loads((run / "summary.json").read_text())
    status = {r["step"]: r["status"] for r in s["steps"]}
    assert status["generate"] == status["adapt"] == status["translate"] == "cached"
    assert status["train"] == status["predict"] == status["evaluate"] == "ran"
    # the evaluation redoes only the new prediction's part: Otsu and k-means (whole-stack thresholds, segmentations
    # and crop statistics: ~3/4 of the step on big12's 256 x 1024 x 1024 stack) depend on the stack alone
    assert status["otsu"] == status["kmeans"] == "cached"
    for name in ("Otsu", "k-means", "ground truth"):
        assert s["evaluation"][name] == before[name]
    assert (run / "otsu.tif").is_file() and (run / "report.html").is_file()  # the report read the copied functions
    # so are their files: only the new prediction's outputs are written
    assert [r.get("files") for r in s["steps"] if r["step"] == "outputs"] == [
        ["segmentation.tif", "probability.tif", "confidence.tif"]]
    now = _stamps(run)
    assert all(now[f] == stamps[f] for f in ("otsu.tif", "kmeans.tif"))
    assert all(now[f] != stamps[f] for f in ("segmentation.tif", "summary.json", "report.html"))

    # an input the report shows but no output file holds (here the ground truth's scores): only the summary and the
    # report are written again
    assert main(["reconstruct", str(tiny / "stack.tif"), str(run), *args]) == 0
    later = _stamps(run)
    assert {f for f in later if not f.startswith("work/") and later[f] != now[f]} == {"summary.json", "report.html"}
    s = json.loads((run / "summary.json").read_text())
    assert "MDS" not in s["evaluation"]["Otsu"] and "ground truth" not in s["evaluation"]


def test_report_loads_in_chromium(run, tmp_path):
    spec = importlib.util.spec_from_file_location("report_browser", REPO / "tests" / "test_report_browser.py")
    rb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rb)
    rb.check_report_in_chromium(run / "report.html", tmp_path, min_images=6)


@pytest.mark.parametrize("args, words", [
    (["nope.tif", "OUT"], "not found"),
    (["STACK", "OUT", "--correct", "sharpen"], "--correct"),
    (["STACK", "OUT", "--mode", "4d"], "--mode"),
    (["STACK", "OUT", "--structures", "0"], "--structures"),
    (["STACK", "OUT", "--solid", "unobtainium"], "--solid"),
    (["STACK", "OUT", "--solid", "vacuum"], "--solid"),  # open pores yes, an empty solid no
    (["STACK", "OUT", "--truth", "TRUTH_SMALL"], "--truth"),
])
def test_errors_are_one_line(tiny, tmp_path, capsys, args, words):
    from fibsynth.io import VolumeMeta, write_volume

    write_volume(tmp_path / "small.tif", np.zeros((3, 8, 8), np.uint8), VolumeMeta(kind="label"))
    sub = {"STACK": str(tiny / "stack.tif"), "OUT": str(tmp_path / "o"), "TRUTH_SMALL": str(tmp_path / "small.tif")}
    argv = ["reconstruct"] + [sub.get(a, a) for a in args] + ["--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fibsynth: error:") and "\n" not in err and words in err, err
    assert not (tmp_path / "o" / "segmentation.tif").exists()


@pytest.mark.parametrize("args, words", [
    (["--translation", "paired", "--energy-kev", "8"], "outside the range"),
    (["--translation", "paired", "--pore", "vacuum"], "--pore"),
    (["--translation", "cyclegan", "--energy-kev", "4"], "no shipped translation model"),
    (["--engine", "mc", "--translation", "paired"], "--translation"),
    (["--correct", "align,sharpen"], "--correct"),
    (["--phases", "3", "--translation", "paired"], "--translation"),
    (["--materials", "epoxy,Ni,Au", "--translation", "cyclegan"], "--translation"),
    (["--detector", "et"], "--detector"),  # no fast Everhart-Thornley model
    (["--detector", "inlens"], "--detector"),  # the fast SE model needs open pores
    (["--detector", "inlens", "--pore", "vacuum", "--translation", "paired"], "--translation"),
    (["--detector", "backscatter"], "--detector"),
    (["--phases", "3", "--detector", "se", "--engine", "mc"], "--detector"),
    (["--phases", "3", "--tta", "4"], "--tta"),  # the n-class prediction has no averaged form
    (["--tta", "9"], "--tta"),
    (["--seg-k", "0"], "--seg-k"),
    (["--seg-k", "9"], "--seg-k"),
    (["--seg-k", "3", "--mode", "2d"], "--seg-k: the context slices"),  # no context slices in 2D / 3D
    (["--device", "tpu9"], "--device"),
    (["--round2-steps", "0"], "--round2-steps"),
    (["--round2-steps", "1.5"], "--round2-steps"),
    (["--round2-init", "warm"], "--round2-init"),
    (["--phases", "3", "--round2-init", "round1"], "--round2-init"),  # n phases: round 2 from scratch only
    (["--align-region", "0:10,0:40"], "needs align"),  # the region registers for the align correction
    (["--correct", "align", "--align-region", "0:10"], "Y0:Y1,X0:X1"),
    (["--align-region", "auto"], "needs align"),
    # the tiny stack has no fiducial band: the detection's reason, before any folder is made
    (["--correct", "align", "--align-region", "AUTO"], "--align-region: auto found no static fiducial band"),
    (["--phases", "3", "--correct", "align", "--align-region", "auto"], "auto found no static fiducial band"),
    (["--correct", "align", "--align-region", "10:0,0:40"], "--align-region"),
    (["--correct", "align", "--align-region", "0:10,0:41"], "inside the 40 x 40"),
    (["--correct", "align", "--align-region", "0:4,0:40"], "too small"),
])
def test_combinations_refused_before_anything_runs(tiny, tmp_path, capsys, args, words):
    """Settings that cannot work together (or not at the stack's energy) are refused in one line with exit 2 before
    any step runs: no output folder, not even the step cache OUT/work."""
    out = tmp_path / "o"
    assert main(["reconstruct", str(tiny / "stack.tif"), str(out), *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fibsynth: error:") and "\n" not in err and words in err, err
    assert not out.exists()


def test_absent_gpu_refused_before_anything_runs(tiny, tmp_path, capsys):
    """``--device cuda`` on a machine without CUDA: one line naming --device, nothing written."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "o"
    assert main(["reconstruct", str(tiny / "stack.tif"), str(out), "--device", "cuda", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fibsynth: error:") and "\n" not in err and "--device" in err and "CUDA" in err, err
    assert not out.exists()


def test_threads_auto_recorded(run):
    """The default ``--threads auto`` is resolved when the run starts (usable CPUs less the 1-minute load, 1..16)
    and recorded in summary.json with the figures it used."""
    from fibsynth.ml.runtime import auto_threads

    s = json.loads((run / "summary.json").read_text())
    assert s["settings"]["threads"] == "auto"
    c = s["threads_choice"]
    assert c["rule"].startswith("auto") and c["usable_cpus"] >= 1 and c["load_1min"] >= 0
    assert s["threads"] == c["threads"] == auto_threads(c["usable_cpus"], c["load_1min"])
    assert 1 <= s["threads"] <= min(c["usable_cpus"], 16)


@pytest.mark.parametrize("value", ["0", "many", "2000"])
def test_threads_refused_in_one_line(tiny, tmp_path, capsys, value):
    out = tmp_path / "o"
    assert main(["reconstruct", str(tiny / "stack.tif"), str(out), "--threads", value, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fibsynth: error:") and "\n" not in err and "--threads" in err, err
    assert not out.exists()


def test_alignment_fill_is_left_out_and_the_outputs_carry_the_offset(tiny, tmp_path, capsys):
    """An aligned stack's fill (constant edge rows/columns, a blank first slice) is not reconstructed: the outputs
    cover the image region, carry its offset, and the summary and report say so."""
    from fibsynth.io import VolumeMeta, write_volume
    from fibsynth.reconstruct.inspect import FILL_MARGIN_PX as m

    stack = read_volume(tiny / "stack.tif")
    truth = np.asarray(read_volume(tiny / "truth.tif").data)
    img = np.asarray(stack.data)
    padded = np.zeros((13, 45, 46), img.dtype)
    padded[1:, 3:43, 4:44] = img
    big_truth = np.zeros(padded.shape, np.uint8)
    big_truth[1:, 3:43, 4:44] = truth
    write_volume(tmp_path / "aligned.tif", padded, stack.meta)
    write_volume(tmp_path / "truth.tif", big_truth, VolumeMeta(kind="label", voxel_size_nm=stack.meta.voxel_size_nm))
    out = tmp_path / "out"
    args = [a for a in TINY if a != "--quiet"]
    assert main(["reconstruct", str(tmp_path / "aligned.tif"), str(out), "--truth", str(tmp_path / "truth.tif"),
                 *args]) == 0
    assert "alignment fill left out" in " ".join(capsys.readouterr().err.split())
    seg = read_volume(out / "segmentation.tif")
    off = (1, 3 + m, 4 + m)
    assert seg.data.shape == (12, 40 - 2 * m, 40 - 2 * m) and tuple(seg.meta.offset_voxels) == off
    s = json.loads((out / "summary.json").read_text())
    assert s["region"]["offset_zyx"] == list(off) and s["inspection"]["min"] > 0
    ev = s["evaluation"]
    assert ev["ground truth"]["solid_fraction"] == pytest.approx(
        truth[:, m:40 - m, m:40 - m].mean())  # the truth scored on the same region
    assert "alignment fill (not microscope data)" in (out / "report.html").read_text()


def test_align_region_reaches_the_inspection_in_the_stacks_coordinates(tiny, tmp_path, capsys, monkeypatch):
    """--align-region is given in the stack's own pixels; the inspection registers on it where it lies once the
    alignment fill is left out; a rectangle reaching into the fill is refused in one line. The run is stopped
    inside the inspection (the step itself is tested in test_big_stack_memory.py)."""
    import fibsynth.reconstruct.inspect as I
    from fibsynth.errors import FibsynthError
    from fibsynth.io import write_volume
    from fibsynth.reconstruct.inspect import FILL_MARGIN_PX as m

    seen = {}

    def stop(stack, out_npy, corrections=(), **kw):
        seen.update(kw, corrections=corrections, shape=tuple(stack.shape))
        raise FibsynthError("stopped by the test")

    monkeypatch.setattr(I, "inspect_to_npy", stop)
    stack = read_volume(tiny / "stack.tif")
    img = np.asarray(stack.data)
    padded = np.zeros((12, 45, 46), img.dtype)
    padded[:, 3:43, 4:44] = img  # fill: 3 rows above, 4 columns left (+ the margin)
    write_volume(tmp_path / "aligned.tif", padded, stack.meta)

    y0, x0 = 3 + m, 4 + m
    argv = ["reconstruct", str(tmp_path / "aligned.tif"), str(tmp_path / "o"), "--correct", "align", "--quiet"]
    assert main(argv + ["--align-region", f"{y0}:{y0 + 10},{x0}:{x0 + 30}"]) == 2
    assert "stopped by the test" in capsys.readouterr().err
    assert seen["align_region"] == (0, 10, 0, 30) and seen["corrections"] == ("align",)
    assert main(argv + ["--align-region", f"0:10,{x0}:{x0 + 30}"]) == 2  # into the fill
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--align-region" in err and "alignment fill" in err, err


def _band_stack(path: Path, height: int, seed: int = 0, nz: int = 24) -> np.ndarray:
    """A forward-model stack (tests/microscope/test_fiducial_auto.py: 64 x 64 slices, 1 px/slice drift) with a
    fiducial band of ``height`` rows from row 6 (none for 0), written with the metadata reconstruct reads."""
    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume
    from fibsynth.microscope import (Curtaining, Detector, Drift, Fiducial, MicroscopeModel, apply)

    spec = importlib.util.spec_from_file_location("fid_auto", REPO / "tests" / "microscope" / "test_fiducial_auto.py")
    F = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(F)
    m = MicroscopeModel(detector=Detector(electrons_per_pixel=300, read_noise=0.005),
                        drift=Drift(xy_step_px=1.0, blur_px=0.5), curtaining=Curtaining(amplitude=0.02),
                        fiducial=Fiducial(height_px=height, top_px=6, mark_spacing_px=24), seed=seed)
    r = apply(F.changing_stack(nz=nz, seed=seed), m)
    x = r.image.astype(np.float32)
    write_volume(path, x, VolumeMeta(kind="image", voxel_size_nm=VoxelSize.from_xy_z(4, 8), energy_kev=2.0))
    return x, np.asarray(r.record["realised"]["shifts_px"])


def test_align_region_auto_registers_on_the_band_found_as_on_the_same_region_by_hand(tmp_path, capsys, monkeypatch):
    """``--align-region auto`` finds the fiducial band of a forward-model stack, prints and records it (region,
    confidence, reason) in the inspection (summary.json's ``inspection``), and the inspection registers on it exactly
    as on the same rectangle given by hand (same shifts, same record, same step key). The run is stopped after the
    inspection."""
    import fibsynth.reconstruct.workflow as W
    from fibsynth.errors import FibsynthError

    _, true = _band_stack(tmp_path / "band.tif", 16)
    seen = []

    def stop(insp, truth_arr, console):
        seen.append(insp)
        raise FibsynthError("stopped by the test")

    monkeypatch.setattr(W, "fill_region", stop)
    argv = ["reconstruct", str(tmp_path / "band.tif")]
    assert main(argv + [str(tmp_path / "a"), "--correct", "align", "--align-region", "auto"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    auto = seen[0]["drift_region_auto"]
    y0, y1, x0, x1 = auto["region"]
    assert y0 <= 6 and 18 <= y1 <= 24 and (x0, x1) == (0, 64), auto  # the band: rows 6:22, full width
    assert auto["confidence"] > 0.5 and auto["reason"] == "" and auto["used"] == auto["region"]
    assert auto["slices"] == [0, 24] and auto["min_lag"] == 8
    assert f"--align-region auto: fiducial band found at rows {y0}:{y1}, columns 0:64" in err, err
    assert seen[0]["drift_region"] == auto["region"]
    hand = f"{y0}:{y1},{x0}:{x1}"
    assert main(argv + [str(tmp_path / "h"), "--correct", "align", "--align-region", hand, "--quiet"]) == 2
    assert "drift_region_auto" not in seen[1]
    assert seen[1]["drift_shifts_px"] == seen[0]["drift_shifts_px"]
    assert {k: v for k, v in seen[0].items() if k != "drift_region_auto"} == seen[1]
    keys = [sorted(p.name for p in (tmp_path / o / "work" / "cache").iterdir()) for o in "ah"]
    assert keys[0] == keys[1] and keys[0], keys  # the same inspect key (and fill key)
    # registered on the band, not on the whole slices: the drift the forward model put in
    assert main(argv + [str(tmp_path / "w"), "--correct", "align", "--quiet"]) == 2
    err = [np.abs(np.asarray(r["drift_shifts_px"]) + true).mean() for r in seen]
    assert err[0] < 0.3 and err[0] < 0.5 * err[2], err


def test_align_region_auto_reads_only_the_first_slices(tmp_path, capsys):
    """The detection reads the first 48 slices of a (lazily read) stack, never the whole; a stack without a band
    is refused in one line naming --align-region with the detector's reason before any folder is made; the library
    settings take auto (their errors name ``align_region``)."""
    from fibsynth.errors import FibsynthError
    from fibsynth.reconstruct.settings import ReconstructSettings
    from fibsynth.reconstruct.workflow import resolve_align_region

    x, _ = _band_stack(tmp_path / "b.tif", 16, nz=60)

    class Recording:
        shape, dtype, reads = x.shape, x.dtype, []

        def __getitem__(self, key):
            self.reads.append(key)
            return x[key]

    rec = Recording()
    region, auto = resolve_align_region("auto", rec)
    assert rec.reads == [slice(None, 48)] and auto["slices"] == [0, 48] and region == tuple(auto["region"])
    # the same forward model without the band: one line, exit 2, before any folder is made
    _band_stack(tmp_path / "n.tif", 0)
    out = tmp_path / "o"
    assert main(["reconstruct", str(tmp_path / "n.tif"), str(out), "--correct", "align", "--align-region", "auto"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()  # the detection's progress line, then the error: one line
    assert "looking for a static fiducial band in the first 24 slices" in lines[0] and len(lines) == 2, lines
    assert lines[1].startswith("fibsynth: error:") and "--align-region: auto found no static fiducial band in " \
        "slices 0:24" in lines[1], lines
    assert not out.exists()
    assert ReconstructSettings(correct=("align",), align_region=" Auto").align_region == "auto"
    with pytest.raises(FibsynthError) as e:
        ReconstructSettings(align_region="auto")
    assert e.value.param == "align_region"
