"""One run per work folder: ``WORKDIR/.lock``.

The lock file is created with ``O_CREAT | O_EXCL`` (atomic, also on NFS v3+) and holds the pid and host of the
run (JSON), the command that holds it and, on Linux, the boot id and the process's start time; it is removed when
the run ends, also on errors. A lock left behind by a run that died (a SIGKILL, a crashed node: its pid is no
longer alive on this same host, or the machine was rebooted since, or the pid now belongs to a process started
later, i.e. a reused pid) is taken over; any other lock, a live pid here or a run on another host, is a one-line
:class:`FibsynthError` naming the lock file, the command and the pid. The caller learns of a take-over
(``took_over``) and cleans up what the dead run left; see :meth:`fibsynth.experiment.cache.Cache.clean_stale`.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fibsynth.errors import FibsynthError

LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:  # pragma: no cover - unexpected: be safe and treat it as alive
        return True
    return True


def _boot_id() -> str | None:
    """This boot of the machine (Linux), so that a lock written before a reboot is known as stale."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc/PID/stat``, field 22), so that a
    reused pid is not taken for the run that wrote the lock; None where it cannot be read."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])  # fields after the command name start at field 3
    except (OSError, ValueError, IndexError):
        return None


def _read(path: Path) -> dict | None:
    """The lock's content; ``{}`` for an unreadable / half-written one; None when it is gone."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _create(path: Path, record: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(record))
    return True


def _stale(holder: dict, host: str) -> bool:
    """A lock of a run that is gone: same host and a pid that is not alive, or alive but not that run (the machine
    was rebooted since the lock was written, or the pid's process started at another time)."""
    pid = holder.get("pid")
    if holder.get("host") != host or not isinstance(pid, int):
        return False
    if not _pid_alive(pid):
        return True
    boot = _boot_id()
    if holder.get("boot") and boot and holder["boot"] != boot:
        return True
    start = _start_time(pid)
    return isinstance(holder.get("start"), int) and start is not None and start != holder["start"]


@contextmanager
def workdir_lock(workdir: str | Path, *, command: str = "fibsynth run",
                 took_over: list[dict] | None = None, name: str = LOCK_NAME,
                 what: str = "work folder") -> Iterator[Path]:
    """Hold ``WORKDIR/.lock`` for the duration of the block (the folder must exist). ``command`` names the holder
    in another run's refusal; a dead run's lock that was taken over is appended to ``took_over`` (its record:
    pid, host, command, ...) so that the caller can clean up after that run. ``name``: the lock file's name (a
    folder that is not fibsynth's own, e.g. a command's output folder, gets a name no other tool uses); ``what``:
    the folder as the refusal calls it."""
    path = Path(workdir) / name
    host = socket.gethostname()
    record = {"pid": os.getpid(), "host": host, "command": command, "boot": _boot_id(),
              "start": _start_time(os.getpid()), "token": uuid.uuid4().hex}
    for _ in range(5):
        if _create(path, record):
            break
        holder = _read(path)
        if holder is None:  # released meanwhile: try again
            continue
        if not _stale(holder, host):
            pid = holder.get("pid", "?")
            where = f" on host {holder['host']}" if holder.get("host") not in (None, host) else ""
            cmd = holder.get("command") if isinstance(holder.get("command"), str) else "fibsynth run"
            raise FibsynthError(
                f"{what} is in use by another '{cmd}' (pid {pid}{where}); wait for it to finish, or "
                "delete this lock file if that run is gone", path)
        # take over a dead run's lock: move it aside (only one taker can), check we moved that very lock
        aside = path.with_name(f"{name}.stale-{record['token']}")
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            continue
        moved = _read(aside)
        if moved is not None and moved != holder and not _stale(moved, host):
            # a live run's fresh lock was moved by mistake: put it back unless another lock appeared meanwhile
            try:
                os.link(aside, path)
            except FileExistsError:
                pass
        elif took_over is not None and moved is not None:
            took_over.append(moved)
        aside.unlink(missing_ok=True)
    else:
        raise FibsynthError("could not take the work folder's lock (it keeps changing); try again", path)
    try:
        yield path
    finally:
        if (_read(path) or {}).get("token") == record["token"]:  # never remove another run's lock
            path.unlink(missing_ok=True)
