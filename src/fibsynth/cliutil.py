"""Helpers shared by the stages' command-line modules (kept apart from :mod:`fibsynth.cli` so that
stage CLIs can import them without a circular import)."""

from __future__ import annotations

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


MAX_RANGE_VALUES = 10_000  # a range option expands to at most this many values (each one is a computation)


def parse_range(text: str, option: str, *, minimum: float | None = None,
                max_values: int = MAX_RANGE_VALUES) -> list[float]:
    """Parse ``START:STOP:STEP`` (STOP inclusive) or a single number into a list of floats (at most
    ``max_values`` of them: counted before the list is built)."""
    parts = text.split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise FibsynthError(f"{option}: expected START:STOP:STEP or a number, got {text!r}") from None
    if len(nums) == 1:
        values = nums
    elif len(nums) == 3:
        start, stop, step = nums
        if step <= 0 or stop < start:
            raise FibsynthError(f"{option}: need STEP > 0 and STOP >= START, got {text!r}")
        if not all(math.isfinite(v) for v in nums):
            raise FibsynthError(f"{option}: START, STOP and STEP must be finite, got {text!r}")
        n = int(round((stop - start) / step))
        if n + 1 > max_values:
            raise FibsynthError(f"{option}: {text!r} gives {n + 1} values; at most {max_values} are allowed")
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
    for v in values:
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            raise FibsynthError(f"{option}: {v} is outside the allowed range [{minimum}, {maximum}]")
    return values
