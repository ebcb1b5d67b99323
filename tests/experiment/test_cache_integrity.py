"""``fibsynth run``'s cache after a killed run and after its files were damaged (issue 12)."""

import json
import os

import pytest

from fibsynth.cli import main
from fibsynth.experiment.cache import MARKER, Cache
from fibsynth.experiment.runner import run_experiment

YAML = """
name: one
steps:
  gt: {kind: structure, params: {shape: [8, 16, 16], voxel_nm: 5, ligament_nm: 20, seed: 3}}
"""


@pytest.fixture()
def exp(tmp_path):
    p = tmp_path / "one.yaml"
    p.write_text(YAML)
    return p


def _entry(wd):
    [key] = [p for p in (wd / "cache").iterdir() if not p.name.startswith(".")]
    return key


def _damage_cases():
    def truncate(f):
        f.write_bytes(f.read_bytes()[:-10])

    def zero(f):  # same size, zeros
        f.write_bytes(b"\0" * f.stat().st_size)

    def zero_keep_time(f):  # a hostile zeroing that puts the time back: the sha256 of a size-equal file decides
        st = f.stat()
        zero(f)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))

    def delete(f):
        f.unlink()

    return {"truncated": truncate, "zeroed": zero, "zeroed, time moved": zero_keep_time, "deleted": delete}


@pytest.mark.parametrize("how", list(_damage_cases()))
def test_damaged_cached_step_is_computed_again(exp, tmp_path, how):
    wd = tmp_path / "w"
    rep = run_experiment(exp, workdir=wd, quiet=True)
    assert rep.ran == ["gt"]
    entry = _entry(wd)
    rec = json.loads((entry / MARKER).read_text())
    assert rec["files"], "checksums recorded at completion"
    victim = entry / sorted(rec["files"])[0]
    good = victim.read_bytes()
    assert run_experiment(exp, workdir=wd, quiet=True).cached == ["gt"]
    _damage_cases()[how](victim)
    rep = run_experiment(exp, workdir=wd, quiet=True)
    assert rep.ran == ["gt"]
    assert "damaged" in rep.steps[0].reason
    assert victim.read_bytes() == good  # the same deterministic output again
    assert run_experiment(exp, workdir=wd, quiet=True).cached == ["gt"]


def test_copied_work_folder_with_new_times_stays_cached(exp, tmp_path):
    wd = tmp_path / "w"
    run_experiment(exp, workdir=wd, quiet=True)
    entry = _entry(wd)
    for f in entry.rglob("*"):
        if f.is_file():
            os.utime(f, ns=(1, 10**18))
    assert run_experiment(exp, workdir=wd, quiet=True).cached == ["gt"]
    rec = json.loads((entry / MARKER).read_text())
    assert all(v[1] == 10**18 for v in rec["files"].values())  # times refreshed after the hashes matched


def test_corrupt_marker_and_killed_run_leftovers(exp, tmp_path, capsys):
    wd = tmp_path / "w"
    run_experiment(exp, workdir=wd, quiet=True)
    entry = _entry(wd)
    (entry / MARKER).write_bytes(b"\xff{not json")
    # leftovers of a killed run: a temporary and a replaced folder
    stale = [wd / "cache" / f".{'a' * 64}.tmp-0123abcd", wd / "cache" / f".{'b' * 64}.old-89abcdef"]
    for s in stale:
        s.mkdir()
        (s / "partial.bin").write_bytes(b"x" * 100)
    assert main(["run", str(exp), "--workdir", str(wd), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["steps"][0]["status"] == "ran" and "cannot be read" in rep["steps"][0]["reason"]
    assert not any(s.exists() for s in stale)
    assert Cache(wd).check(entry.name)[1] is None


def test_structure_step_memory_guard(exp, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FIBSYNTH_MEMORY_BYTES", "1000")
    assert main(["run", str(exp), "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "step 'gt'" in err[0] and "of memory" in err[0]
    assert not (tmp_path / "w" / "cache").exists() or not any((tmp_path / "w" / "cache").iterdir())
