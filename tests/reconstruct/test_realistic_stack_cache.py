"""The test-stack maker's ideal-image cache (benchmarks/realistic_stack.py): a stack at another artifact dose reuses
the ideal image instead of imaging again, and gives exactly what imaging again would give."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _maker():
    spec = importlib.util.spec_from_file_location("realistic_stack", REPO / "benchmarks" / "realistic_stack.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ideal_cache_reused_across_doses(tmp_path, monkeypatch):
    R = _maker()
    kw = dict(kind="grf", shape=(6, 24, 24), engine="fast", seed=2)
    cache = tmp_path / "ideal.npy"
    plain40, truth40, _ = R.make_stack(**kw)
    plain400, _, _ = R.make_stack(**kw, artifact_dose=400.0)
    first, t1, _ = R.make_stack(**kw, ideal_cache=cache)
    assert cache.is_file()
    np.testing.assert_array_equal(first, plain40)
    np.testing.assert_array_equal(t1, truth40)

    def no_imaging(*a, **k):
        raise AssertionError("imaged again although the ideal image is cached")

    monkeypatch.setattr(R, "image", no_imaging)
    again400, t400, rec = R.make_stack(**kw, artifact_dose=400.0, ideal_cache=cache)
    np.testing.assert_array_equal(again400, plain400)
    np.testing.assert_array_equal(t400, truth40)
    assert rec["artifacts"]["dose"] == 400.0
    assert not np.array_equal(plain40, plain400)  # the dose changes the noise, not the truth


def test_ideal_cache_of_another_shape_refused(tmp_path):
    R = _maker()
    cache = tmp_path / "ideal.npy"
    np.save(cache, np.zeros((5, 24, 24)))
    with pytest.raises(ValueError, match="shape"):
        R.make_stack(kind="grf", shape=(6, 24, 24), engine="fast", ideal_cache=cache)
