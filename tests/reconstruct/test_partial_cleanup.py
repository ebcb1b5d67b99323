"""The resume folders of interrupted predictions (``WORK/partial/KEY``): a run that finishes under other settings
removes the abandoned ones, and a killed run's finished ones go at the next start; only the files the prediction
writes there, never a link, never a look-alike of the user's."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fibsynth.reconstruct import workflow as W


class _Console:
    def __init__(self):
        self.lines: list[str] = []

    def print(self, text: str) -> None:
        self.lines.append(text)


def _map(d: Path, pid=None, size: int = 1000) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    (d / "probability.npy").write_bytes(b"\0" * size)
    (d / "done.json").write_text(json.dumps({"slices": 8, **({"pid": pid} if pid is not None else {})}))
    return [d / "probability.npy", d / "done.json"]


def test_abandoned_maps_removed_and_look_alikes_kept(tmp_path):
    work, user = tmp_path / "work", tmp_path / "user"
    part = work / "partial"
    gone = _map(part / ("a" * 64)) + [part / ("a" * 64) / ".done.json.tmp-0123abcd"]
    gone[-1].write_text("{}")
    gone += _map(part / ("b" * 64), pid=os.getpid())  # an earlier call in this process, interrupted
    keep = _map(user)  # the user's folder, reached through a link named like a key
    (part / ("c" * 64)).symlink_to(user, target_is_directory=True)
    keep += _map(part / ("D" * 64)) + _map(part / ("e" * 63)) + _map(part / "mine")
    (part / ("f" * 64)).write_text("a file named like a key")
    keep.append(part / ("f" * 64))
    keep += _map(part / ("1" * 64), pid=1)  # a live process (not this run) fills it
    own = _map(part / ("2" * 64))  # the prediction's files, and one of the user's beside them
    keep.append(part / ("2" * 64) / "notes.txt")
    keep[-1].write_text("mine")
    (user / "elsewhere.npy").write_bytes(b"x")
    (part / ("3" * 64)).mkdir()
    (part / ("3" * 64) / "probability.npy").symlink_to(user / "elsewhere.npy")  # a link is never removed
    keep += [part / ("3" * 64) / "probability.npy", user / "elsewhere.npy"]

    con = _Console()
    removed = W.drop_abandoned_partials(work, con)
    assert {d.name for d, _ in removed} == {"a" * 64, "b" * 64, "2" * 64}
    assert not any(p.exists() for p in gone + own) and all(p.exists() or p.is_symlink() for p in keep)
    assert not (part / ("a" * 64)).exists() and (part / ("2" * 64)).is_dir()  # emptied; kept for the user's file
    assert dict((d.name, n) for d, n in removed)["a" * 64] == 1000 + len('{"slices": 8}') + 2
    assert len(con.lines) == 3 and all(str(part) in line and "MB" in line for line in con.lines)

    # a partial folder that is itself a link is not followed
    work2 = tmp_path / "work2"
    work2.mkdir()
    (work2 / "partial").symlink_to(part, target_is_directory=True)
    (part / ("4" * 64)).mkdir()
    _map(part / ("4" * 64))
    assert W.drop_abandoned_partials(work2, con) == [] and (part / ("4" * 64) / "probability.npy").is_file()


def test_a_killed_runs_finished_map_removed_without_the_users_file(tmp_path):
    work = tmp_path / "work"
    key = "5" * 64
    (work / "cache" / key).mkdir(parents=True)
    (work / "cache" / key / "DONE.json").write_text("{}")  # its step finished before the kill
    ours = _map(work / "partial" / key)
    (work / "partial" / key / "notes.txt").write_text("mine")
    found, nbytes = W.clean_killed_run(work, None)
    assert sorted(found) == sorted(ours) and nbytes == 1000 + len('{"slices": 8}')
    assert (work / "partial" / key / "notes.txt").read_text() == "mine"
