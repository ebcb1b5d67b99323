"""``threads="auto"`` (fibsynth.ml.runtime.auto_threads): usable CPUs less the current 1-minute load, 1..16; an
explicit count passes through; the run scopes and records its choice."""

from __future__ import annotations

import os

import pytest

from fibsynth.errors import FibsynthError
from fibsynth.ml import runtime as R


@pytest.mark.parametrize("usable, load, want", [
    (2, 9.1, 1),     # the shared 2-core machine, busy: one thread
    (2, 0.0, 2),     # idle 2 cores: both
    (2, 0.4, 2),     # a little background load rounds away
    (2, 0.5, 1),     # half up: one busy core's worth
    (2, 1.49, 1),
    (16, 0.2, 16),   # idle 16-core node: all of them
    (16, 3.6, 12),   # 4 cores busy elsewhere
    (64, 0.0, 16),   # capped at 16
    (64, 50.0, 14),
    (1, 0.0, 1),
    (4, 100.0, 1),   # never below 1
    (4, -1.0, 4),    # a nonsense negative load counts as idle
])
def test_rule(usable, load, want):
    assert R.auto_threads(usable, load) == want


def test_rule_reads_affinity_and_load(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.2, 7.0, 9.0))
    monkeypatch.setattr(R, "_cgroup_cpus", lambda path="": None)
    assert R.usable_cpus() == 6 and R.load_1min() == 2.2
    assert R.auto_threads() == 4  # 6 - round(2.2); only the 1-minute average counts
    n, rec = R.resolve_threads("auto")
    assert n == 4 and rec["usable_cpus"] == 6 and rec["load_1min"] == 2.2 and rec["rule"].startswith("auto")
    # a cgroup CPU quota (a container's --cpus 2.5) narrows the affinity, rounded up
    monkeypatch.setattr(R, "_cgroup_cpus", lambda path="": 2.5)
    assert R.usable_cpus() == 3 and R.auto_threads() == 1
    # no load average on this platform: counted as idle
    def no_load():
        raise OSError("no load average")
    monkeypatch.setattr(os, "getloadavg", no_load)
    monkeypatch.setattr(R, "_cgroup_cpus", lambda path="": None)
    assert R.load_1min() == 0.0 and R.auto_threads() == 6


def test_cgroup_quota_file(tmp_path):
    f = tmp_path / "cpu.max"
    f.write_text("250000 100000\n")
    assert R._cgroup_cpus(str(f)) == pytest.approx(2.5)
    f.write_text("max 100000\n")
    assert R._cgroup_cpus(str(f)) is None
    assert R._cgroup_cpus(str(tmp_path / "absent")) is None


def test_explicit_counts_and_refusals():
    assert R.resolve_threads(3) == (3, {"threads": 3, "rule": "given"})
    assert R.resolve_threads("2")[0] == 2
    for bad in (0, 1025, "many", 1.5, True):
        with pytest.raises(FibsynthError) as e:
            R.resolve_threads(bad)
        assert e.value.param == "threads"


def test_settings_default_auto_and_explicit():
    from fibsynth.reconstruct import ReconstructSettings

    assert ReconstructSettings().threads == "auto"
    assert ReconstructSettings(threads=3).threads == 3 and ReconstructSettings(threads="5").threads == 5
    for bad in (0, "x", 2000):
        with pytest.raises(FibsynthError) as e:
            ReconstructSettings.build(None, threads=bad)
        assert e.value.param == "threads" and "\n" not in e.value.cli_line()


def test_thread_scope_sets_records_and_restores(monkeypatch):
    import torch

    from fibsynth.reconstruct.workflow import thread_scope, threads_line

    before = torch.get_num_threads()
    monkeypatch.setattr(R, "usable_cpus", lambda: 8)
    monkeypatch.setattr(R, "load_1min", lambda: 5.7)
    with thread_scope("auto") as rec:
        assert torch.get_num_threads() == 2  # 8 - round(5.7)
        assert rec == {"threads": 2, "rule": rec["rule"], "usable_cpus": 8, "load_1min": 5.7}
        assert "2 (auto: 8 usable CPUs, 1-minute load 5.7" in threads_line(rec)
    assert torch.get_num_threads() == before
    with thread_scope(1) as rec:
        assert torch.get_num_threads() == 1 and rec["rule"] == "given"
        assert threads_line(rec) == "CPU threads: 1 (given)"
    assert torch.get_num_threads() == before
