"""Structure estimators of reconstruct against structures of known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.reconstruct.estimate import HIER_RATIO, estimate_structure, mean_chords_nm, moved, structure_stats

VOX = (8.0, 4.0, 4.0)


@pytest.fixture(scope="module")
def lwm():
    from fibsynth.structure import leveled_wave

    return leveled_wave((24, 64, 64), VOX, 0.3, 32.0, seed=5)


def test_leveled_wave_estimates_match_the_request(lwm):
    est = estimate_structure({"truth": lwm}, VOX)
    q = est["quantities"]
    # solid fraction: the generator cuts at the exact quantile
    assert abs(q["solid_fraction"]["value"] - 0.3) < 0.01
    assert q["solid_fraction"]["uncertainty"] > 0
    # ligament: the generator is calibrated to the 3D mean local thickness within ~5 % (docs/structure.md)
    assert abs(q["ligament_nm"]["value"] - 32.0) / 32.0 < 0.12
    assert q["pore_nm"]["value"] > q["ligament_nm"]["value"]  # phi < 0.5: pores are wider than ligaments
    assert est["hierarchical"] is False
    assert q["hierarchy_ratio"]["value"] < HIER_RATIO


def test_hierarchical_structure_is_recognised():
    from fibsynth.structure import hierarchical

    solid = hierarchical((24, 80, 80), VOX, 140.0, 22.0, 0.55, 0.5, seed=2)
    est = estimate_structure({"truth": solid}, VOX)
    q = est["quantities"]
    assert est["hierarchical"] is True
    assert q["hierarchy_ratio"]["value"] > HIER_RATIO
    assert abs(q["upper_solid_fraction"]["value"] - 0.55) < 0.12
    assert 0.6 < q["upper_ligament_nm"]["value"] / 140.0 < 1.5
    assert q["ligament_nm"]["value"] < 60  # the fine ligaments


def test_chords_of_slabs_are_exact():
    # solid slabs 5 voxels thick along x, repeated every 12: every chord along x is 5 voxels
    x = np.arange(60)
    a = np.broadcast_to(((x % 12) < 5).astype(np.uint8), (8, 10, 60)).copy()
    ch = mean_chords_nm(a, (2.0, 3.0, 4.0), phase=1)
    assert ch["x"] == pytest.approx(20.0)
    assert ch["y"] == pytest.approx(30.0)  # runs through the whole volume along y (10 voxels of 3 nm)
    pore = mean_chords_nm(a, (2.0, 3.0, 4.0), phase=0)
    assert pore["x"] == pytest.approx(7 * 4.0)


def test_method_spread_enters_the_uncertainty(lwm):
    from scipy.ndimage import binary_dilation

    thin = lwm[:16, :48, :48]
    fat = binary_dilation(thin).astype(np.uint8)
    est = estimate_structure({"a": thin, "b": fat}, VOX)
    q = est["quantities"]["solid_fraction"]
    assert q["uncertainty"] >= 0.5 * abs(fat.mean() - thin.mean()) - 1e-9
    assert q["uncertainty"] > 0 and q["by_method"]["b"] > q["by_method"]["a"]


def test_moved():
    def e(phi, u, lig=40.0, ul=2.0):
        return {"quantities": {"solid_fraction": {"value": phi, "uncertainty": u},
                               "ligament_nm": {"value": lig, "uncertainty": ul}}, "hierarchical": False}

    assert moved(e(0.30, 0.02), e(0.31, 0.02)) == []
    assert moved(e(0.30, 0.02), e(0.35, 0.02)) == ["solid_fraction"]
    assert moved(e(0.30, 0.02), e(0.30, 0.02, lig=50.0)) == ["ligament_nm"]


def test_all_solid_is_an_error():
    from fibsynth.errors import FibsynthError

    with pytest.raises(FibsynthError, match="entirely solid"):
        structure_stats(np.ones((4, 8, 8), np.uint8), VOX)
