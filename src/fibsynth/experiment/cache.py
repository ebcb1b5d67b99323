"""Content-addressed step outputs.

The key of a step is the sha256 of its kind, its validated parameters, the keys of its inputs (by role) and the
fibsynth version, so a step's key changes exactly when something it depends on changes. Outputs live in
``<workdir>/cache/<key>/``, written to a temporary folder and renamed into place (:func:`fibsynth.io.atomic_path`)
with a ``DONE.json`` marker written last: a folder without the marker is never used.

The marker records every output file's size, modification time and sha256. Before a cached step is reused,
:meth:`Cache.check` compares them: a file deleted, truncated, zeroed or otherwise changed (or a marker that cannot
be read) makes the entry damaged, and the runner computes the step again instead of reporting it "cached". Files
whose size and modification time are unchanged are trusted without rehashing; when only the times differ (a copied
work folder) the hashes decide and the times are refreshed. Temporary folders of a run that was killed
(``cache/.KEY.tmp-*``) are removed by the next run (:meth:`Cache.clean_stale`, under the work folder's lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from fibsynth import __version__
from fibsynth.io import atomic_path

MARKER = "DONE.json"
_STALE = re.compile(r"^\.[0-9a-f]{64}\.(tmp|old)-[0-9a-f]{8}$")


def step_key(kind: str, params: dict[str, Any], input_keys: dict[str, str | list[str]], version: str = __version__) -> str:
    blob = json.dumps({"kind": kind, "params": params, "inputs": input_keys, "fibsynth": version},
                      sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(folder: Path) -> dict[str, list]:
    """``{relative path: [size, mtime_ns, sha256]}`` of every file under ``folder`` except the marker."""
    out: dict[str, list] = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            if rel == MARKER or p.is_symlink():
                continue
            st = p.stat()
            out[rel] = [st.st_size, st.st_mtime_ns, _sha256(p)]
    return out


class Cache:
    def __init__(self, workdir: str | Path):
        self.root = Path(workdir) / "cache"

    def path(self, key: str) -> Path:
        return self.root / key

    def done(self, key: str) -> bool:
        return (self.path(key) / MARKER).is_file()

    def record(self, key: str) -> dict:
        return json.loads((self.path(key) / MARKER).read_text())

    def check(self, key: str, *, refresh: bool = True) -> tuple[dict | None, str | None]:
        """``(record, None)`` for an intact entry; ``(None, why)`` for a damaged one (see the module's notes)."""
        marker = self.path(key) / MARKER
        try:
            rec = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return None, f"its {MARKER} cannot be read ({type(exc).__name__})"
        if not isinstance(rec, dict):
            return None, f"its {MARKER} is not a record"
        files = rec.get("files")
        if files is None:  # written before checksums were recorded: nothing to compare
            return rec, None
        if not isinstance(files, dict):
            return None, f"its {MARKER} has no valid file list"
        stale_times = False
        for rel, entry in files.items():
            p = self.path(key) / rel
            try:
                size, mtime, digest = entry
                st = p.stat()
            except (ValueError, TypeError):
                return None, f"its {MARKER} has no valid file list"
            except OSError:
                return None, f"{rel} is missing"
            if st.st_size != size:
                return None, f"{rel} changed size ({st.st_size} bytes, {size} when written)"
            if st.st_mtime_ns != mtime:
                if _sha256(p) != digest:
                    return None, f"{rel} changed content (sha256 differs)"
                entry[1] = st.st_mtime_ns
                stale_times = True
        if stale_times and refresh:
            try:
                with atomic_path(marker) as tmp:
                    tmp.write_text(json.dumps(rec, indent=2, default=str))
            except OSError:  # a read-only cache still verifies; it rehashes next time
                pass
        return rec, None

    def stale(self) -> list[Path]:
        """The temporary and replaced folders (``.KEY.tmp-XXXXXXXX``, ``.KEY.old-XXXXXXXX``: names that only
        :meth:`writing` makes) in the cache; under the work folder's lock they are a killed run's leftovers."""
        if not self.root.is_dir():
            return []
        return sorted(e for e in self.root.iterdir() if _STALE.match(e.name))

    def clean_stale(self) -> list[str]:
        """Remove temporary and replaced folders left by runs that were killed (call under the work folder lock)."""
        removed = []
        for entry in self.stale():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
        return removed

    @contextmanager
    def writing(self, key: str, record: dict) -> Iterator[Path]:
        """Yield a temporary folder for the outputs; on success write the marker (with the files' checksums) and
        move it to the key, replacing a damaged or unfinished entry of the same key."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        with atomic_path(target, may_replace=lambda p: p.parent == self.root) as tmp:
            tmp.mkdir()
            yield tmp
            record["files"] = manifest(tmp)
            (tmp / MARKER).write_text(json.dumps(record, indent=2, default=str))

    def drop(self, key: str) -> None:
        shutil.rmtree(self.path(key), ignore_errors=True)
