"""The Monte Carlo image cache shared by the fast path's paired sets (fidelity.mc_images and the SE sets of
experiments/se_fastpath_sets.py): simulate once, then read; refuse without simulating when asked."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.fastsim.fidelity import cached_images, structure_key


def test_cached_images_simulates_once_and_refuses_when_not_cached(tmp_path):
    calls = []

    def simulate():
        calls.append(1)
        return {"eta": np.full((2, 4, 4), 0.3, np.float32), "std": np.full((2, 4, 4), 0.01, np.float32),
                "seconds": 1.5}

    cache = tmp_path / "mc"
    with pytest.raises(FileNotFoundError, match="not cached"):
        cached_images(cache, "a.npz", simulate, run=False)
    assert not calls and not cache.exists()
    first = cached_images(cache, "a.npz", simulate)
    again = cached_images(cache, "a.npz", simulate, run=False)
    assert len(calls) == 1 and sorted(p.name for p in cache.iterdir()) == ["a.npz"]  # no temporary left
    assert again["seconds"] == 1.5 and all(np.array_equal(first[k], again[k]) for k in ("eta", "std"))
    cached_images(None, "a.npz", simulate)  # no cache: simulated every time
    assert len(calls) == 2
    a = np.zeros((3, 5, 5), np.uint8)
    b = a.copy()
    b[1, 2, 3] = 1
    assert structure_key(a) == structure_key(a.copy()) != structure_key(b)
