"""What an output path may be, checked before any work starts: never replace what fibsynth did not write.

The rule (every command, every writer):

* an output path that does not exist is written (the folder it goes into must exist and be writable);
* an existing output is replaced only when it is **fibsynth's own output of that kind**:

  - a ``.tif``/``.tiff`` file that carries fibsynth's metadata (the ``fibsynth-metadata:`` record fibsynth
    writes into every TIFF),
  - a ``.npy`` file with its ``NAME.npy.json`` fibsynth sidecar,
  - a folder of slices holding nothing but ``slice_*.tif`` and ``fibsynth.json``,
  - a ``.zarr`` store whose attributes hold fibsynth's record and that holds nothing but Zarr's own entries;

  anything else (a folder of your files, a model folder, a TIFF from the microscope, a folder named ``d.tif``)
  is refused with one line, and nothing is deleted;
* an output that is one of the command's inputs (the same file, a file inside an input folder, or a folder
  that holds an input) is refused;
* an output's suffix is checked before the work starts, not when the result is written.

:func:`check_output` applies the rule; :func:`fibsynth.io.write_volume` and :func:`fibsynth.io.atomic_path`
apply it again when they write, so a command that forgot to call it still cannot destroy foreign data.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

from fibsynth.errors import FibsynthError
from fibsynth.io.formats import volume_format

INFO_PREFIX = "fibsynth-metadata:"
SIDECAR = "fibsynth.json"
_SLICE = re.compile(r"^slice_\d+\.tiff?$")
_ZARR_OWN = {".zgroup", ".zattrs", ".zmetadata", "zarr.json"}


def _fmt(path: Path) -> str | None:
    """The volume format a path names, or None where its suffix names none."""
    try:
        return volume_format(path)
    except FibsynthError:
        return None


def _tiff_is_ours(path: Path) -> bool:
    import logging
    import warnings

    import tifffile

    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with tifffile.TiffFile(path) as tif:
                ij = tif.imagej_metadata or {}
                if INFO_PREFIX in str(ij.get("Info", "")):
                    return True
                desc = tif.pages[0].description or ""
                return INFO_PREFIX in desc
    except Exception:  # not a readable TIFF: not ours
        return False
    finally:
        log.setLevel(level)


def _json_is_meta(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "fibsynth_version" in data


def _zarr_is_ours(path: Path) -> tuple[bool, list[str]]:
    attrs: dict = {}
    for name in (".zattrs", "zarr.json"):
        f = path / name
        if f.is_file():
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError):
                return False, []
            attrs.update(data.get("attributes", {}) if name == "zarr.json" else data)
    foreign = []
    for entry in path.iterdir():
        if entry.name in _ZARR_OWN:
            continue
        if entry.is_dir() and not entry.is_symlink() and ((entry / ".zarray").is_file() or (entry / "zarr.json").is_file()):
            continue
        foreign.append(entry.name)
    return isinstance(attrs.get("fibsynth"), dict), foreign


def owner_problem(path: str | Path) -> str | None:
    """``None`` when ``path`` is fibsynth's own output of the kind its name says (it may be replaced), else why
    it may not be replaced. A path that does not exist has no problem."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink():
        return "is a symbolic link; fibsynth does not replace links"
    fmt = _fmt(path)
    if path.is_dir():
        if fmt == "folder":
            foreign = [e.name for e in path.iterdir() if not (_SLICE.match(e.name) and e.is_file()) and e.name != SIDECAR]
            if foreign:
                shown = ", ".join(sorted(foreign)[:3]) + (" ..." if len(foreign) > 3 else "")
                return f"is an existing folder holding files fibsynth did not write ({shown})"
            if not _json_is_meta(path / SIDECAR):
                return "is an existing folder that is not a fibsynth slice folder (no fibsynth.json)"
            return None
        if fmt == "zarr":
            ours, foreign = _zarr_is_ours(path)
            if not ours:
                return "is an existing Zarr store or folder that fibsynth did not write"
            if foreign:
                shown = ", ".join(sorted(foreign)[:3]) + (" ..." if len(foreign) > 3 else "")
                return f"is a Zarr store that also holds files fibsynth did not write ({shown})"
            return None
        return "is an existing folder; the output must be a file"
    if fmt == "folder" or fmt == "zarr":
        return "is an existing file; this output is written as a folder"
    if fmt == "tiff":
        return None if _tiff_is_ours(path) else "is an existing TIFF that fibsynth did not write"
    if fmt == "npy":
        return None if _json_is_meta(Path(str(path) + ".json")) else "is an existing .npy that fibsynth did not write"
    return "exists and is not a fibsynth output"


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p.absolute()


