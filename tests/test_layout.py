"""The test tree has no ``__init__.py`` files, so pytest imports test modules by basename: two files with the
same name in different folders stop the whole suite at collection ("import file mismatch")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    dup = sorted(n for n, c in names.items() if c > 1)
    assert not dup, f"same basename in several test folders (rename one): {dup}"
