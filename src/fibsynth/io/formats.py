"""Which on-disk format a path names (by its suffix).

Kept apart from :mod:`fibsynth.io.volume` so that :mod:`fibsynth.io.outputs` (the output rule, which the volume
writer applies) can ask it without importing the writer.
"""

from __future__ import annotations

from pathlib import Path

from fibsynth.errors import FibsynthError

TIFF_SUFFIXES = (".tif", ".tiff")


def volume_format(path: str | Path) -> str:
    """``tiff``, ``zarr``, ``npy`` or ``folder`` from the path's suffix."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith(TIFF_SUFFIXES):
        return "tiff"
    if name.endswith(".zarr"):
        return "zarr"
    if name.endswith(".npy"):
        return "npy"
    if p.suffix == "":
        return "folder"
    raise FibsynthError(
        f"unknown suffix {p.suffix!r}: use .tif/.tiff, .zarr, .npy, or a folder name without suffix", path
    )
