"""`fibsynth mc` loses no data and gives no silent wrong answer (issue 12): resume keyed on the structure's
content, Ctrl-C -> one line / exit 130 / work store kept, one run per output (lock), outputs checked before the
work, CSV never written into a folder or a volume name, range options capped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, read_volume, write_volume
from fibsynth.physics.montecarlo import stack as mc_stack

STACK = ["--energy-kev", "2", "--electrons-per-pixel", "10", "--workers", "1"]


def _structure(path: Path, seed: int, shape=(4, 6, 6)) -> Path:
    rng = np.random.default_rng(seed)
    write_volume(path, (rng.random(shape) < 0.5).astype(np.uint8),
                 VolumeMeta(kind="structure", voxel_size_nm=VoxelSize.from_xy_z(4, 4)))
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def _interrupt_after(monkeypatch, n_ok: int, wrapped: bool = False) -> None:
    """Let ``n_ok`` slices finish, then Ctrl-C (plain, or wrapped in another error as numba's compiler does)."""
    real = mc_stack.simulate_slice
    calls = {"n": 0}

    def fake(*a, **k):
        calls["n"] += 1
        if calls["n"] > n_ok:
            if wrapped:
                try:
                    raise KeyboardInterrupt
                except KeyboardInterrupt as exc:
                    raise RuntimeError("Failed in nopython mode pipeline (step: native lowering)") from exc
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(mc_stack, "simulate_slice", fake)


@pytest.mark.parametrize("wrapped", [False, True])
def test_ctrl_c_in_process_one_line_130_store_kept_then_resume(tmp_path, monkeypatch, capsys, wrapped):
    a = _structure(tmp_path / "a.npy", 1)
    out = tmp_path / "img.tif"
    _interrupt_after(monkeypatch, 1, wrapped)
    assert main(["mc", "stack", str(a), str(out), *STACK]) == 130
    line = _one_line(capsys)
    assert line.startswith("fibsynth: interrupted (Ctrl-C; ") and "img.tif.mcwork.zarr" in line and "--resume" in line
    work = mc_stack.work_path(out)
    assert work.is_dir() and not out.exists()
    assert not mc_stack._lock_path(work).exists()  # the lock goes with the run
    import zarr

    assert list(zarr.open_group(str(work), mode="r")["done"][:]) == [1, 0, 0, 0]
    monkeypatch.undo()
    # resuming finishes the stack, bit-identical to an uninterrupted run
    assert main(["mc", "stack", str(a), str(out), *STACK, "--resume"]) == 0
    ref = tmp_path / "ref.tif"
    assert main(["mc", "stack", str(a), str(ref), *STACK]) == 0
    assert np.array_equal(read_volume(out).data, read_volume(ref).data)
    assert not work.exists()


def test_resume_refuses_another_structure(tmp_path, monkeypatch, capsys):
    """Kill a run on a, resume with b (same output, seed, shape): refused; the store of a stays as it was."""
    a = _structure(tmp_path / "a.npy", 1)
    b = _structure(tmp_path / "b.npy", 2)
    out = tmp_path / "img.tif"
    _interrupt_after(monkeypatch, 2)
    assert main(["mc", "stack", str(a), str(out), *STACK]) == 130
    capsys.readouterr()
    monkeypatch.undo()
    assert main(["mc", "stack", str(b), str(out), *STACK, "--resume"]) == 2
    err = _one_line(capsys)
    assert "--resume" in err and "structure" in err
    import zarr

    assert list(zarr.open_group(str(mc_stack.work_path(out)), mode="r")["done"][:]) == [1, 1, 0, 0]
    assert not out.exists()
    # the same structure under another name resumes (the key is the content, not the path)
    a2 = tmp_path / "a_copy.npy"
    write_volume(a2, read_volume(a).data, read_volume(a).meta)
    assert main(["mc", "stack", str(a2), str(out), *STACK, "--resume"]) == 0


def test_second_run_on_one_output_is_refused_by_the_lock(tmp_path, capsys):
    a = _structure(tmp_path / "a.npy", 1)
    out = tmp_path / "img.tif"
    work = mc_stack.work_path(out)
    work.mkdir()
    (work / "marker").write_text("first run's store")
    with mc_stack.WorkLock(work):  # a live run (this process) holds the output
        assert main(["mc", "stack", str(a), str(out), *STACK]) == 2
    assert "another mc stack run" in _one_line(capsys)
    assert (work / "marker").read_text() == "first run's store"
    # a lock left by a dead process is taken over; a folder that is not a work store is still never deleted
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mc_stack._lock_path(work).write_text(f"{os.uname().nodename} {dead.pid}")
    assert main(["mc", "stack", str(a), str(out), *STACK]) == 2
    assert "not an mc stack work store" in _one_line(capsys)
    assert (work / "marker").exists() and not mc_stack._lock_path(work).exists()


def test_outputs_checked_before_the_work(tmp_path, capsys):
    a = _structure(tmp_path / "a.tif", 1)
    before = a.read_bytes()
    # unknown suffix: refused at once, no work store
    assert main(["mc", "stack", str(a), str(tmp_path / "out.bmp"), *STACK]) == 2
    assert "suffix" in _one_line(capsys)
    assert not mc_stack.work_path(tmp_path / "out.bmp").exists()
    # output = input (or its _std companion = input): refused, input untouched
    assert main(["mc", "stack", str(a), str(a), *STACK]) == 2
    assert "input structure" in _one_line(capsys)
    c = _structure(tmp_path / "c_std.tif", 3)
    assert main(["mc", "stack", str(c), str(tmp_path / "c.tif"), *STACK]) == 2
    assert "input structure" in _one_line(capsys)
    assert a.read_bytes() == before and not mc_stack.work_path(a).exists()
    # settings refused with one line naming the flag, and no work store left behind
    out = tmp_path / "z.tif"
    for extra, flag in ((["--backend", "torch", "--device", "banana"], "--device"),
                        (["--detector-theta-min", "50", "--detector-theta-max", "20"], "--detector-theta-max"),
                        (["--elastic", "casino"], "--elastic")):
        assert main(["mc", "stack", str(a), str(out), *STACK, *extra]) == 2
        assert _one_line(capsys).startswith(f"fibsynth: error: {flag}: ")
        assert not mc_stack.work_path(out).exists() and not out.exists()


def test_layers_out_folder_or_volume_name_refused(tmp_path, capsys):
    base = ["mc", "layers", "--film", "C:2.26", "--substrate", "Au", "--thickness-nm", "10", "--energy-kev", "2",
            "--electrons", "50"]
    d = tmp_path / "mydata"
    d.mkdir()
    (d / "notes.txt").write_text("precious")
    assert main([*base, "--out", str(d)]) == 2
    assert "folder" in _one_line(capsys)
    assert (d / "notes.txt").read_text() == "precious" and sorted(os.listdir(d)) == ["notes.txt"]
    for name in ("s.tif", "s.zarr", "s.npy"):
        assert main([*base, "--out", str(tmp_path / name)]) == 2
        assert "CSV" in _one_line(capsys)
        assert not (tmp_path / name).exists()
    assert main([*base, "--out", str(tmp_path / "ok.csv")]) == 0


def test_range_option_capped_before_it_grows(capsys):
    t0 = time.perf_counter()
    rc = main(["mc", "layers", "--film", "C:2.26", "--substrate", "Au", "--thickness-nm", "0:1e9:1e-3",
               "--energy-kev", "2", "--out", "never.csv"])
    assert rc == 2 and time.perf_counter() - t0 < 5
    err = _one_line(capsys)
    assert "--thickness-nm" in err and "allowed" in err
    assert main(["mc", "layers", "--film", "C", "--substrate", "Au", "--thickness-nm", "0:nan:1",
                 "--energy-kev", "2", "--out", "never.csv"]) == 2
    _one_line(capsys)
    assert not Path("never.csv").exists()


@pytest.mark.slow
def test_ctrl_c_with_dask_workers(tmp_path):
    """A real Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while dask workers run
    slices: one line, exit 130, the finished slices kept in the work store, no worker traceback."""
    a = _structure(tmp_path / "a.npy", 4, shape=(12, 24, 24))
    out = tmp_path / "img.tif"
    env = {**os.environ, "PYTHONPATH": str(Path(mc_stack.__file__).parents[3])}
    cmd = [sys.executable, "-c", "import sys; from fibsynth.cli import main; sys.exit(main(sys.argv[1:]))",
           "mc", "stack", str(a), str(out), "--energy-kev", "2", "--electrons-per-pixel", "200", "--workers", "2"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    work = mc_stack.work_path(out)
    import zarr

    t0 = time.time()
    done = 0
    while time.time() - t0 < 240 and p.poll() is None:
        try:
            done = int(zarr.open_group(str(work), mode="r")["done"][:].sum())
        except Exception:  # noqa: BLE001 - not created yet
            done = 0
        if done:
            break
        time.sleep(0.2)
    assert done and p.poll() is None, "the run ended before a slice was stored"
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.count("\n") == 1 and err.startswith("fibsynth: interrupted (Ctrl-C; "), err
    assert work.is_dir() and not out.exists()
    assert 1 <= int(zarr.open_group(str(work), mode="r")["done"][:].sum()) < 12
