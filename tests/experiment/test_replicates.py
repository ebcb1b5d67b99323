"""Replicates of an experiment: tables as mean +- sd over the replicates, costs from the steps' records."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from fibsynth.errors import FibsynthError
from scipy import stats as scipy_stats

from fibsynth.experiment.replicates import (PAPER_SEEDS, aggregate, costs, costs_markdown, finished, paired_table,
                                          run_replicate)


def _replicate(wd: Path, mds: list[float], mc_s: float, fast_s: float, rss: float) -> Path:
    (wd / "tables").mkdir(parents=True)
    (wd / "tables" / "t.csv").write_text("model,1 kV MDS,2 kV MDS\n"
                                        f"sMC,{mds[0]},{mds[1]}\nsML,{mds[2]},\n")
    for name, kind, e, s in (("mc_1", "montecarlo", 1, mc_s), ("mc_2", "montecarlo", 2, 2 * mc_s),
                             ("f_1", "fast", 1, fast_s), ("seg", "segment_train", None, 3.0)):
        (wd / "steps" / name).mkdir(parents=True)
        params = {} if e is None else {"energy_kev": e}
        (wd / "steps" / name / "DONE.json").write_text(json.dumps(
            {"kind": kind, "params": params, "seconds": s, "cpu_seconds": s / 2, "peak_rss_mb": rss}))
    (wd / "last_run.json").write_text("{}")
    return wd


def test_tables_as_mean_and_sd_and_costs(tmp_path):
    a = _replicate(tmp_path / "rep0", [0.9, 0.8, 0.7], 100.0, 2.0, 500.0)
    b = _replicate(tmp_path / "rep1", [0.8, 0.8, 0.5], 120.0, 4.0, 700.0)
    c = tmp_path / "rep2"  # not finished: no last_run.json
    (c / "tables").mkdir(parents=True)
    assert finished([a, b, c]) == [a, b]
    agg = aggregate([a, b])
    sd = statistics.stdev([0.9, 0.8])
    md = agg["tables"]["t"].splitlines()
    assert md[0] == "| model | 1 kV MDS | 2 kV MDS |"
    assert md[2] == f"| sMC | 0.850 +- {sd:.3f} | 0.800 +- 0.000 |"
    assert md[3] == f"| sML | 0.600 +- {statistics.stdev([0.7, 0.5]):.3f} |  |"  # an empty cell stays empty
    costs = agg["costs"]
    assert costs["wall_seconds_per_stack"]["montecarlo 1 keV"] == pytest.approx((110.0, statistics.stdev([100, 120])))
    assert costs["cpu_seconds_per_stack"]["fast 1 keV"][0] == pytest.approx(1.5)
    assert costs["wall_seconds_per_kind"]["montecarlo"][0] == pytest.approx(330.0)  # 100 + 200, 120 + 240
    assert costs["peak_rss_mb"] == 700.0
    text = costs_markdown(costs)
    assert "| 1 keV |" in text and "37x" in text  # MC 55 CPU s vs fast 1.5 CPU s per stack


def test_costs_of_an_unfinished_set(tmp_path):
    a = _replicate(tmp_path / "rep0", [0.9, 0.8, 0.7], 100.0, 2.0, 500.0)
    b = tmp_path / "rep1"  # interrupted: one Monte Carlo stack done, no tables
    (b / "steps" / "mc_1").mkdir(parents=True)
    (b / "steps" / "mc_1" / "DONE.json").write_text(json.dumps(
        {"kind": "montecarlo", "params": {"energy_kev": 1}, "seconds": 140.0, "cpu_seconds": 70.0, "peak_rss_mb": 9}))
    (b / "steps" / "seg").mkdir(parents=True)  # a step still running: no DONE.json, not counted
    c = costs([a, b])
    assert c["steps_per_kind"] == [{"fast": 1, "montecarlo": 2, "segment_train": 1}, {"montecarlo": 1}]
    assert c["cpu_seconds_per_stack"]["montecarlo 1 keV"][0] == pytest.approx(60.0)  # 50 and 70
    assert c["wall_seconds_per_stack"]["fast 1 keV"][0] == pytest.approx(2.0)  # only rep0 has one
    assert c["peak_rss_mb"] == 500.0
    assert "| 1 keV |" in costs_markdown(c)


def test_mismatched_tables_are_refused(tmp_path):
    a = _replicate(tmp_path / "rep0", [0.9, 0.8, 0.7], 1.0, 1.0, 1.0)
    b = _replicate(tmp_path / "rep1", [0.9, 0.8, 0.7], 1.0, 1.0, 1.0)
    (b / "tables" / "t.csv").write_text("model,1 kV MDS,2 kV MDS\nsMCDA,1,1\nsML,1,\n")
    with pytest.raises(FibsynthError, match="not the same table"):
        aggregate([a, b])
    with pytest.raises(FibsynthError, match="replicate not finished"):
        aggregate([a, tmp_path / "nothing"])


def test_replicate_seeds_and_a_tiny_replicate(tmp_path):
    assert PAPER_SEEDS(0) == {"train_seed": 11, "test_seed": 12, "real_seed": 13, "seg_seed": 0}  # paper.yaml's own
    assert len({tuple(PAPER_SEEDS(r).values()) for r in range(5)}) == 5
    spec = tmp_path / "x.yaml"
    spec.write_text("vars: {s: 1}\nsteps:\n"
                    "  gt: {kind: structure, params: {shape: [8, 16, 16], voxel_nm: 5, ligament_nm: 20, seed: \"${s}\"}}\n")
    rep = run_replicate(spec, tmp_path / "w", 2, seeds=lambda r: {"s": 7 + r}, quiet=True)
    assert rep.ran == ["gt"] and Path(rep.workdir) == tmp_path / "w" / "rep2"
    done = json.loads((tmp_path / "w" / "rep2" / "steps" / "gt" / "DONE.json").read_text())
    assert done["params"]["seed"] == 9 and done["cpu_seconds"] >= 0 and done["peak_rss_mb"] > 0


def test_within_replicate_differences_rank_what_the_cells_cannot(tmp_path):
    # three replicates whose level moves by 0.1 (one shared offset per replicate) while sML - sMC stays near -0.02:
    # the cells' sd (~0.1) hides the difference, the paired one resolves it
    offs, diffs = [0.0, 0.1, -0.1], [-0.019, -0.021, -0.020]
    reps = [_replicate(tmp_path / f"rep{r}", [0.80 + o, 0.7, 0.80 + o + d], 1.0, 1.0, 1.0)
            for r, (o, d) in enumerate(zip(offs, diffs))]
    agg = aggregate(reps)
    md = agg["paired"]["t"].splitlines()
    assert md[0] == "| model | 1 kV MDS | 2 kV MDS |"
    assert len(md) == 3  # only sML - sMC: the table has no sMCDA row
    sd = statistics.stdev(diffs)
    half = scipy_stats.t.ppf(0.975, 2) * sd / 3 ** 0.5
    assert md[2] == (f"| sML - sMC | -0.020 +- {sd:.3f} [{-0.020 - half:+.3f}, {-0.020 + half:+.3f}] |  |")
    assert -0.020 + half < 0  # the interval excludes 0 ...
    assert statistics.stdev([0.80 + o for o in offs]) > 4 * abs(-0.020)  # ... where the cells' sd is ~5x the gap
    with pytest.raises(FibsynthError, match="csvs"):
        paired_table([reps[0] / "tables" / "t.csv"])
    assert aggregate(reps[:1])["paired"] == {}  # one replicate: no differences
