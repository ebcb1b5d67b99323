"""Content-addressed step outputs.

The key of a step is the sha256 of its kind, its validated parameters, the keys of its inputs (by role) and the
fibsynth version, so a step's key changes exactly when something it depends on changes. Outputs live in
``<workdir>/cache/<key>/``, written to a temporary folder and renamed into place (:func:`fibsynth.io.atomic_path`)
with a ``DONE.json`` marker written last: a folder without the marker is never used.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from fibsynth import __version__
from fibsynth.io import atomic_path

MARKER = "DONE.json"


def step_key(kind: str, params: dict[str, Any], input_keys: dict[str, str | list[str]], version: str = __version__) -> str:
    blob = json.dumps({"kind": kind, "params": params, "inputs": input_keys, "fibsynth": version},
                      sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    def __init__(self, workdir: str | Path):
        self.root = Path(workdir) / "cache"

    def path(self, key: str) -> Path:
        return self.root / key

    def done(self, key: str) -> bool:
        return (self.path(key) / MARKER).is_file()

    def record(self, key: str) -> dict:
        return json.loads((self.path(key) / MARKER).read_text())

    @contextmanager
    def writing(self, key: str, record: dict) -> Iterator[Path]:
        """Yield a temporary folder for the outputs; on success write the marker and move it to the key."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        with atomic_path(target) as tmp:
            tmp.mkdir()
            yield tmp
            (tmp / MARKER).write_text(json.dumps(record, indent=2, default=str))
        # a stale folder without marker is replaced by atomic_path's rename

    def drop(self, key: str) -> None:
        shutil.rmtree(self.path(key), ignore_errors=True)
