"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The ``../shared`` folder beside the project root; tests that need it skip where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (only developer machines and CI have it)")
    return SHARED


@pytest.fixture
def sofc_path(shared_dir: Path) -> Path:
    p = shared_dir / "data" / "real-structures" / "sofc_electrolyte_201.tif"
    if not p.is_file():
        pytest.skip(f"{p} is absent")
    return p
