"""fibsynth run: one run per work folder (WORKDIR/.lock with pid and host). A live holder is a one-line error that
names the lock file and the pid; a dead run's lock on this host is taken over; the lock goes away after the run,
also when a step fails; a dry run takes no lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from fibsynth.cli import main
from fibsynth.errors import FibsynthError
from fibsynth.experiment import run_experiment
from fibsynth.experiment.lock import LOCK_NAME, workdir_lock

ONE_STEP = "steps:\n  gt: {kind: structure, params: {shape: [8, 12, 12], voxel_nm: 5, ligament_nm: 20, waves: 50}}\n"


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def experiment(tmp_path):
    p = tmp_path / "one.yaml"
    p.write_text(ONE_STEP)
    return p


def _write_lock(wd, pid, host=None):
    wd.mkdir(parents=True, exist_ok=True)
    (wd / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "token": "x"}))


def test_lock_holds_pid_and_host_and_is_removed(tmp_path):
    with workdir_lock(tmp_path) as lock:
        assert lock == tmp_path / LOCK_NAME
        rec = json.loads(lock.read_text())
        assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname()
        with pytest.raises(FibsynthError) as exc:  # a second run on the same folder
            with workdir_lock(tmp_path):
                pass
        msg = str(exc.value)
        assert str(lock) in msg and f"pid {os.getpid()}" in msg and "\n" not in msg
        assert lock.is_file()  # the refused attempt left the holder's lock alone
    assert not lock.exists()


def test_lock_released_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with workdir_lock(tmp_path):
            raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_pid_is_taken_over(tmp_path, dead_pid):
    _write_lock(tmp_path, dead_pid)
    with workdir_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert list(tmp_path.iterdir()) == []  # neither the lock nor the stale one moved aside is left


def test_lock_of_another_host_is_not_taken_over(tmp_path, dead_pid):
    _write_lock(tmp_path, dead_pid, host="some-other-host.example")
    with pytest.raises(FibsynthError, match=f"pid {dead_pid} on host some-other-host.example"):
        with workdir_lock(tmp_path):
            pass
    assert (tmp_path / LOCK_NAME).is_file()


def test_run_refused_while_another_run_holds_the_folder(tmp_path, experiment, capsys):
    wd = tmp_path / "w"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(wd, holder.pid)
        with pytest.raises(FibsynthError, match=f"pid {holder.pid}"):
            run_experiment(experiment, workdir=wd, quiet=True)
        capsys.readouterr()
        assert main(["run", str(experiment), "--workdir", str(wd)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("fibsynth: error:") and str(wd / LOCK_NAME) in err and "\n" not in err
        assert not (wd / "cache").exists()  # nothing ran
        assert run_experiment(experiment, workdir=wd, dry_run=True, quiet=True).would_run == ["gt"]
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and the run goes ahead, then releases the folder
    rep = run_experiment(experiment, workdir=wd, quiet=True)
    assert rep.ran == ["gt"] and not (wd / LOCK_NAME).exists()


def test_failed_step_releases_the_lock(tmp_path, experiment, monkeypatch):
    from fibsynth.experiment import steps

    def fail(*a, **k):
        raise FibsynthError("simulated failure")

    monkeypatch.setattr(steps.STEP_KINDS["structure"], "run", fail)
    wd = tmp_path / "w"
    with pytest.raises(FibsynthError, match="simulated failure"):
        run_experiment(experiment, workdir=wd, quiet=True)
    assert not (wd / LOCK_NAME).exists()


def test_lock_of_a_reused_pid_or_an_earlier_boot_is_taken_over(tmp_path):
    """A live pid is not enough: after a reboot, or when the pid now belongs to a process started at another time
    (pids are reused), the lock is a dead run's; the taker learns whose lock it took over."""
    from fibsynth.experiment import lock as L

    me = {"pid": os.getpid(), "host": socket.gethostname(), "token": "x", "command": "fibsynth reconstruct"}
    start, boot = L._start_time(os.getpid()), L._boot_id()
    if start is None or boot is None:
        pytest.skip("no /proc: process start times and boot ids are Linux's")
    for stale in ({"start": start + 1, "boot": boot}, {"start": start, "boot": "another-boot"}):
        (tmp_path / LOCK_NAME).write_text(json.dumps({**me, **stale}))
        took: list[dict] = []
        with L.workdir_lock(tmp_path, took_over=took):
            pass
        assert [t.get("start") for t in took] == [stale["start"]] and not (tmp_path / LOCK_NAME).exists()
    # the same pid, start time and boot: that run is alive, and the refusal names its command
    (tmp_path / LOCK_NAME).write_text(json.dumps({**me, "start": start, "boot": boot}))
    with pytest.raises(FibsynthError, match=f"another 'fibsynth reconstruct' \\(pid {os.getpid()}\\)"):
        with L.workdir_lock(tmp_path):
            pass
