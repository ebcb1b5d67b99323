"""User-facing errors.

Anything a user can get wrong (a missing file, a value out of range, a volume that is not binary)
raises :class:`FibsynthError` with one line that names the file or the parameter and the problem.

The library speaks Python: an error about a value names the Python parameter (``param="solid_fraction"``)
and ``str(exc)`` reads ``solid_fraction: must be < 1 (got 1.5)``. The CLI is the only place that speaks in
flags: :func:`fibsynth.cli.main` prints :meth:`FibsynthError.cli_line`, which maps the parameter to its
flag (``--solid-fraction`` by default, or the name a command registered with :func:`flag_names`), and exits
with status 2 without a traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Iterator

# parameter name -> CLI flag, for the command that is running (set by the CLI, read when an error is printed)
_FLAGS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("fibsynth_flag_names", default={})


def default_flag(param: str) -> str:
    """The CLI flag that a Python parameter maps to unless a command registered another name."""
    return "--" + param.replace("_", "-")


@contextlib.contextmanager
def flag_names(**mapping: str) -> Iterator[None]:
    """Inside a CLI command: report errors about these Python parameters under these flags.

    ``with flag_names(energy_kev="--energy", out_path="OUT"):`` -- parameters not named map to
    :func:`default_flag`.
    """
    merged = {**_FLAGS.get(), **mapping}
    token = _FLAGS.set(merged)
    try:
        yield
    except FibsynthError as exc:  # the CLI prints it after this block has ended: carry the names with it
        exc.flags = {**_FLAGS.get(), **exc.flags}
        raise
    finally:
        _FLAGS.reset(token)


def register_flag_names(**mapping: str) -> None:
    """Like :func:`flag_names`, for the rest of the running command (:func:`fibsynth.cli.main` scopes it)."""
    _FLAGS.set({**_FLAGS.get(), **mapping})


class InputNote(UserWarning):
    """How fibsynth read an input it had to interpret (e.g. an ImageJ file whose slices are labelled channels).

    Not an error: the command goes on. The CLI prints it as one line ``fibsynth: note: ...`` on stderr.
    """


class FibsynthError(Exception):
    """A mistake in the user's input: printed as one line by the CLI (exit status 2).

    Parameters
    ----------
    message
        What is wrong and the allowed range, without the parameter's name.
    source
        The file the problem is in, if any.
    param
        The Python parameter (or config field) whose value is wrong, if any; several may be given as a
        tuple, e.g. ``("voxel_nm", "slice_nm")``.
    """

    def __init__(self, message: str, source: str | Path | None = None, *, param: str | tuple[str, ...] | None = None):
        self.source = None if source is None else str(source)
        self.message = message
        self.flags: dict[str, str] = {}
        self.params: tuple[str, ...] = () if param is None else ((param,) if isinstance(param, str) else tuple(param))
        super().__init__(self._line(", ".join(self.params)))

    @property
    def param(self) -> str | None:
        return self.params[0] if self.params else None

    def _line(self, who: str) -> str:
        body = f"{who}: {self.message}" if who else self.message
        return f"{self.source}: {body}" if self.source else body

    def cli_line(self, flags: dict[str, str] | None = None) -> str:
        """The line the CLI prints: parameters mapped to flags."""
        table = {**_FLAGS.get(), **self.flags, **(flags or {})}
        return self._line(", ".join(table.get(p, default_flag(p)) for p in self.params))


def pydantic_error_line(exc: Exception, source: str | Path | None = None) -> FibsynthError:
    """Turn a pydantic ``ValidationError`` into a one-line :class:`FibsynthError`.

    The error names the offending fields as Python parameters (``solid_fraction``) with pydantic's
    description of the allowed range; the CLI prints them as flags, e.g.
    ``--solid-fraction: Input should be less than 1 (got 1.5)``.
    """
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return FibsynthError(str(exc), source)
    fields = []  # (dotted field name or "", what is wrong)
    for err in errors():
        got = err.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        name = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        fields.append((name, f"{err.get('msg', 'invalid')}{got_s}"))
    if len(fields) == 1 and fields[0][0]:
        return FibsynthError(fields[0][1], source, param=fields[0][0])
    # several fields (or none named): each named inline, mapped to its flag by the CLI
    text = "; ".join((f"{f}: {m}" if f else m) for f, m in fields)
    return _MultiFieldError(text, source, fields=fields)


class _MultiFieldError(FibsynthError):
    """Several fields wrong at once: each named in the line, mapped to flags by the CLI."""

    def __init__(self, message: str, source: str | Path | None, *, fields: list[tuple[str, str]]):
        super().__init__(message, source)
        self.fields = fields

    def cli_line(self, flags: dict[str, str] | None = None) -> str:
        table = {**_FLAGS.get(), **self.flags, **(flags or {})}
        body = "; ".join((f"{table.get(f, default_flag(f.split('.')[-1]))}: {m}" if f else m) for f, m in self.fields)
        return f"{self.source}: {body}" if self.source else body
