"""User-facing errors.

Anything a user can get wrong (a missing file, a value out of range, a volume that is not binary)
raises :class:`FibsynthError` with one line that names the file or option and the problem. The CLI
prints that line and exits with status 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class FibsynthError(Exception):
    """A mistake in the user's input: printed as one line by the CLI (exit status 2)."""

    def __init__(self, message: str, source: str | Path | None = None):
        self.source = None if source is None else str(source)
        self.message = message
        super().__init__(f"{self.source}: {message}" if self.source else message)


def pydantic_error_line(exc: Exception, source: str | Path | None = None) -> FibsynthError:
    """Turn a pydantic ``ValidationError`` into a one-line :class:`FibsynthError`.

    The line names the offending field (as ``--option-name``) and pydantic's description of the
    allowed range, e.g. ``--solid-fraction: Input should be less than 1 (got 1.5)``.
    """
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return FibsynthError(str(exc), source)
    parts = []
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        name = "--" + loc.replace("_", "-") if loc else "value"
        got = err.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{name}: {err.get('msg', 'invalid')}{got_s}")
    return FibsynthError("; ".join(parts), source)