def _same_or_inside(out: Path, inp: Path) -> str | None:
    ro, ri = _resolved(out), _resolved(inp)
    try:
        if out.exists() and inp.exists() and os.path.samefile(out, inp):
            return "is also an input"
    except OSError:
        pass
    if ro == ri:
        return "is also an input"
    if ri in ro.parents and inp.is_dir():
        return f"lies inside the input folder {inp}"
    if ro in ri.parents:
        return f"holds the input {inp}"
    # a .npy input's sidecar is part of it
    if str(ri).endswith(".npy") and str(ro) == str(ri) + ".json":
        return "is also an input (its metadata sidecar)"
    return None


def _refuse_inputs(path: Path, inputs: Iterable[str | Path | None], hint: str, param: str | None) -> None:
    """One line when ``path`` is, holds or lies inside one of ``inputs`` (``None`` entries skipped)."""
    for inp in inputs:
        why = None if inp is None else _same_or_inside(path, Path(inp))
        if why:
            raise FibsynthError(f"{why}; {hint}", path, param=param)


def check_output(
    out: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    suffixes: Iterable[str] | None = None,
    param: str | None = None,
    kind: str = "volume",
) -> Path:
    """Check an output path before any work: one-line :class:`FibsynthError` when it cannot be written safely.

    ``inputs``: the command's input paths (``None`` entries are skipped); the output may not be one of them, lie
    inside one, or hold one. ``suffixes``: allowed suffixes (lower case, with the dot) for non-volume outputs such
    as ``(".csv",)``; for ``kind="volume"`` (the default) the suffix must name a volume format. An existing output
    must be fibsynth's own (see the module's rule) for volumes; for other kinds it must be a file with an allowed
    suffix. Returns ``out`` as a :class:`Path`.
    """
    out = Path(out)
    if kind == "volume":
        try:
            volume_format(out)
        except FibsynthError as exc:
            raise FibsynthError(exc.message, out, param=param) from None
    if suffixes is not None:
        allowed = tuple(s.lower() for s in suffixes)
        if not out.name.lower().endswith(allowed):
            raise FibsynthError(f"expected a file name ending in {' or '.join(allowed)}", out, param=param)
    _refuse_inputs(out, inputs, "write the output to another path", param)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise FibsynthError("output folder does not exist", parent, param=param)
    if not parent.is_dir():
        raise FibsynthError("is a file, not a folder; the output cannot go into it", parent, param=param)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FibsynthError("output folder is not writable", parent, param=param)
    if kind == "volume":
        why = owner_problem(out)
    elif out.is_symlink():
        why = "is a symbolic link; fibsynth does not replace links"
    elif out.is_dir():
        why = "is an existing folder; the output must be a file"
    else:
        why = None
    if why:
        raise FibsynthError(f"{why}; fibsynth replaces only its own outputs (choose another path or move it away)",
                            out, param=param)
    return out


def check_workdir(path: str | Path, *, inputs: Iterable[str | Path | None] = (), param: str | None = None) -> Path:
    """A work folder (cache, model folder, work store): may exist as a folder, must not be a file, nor be, hold or
    lie inside one of ``inputs``."""
    path = Path(path)
    _refuse_inputs(path, inputs, "use another folder", param)
    if path.exists() and not path.is_dir():
        raise FibsynthError("is an existing file; a folder is needed here", path, param=param)
    parent = path.parent if str(path.parent) else Path(".")
    if not path.exists() and parent.exists() and not parent.is_dir():
        raise FibsynthError("is a file, not a folder", parent, param=param)
    return path
