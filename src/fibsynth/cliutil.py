"""Helpers shared by the stages' command-line modules (kept apart from :mod:`fibsynth.cli` so that
stage CLIs can import them without a circular import)."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from typing import Any

from fibsynth.errors import FibsynthError


def emit_json(obj: Any) -> None:
    """Print ``obj`` as the only thing on stdout (for ``--json`` commands)."""
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def parse_range(text: str, option: str, *, minimum: float | None = None) -> list[float]:
    """Parse ``START:STOP:STEP`` (STOP inclusive) or a single number into a list of floats."""
    parts = text.split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise FibsynthError(f"{option}: expected START:STOP:STEP or a number, got {text!r}") from None
    if len(nums) == 1:
        if not math.isfinite(nums[0]):
            raise FibsynthError(f"{option}: expected a finite number, got {text!r}")
        values = nums
    elif len(nums) == 3:
        start, stop, step = nums
        if step <= 0 or stop < start:
            raise FibsynthError(f"{option}: need STEP > 0 and STOP >= START, got {text!r}")
        if not all(math.isfinite(v) for v in nums):
            raise FibsynthError(f"{option}: START, STOP and STEP must be finite numbers, got {text!r}")
        n_f = (stop - start) / step
        check_count(int(min(n_f, 1e18)) + 1, option)
        n = int(round(n_f))
        values = [start + i * step for i in range(n + 1) if start + i * step <= stop + 1e-9 * max(1.0, abs(stop))]
    else:
        raise FibsynthError(f"{option}: expected START:STOP:STEP or a number, got {text!r}")
    if minimum is not None and any(v < minimum for v in values):
        raise FibsynthError(f"{option}: values must be >= {minimum}, got {text!r}")
    return values


def parse_list(text: str, option: str, *, minimum: float | None = None, maximum: float | None = None) -> list[float]:
    """Parse a comma-separated list of numbers such as ``1,2,4``."""
    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise FibsynthError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise FibsynthError(f"{option}: expected at least one number")
    check_count(len(values), option)
    if not all(math.isfinite(v) for v in values):
        raise FibsynthError(f"{option}: expected finite numbers, got {text!r}")
    for v in values:
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            raise FibsynthError(f"{option}: {v} is outside the allowed range [{minimum}, {maximum}]")
    return values


# ------------------------------------------------------------------------------------------ interruptions

_DEFAULT_NOTE = "no output written"
_NOTE = [_DEFAULT_NOTE]


def set_interrupt_note(text: str) -> None:
    """What ``fibsynth: interrupted (...)`` says after Ctrl-C, e.g. where the resumable work is kept."""
    _NOTE[0] = text


def interrupt_note() -> str:
    return _NOTE[0]


def reset_interrupt_note() -> None:
    _NOTE[0] = _DEFAULT_NOTE


_NOISY_LOGGERS = ("distributed", "tornado", "asyncio", "dask", "lightning", "lightning.pytorch", "pytorch_lightning")


@contextlib.contextmanager
def quiet_interrupts():
    """Around a command: after Ctrl-C / SIGTERM nothing but fibsynth's own line reaches the terminal.

    A Ctrl-C reaches every process of the terminal's group; dask.distributed, its worker processes and background
    threads then log their own tracebacks while they shut down. On the way out of an interrupt this silences those
    loggers, the hooks that print exceptions of threads and of objects being collected, and warnings.
    """
    try:
        yield
    except KeyboardInterrupt:
        silence_after_interrupt()
        raise


def silence_loggers(families: tuple[str, ...]) -> None:
    """Nothing more from these logger families: each logger of them (existing children included, since a child
    with its own level, e.g. ``distributed.worker``, still reaches its parent's handler: propagation does not
    filter by the parent's level) is disabled and set above CRITICAL."""
    import logging

    names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in families]
    for name in set(names) | set(families):
        lg = logging.getLogger(name)
        lg.setLevel(logging.CRITICAL + 10)
        lg.propagate = False
        lg.disabled = True


def silence_after_interrupt() -> None:
    import threading
    import warnings

    silence_loggers(_NOISY_LOGGERS)
    threading.excepthook = lambda args: None
    sys.unraisablehook = lambda unraisable: None
    warnings.simplefilter("ignore")


@contextlib.contextmanager
def children_ignore_interrupts():
    """Start worker processes (a dask LocalCluster) inside this block: SIGINT is ignored meanwhile, which the
    processes started inside inherit (an ignored signal stays ignored across exec, and Python keeps it so), so a
    Ctrl-C in the terminal, which reaches the whole process group, stops only this process; it then closes the
    workers and prints one line. A Ctrl-C during the few seconds the workers start is dropped (press it again).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


# ----------------------------------------------------------------------------------------------- limits

MAX_RANGE_VALUES = 100_000


def check_count(n: int, option: str, *, limit: int = MAX_RANGE_VALUES) -> None:
    """A range option may not expand to more than ``limit`` values (``0:1e9:1e-3`` would need gigabytes)."""
    if n > limit:
        raise FibsynthError(f"{option}: {n:.3g} values, more than the {limit} allowed; use a coarser STEP")
