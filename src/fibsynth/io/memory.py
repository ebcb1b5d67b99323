"""How much memory there is, and a one-line refusal before an allocation that cannot fit.

The available memory is read from ``/proc/meminfo`` (``MemAvailable``: what can be allocated without swapping),
else from ``os.sysconf`` (free physical pages), and is capped by a cgroup memory limit when one is set (containers,
batch jobs). ``FIBSYNTH_MEMORY_BYTES`` overrides it (tests, or to leave room for other jobs).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from fibsynth.errors import FibsynthError

#: share of the available memory one allocation may take (the command holds other arrays besides)
USABLE_FRACTION = 0.8


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_available() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    for limit_f, usage_f in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                             ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                              "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_f).read_text().strip()
            usage = int(Path(usage_f).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:
            return None
        return max(0, int(limit) - usage)
    return None


def available_memory() -> int:
    """Bytes that can be allocated now (see the module's notes); a large number when nothing can be read."""
    env = os.environ.get("FIBSYNTH_MEMORY_BYTES", "").strip()
    if env:
        try:
            return int(float(env))
        except ValueError:
            pass
    avail = _meminfo_available() or _sysconf_available() or 2**62
    room = _cgroup_room()
    return min(avail, room) if room is not None else avail


def gib(n: float) -> str:
    """``12.3 GiB`` (or MiB / KiB for small sizes)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale or unit == "KiB":
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"  # pragma: no cover


def check_memory(nbytes: float, what: str, source: str | Path | None = None, *, hint: str = "",
                 param: str | None = None) -> None:
    """Refuse (one line) an allocation of ``nbytes`` that does not fit in the usable share of available memory."""
    room = available_memory() * USABLE_FRACTION
    if nbytes > room:
        tail = f"; {hint}" if hint else ""
        raise FibsynthError(f"{what} needs {gib(nbytes)} of memory, more than the {gib(room)} available{tail}",
                            source, param=param)


def array_bytes(shape, itemsize: int) -> int:
    return int(math.prod(int(s) for s in shape)) * int(itemsize)
