"""A run killed with SIGKILL mid-step, and two runs on the same OUT_DIR at once (a real subprocess each time).

The killed run can clean nothing up: its step's temporary folder (``work/cache/.KEY.tmp-*``) and its lock stay.
A second run while it lives is refused in one line (exit 2) naming the folder and the holder's pid, and touches
nothing; once it is dead the next run takes the lock over and removes exactly what the killed run left (only names
the workflow makes), keeping the user's files and the prediction's resumable map."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fibsynth
from fibsynth.cli import main
from fibsynth.errors import FibsynthError
from fibsynth.experiment.lock import LOCK_NAME

# the child: the real CLI, its inspect step held open (after it has written into the step's temporary folder)
CHILD = """
import pathlib, sys, time
import fibsynth.reconstruct.inspect as I
real = I.inspect_to_npy
def held(*a, **k):
    r = real(*a, **k)
    pathlib.Path(sys.argv[3]).write_text("in the inspect step")
    time.sleep(120)
    return r
I.inspect_to_npy = held
from fibsynth.cli import main
from fibsynth.errors import FibsynthError
sys.exit(main(["reconstruct", sys.argv[1], sys.argv[2], "--voxel-nm", "4", "--slice-nm", "8", "--threads", "1",
               "--quiet"]))
"""


class _Stop(Exception):
    pass


def _stop(*a, **k):  # a run goes no further than its start (the steps themselves are tested elsewhere)
    raise _Stop


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 90.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the child ended (rc {proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() - t0 > seconds:
            raise AssertionError("the child did not reach its inspect step")
        time.sleep(0.05)


def test_killed_run_is_cleaned_up_and_a_concurrent_run_refused(tmp_path, monkeypatch, capsys):
    from fibsynth.reconstruct import workflow as W

    stack = tmp_path / "stack.npy"
    np.save(stack, np.random.default_rng(0).integers(0, 255, (6, 24, 24)).astype(np.uint8))
    out, ready = tmp_path / "out", tmp_path / "ready"
    (tmp_path / "child.py").write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(fibsynth.__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(stack), str(out), str(ready)],
                             env=env, stderr=subprocess.PIPE)
    try:
        _wait_for(ready, child)
        cache = out / "work" / "cache"
        live_tmp = [p for p in cache.iterdir() if ".tmp-" in p.name]
        assert len(live_tmp) == 1 and (live_tmp[0] / "real.npy").is_file()  # the step's output, not yet renamed

        # a second run on the same folder: one line, exit 2, the folder and the holder's pid; nothing touched
        capsys.readouterr()
        assert main(["reconstruct", str(stack), str(out), "--voxel-nm", "4", "--slice-nm", "8", "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("fibsynth: error:")
        assert str(out / W.OUT_LOCK) in err and f"pid {child.pid}" in err and "fibsynth reconstruct" in err
        assert live_tmp[0].is_dir() and json.loads((out / "work" / LOCK_NAME).read_text())["pid"] == child.pid

        # the same OUT with the step cache elsewhere (the Python API's work_dir) is refused too (the code before
        # locked the work folder only, and this run went on to write the child's outputs)
        monkeypatch.setattr(W, "inspect_step", _stop)
        with pytest.raises(FibsynthError) as exc:
            W.reconstruct(stack, out, W.ReconstructSettings(voxel_nm=4, slice_nm=8, threads=1), quiet=True,
                          work_dir=tmp_path / "elsewhere")
        assert str(out) in str(exc.value) and f"pid {child.pid}" in str(exc.value)
        assert not (tmp_path / "elsewhere" / LOCK_NAME).exists()  # released (or never taken)
        # and another OUT on the child's work folder (as before)
        with pytest.raises(FibsynthError, match=f"pid {child.pid}"):
            W.reconstruct(stack, tmp_path / "out2", W.ReconstructSettings(voxel_nm=4, slice_nm=8, threads=1),
                          quiet=True, work_dir=out / "work")
        assert not (tmp_path / "out2" / W.OUT_LOCK).exists()

        child.send_signal(signal.SIGKILL)  # no handler runs: nothing is cleaned up
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()
    assert live_tmp[0].is_dir() and (out / "work" / LOCK_NAME).is_file() and (out / W.OUT_LOCK).is_file()

    # what else a killed run can leave (an output being written, the resume state's temporary, a finished step's
    # resume folder), and the user's own files, some with look-alike names
    ours = [out / ".segmentation.tif.tmp-0123abcd", out / ".summary.json.tmp-89abcdef",
            out / "work" / "confidence.tmp.npy"]
    unfinished = out / "work" / "partial" / ("a" * 64)
    finished = out / "work" / "partial" / ("b" * 64)
    for d in (unfinished, finished, cache / ("b" * 64)):
        d.mkdir(parents=True)
    (cache / ("b" * 64) / "DONE.json").write_text("{}")  # step bbb... finished
    ours += [unfinished / ".done.json.tmp-0badf00d", finished]
    keep = [out / "notes.txt", out / ".notes.txt.tmp-0123abcd", out / ".segmentation.tif.tmp-mine",
            out / "segmentation.tif.tmp-0123abcd", cache / ".mydata.tmp-0123abcd", out / "work" / "partial" / "mine",
            unfinished / "probability.npy", unfinished / "done.json"]
    for p in ours + keep:
        if not p.exists():
            p.write_text("x")

    capsys.readouterr()
    with pytest.raises(_Stop):
        W.reconstruct(stack, out, W.ReconstructSettings(voxel_nm=4, slice_nm=8, threads=1))
    note = " ".join(capsys.readouterr().err.split())
    assert f"pid {child.pid}" in note and "removed 6 temporary entries" in note
    assert not live_tmp[0].exists() and not any(p.exists() for p in ours)
    assert all(p.exists() for p in keep)
    assert not (out / "work" / LOCK_NAME).exists() and not (out / W.OUT_LOCK).exists()  # released when the run
    # ended, here on an error
