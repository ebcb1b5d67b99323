"""Hierarchical (two-level) structures."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.structure import Hierarchical, hierarchical, hierarchical_config, to_dask


@pytest.fixture(scope="module")
def hnpg():
    # 110 nm / 15 nm ligaments as in the paper's HNPG, at 4 nm voxels (lower ligament ~3.75 voxels)
    cfg = hierarchical_config((96, 96, 96), 4.0, 110.0, 15.0, 0.5, 0.4, seed=3)
    m = Hierarchical(cfg)
    return m, m.solid()


def test_total_solid_fraction_is_product(hnpg):
    m, s = hnpg
    assert abs(s.mean() - 0.5 * 0.4) <= 0.015


def test_solid_is_subset_of_upper_network_and_of_lower(hnpg):
    m, s = hnpg
    up = m.upper.solid()
    lo = m.lower.solid()
    assert abs(up.mean() - 0.5) <= 0.01 and abs(lo.mean() - 0.4) <= 0.01
    assert not np.any(s & (1 - up))
    assert np.array_equal(s, up & lo)
    # inside the upper ligaments the fine network keeps its own solid fraction
    assert abs(s[up == 1].mean() - 0.4) <= 0.03


def test_levels_have_independent_waves_and_two_length_scales(hnpg):
    m, s = hnpg
    assert not np.allclose(m.upper.waves[:, 3], m.lower.waves[:, 3])
    assert m.upper.q0 < m.lower.q0
    assert np.isclose(m.lower.q0 / m.upper.q0, (110 / 15) * m.lower.parameters()["ligament_factor"] / m.upper.parameters()["ligament_factor"])


def test_fine_ligaments_inside_coarse_ones(hnpg):
    """Mean local thickness of the hierarchical solid ~ the fine ligament size (not the coarse one)."""
    from fibsynth.metrics.thickness import mean_ligament_diameter

    m, s = hnpg
    d = mean_ligament_diameter(s, (4.0, 4.0, 4.0))
    d_up = mean_ligament_diameter(m.upper.solid()[:64, :64, :64], (4.0, 4.0, 4.0))
    assert 10.0 < d < 30.0
    assert d_up > 3 * d


def test_hierarchical_chunked_equals_in_memory_and_seed_reproducible():
    import dask

    cfg = hierarchical_config((30, 34, 38), (3.0, 2.0, 2.0), 40.0, 8.0, 0.45, 0.5, waves=300, seed=8)
    m = Hierarchical(cfg)
    full = m.solid()
    with dask.config.set(scheduler="synchronous"):
        assert np.array_equal(to_dask(m, (8, 9, 10)).compute(), full)
    again = hierarchical((30, 34, 38), (3.0, 2.0, 2.0), 40.0, 8.0, 0.45, 0.5, waves=300, seed=8)
    assert np.array_equal(again, full)


def test_lower_must_be_finer_than_upper():
    with pytest.raises(FibsynthError, match="lower_ligament_nm"):
        hierarchical_config((8, 8, 8), 1.0, 10.0, 12.0, 0.5, 0.5)
