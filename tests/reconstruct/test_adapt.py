"""The histogram / linear adaptations and the label-free round check of ``fibsynth reconstruct``."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.reconstruct.adapt import fit_histogram, match_histogram, match_linear
from fibsynth.reconstruct.estimate import self_consistency


def _stacks():
    rng = np.random.default_rng(0)
    real = np.clip(30 + 190 * np.tanh(1.4 * rng.gamma(2.0, 0.2, (6, 40, 40))) ** 0.8, 0, 255).astype(np.uint8)
    synth = rng.normal(0.4, 0.1, (5, 32, 32)).astype(np.float32)
    return real, synth


def test_histogram_matching_takes_the_real_distribution_and_keeps_the_order():
    real, synth = _stacks()
    out = match_histogram(synth, fit_histogram(real))
    assert out.shape == synth.shape and out.dtype == np.float32
    # the same distribution as the real stack (quantiles within one gray level)
    for p in (5, 25, 50, 75, 95):
        assert abs(np.percentile(out, p) - np.percentile(real, p)) <= 1.5, p
    # monotone: the order of the voxels (hence every boundary of the structure) is unchanged
    o = np.argsort(synth.ravel(), kind="stable")
    assert np.all(np.diff(out.ravel()[o]) >= -1e-4)
    # equal inputs give equal outputs (ties of a quantised synthetic stack stay ties)
    q = np.round(synth * 20) / 20
    m = match_histogram(q, fit_histogram(real))
    for v in np.unique(q)[:5]:
        assert np.ptp(m[q == v]) == 0


def test_linear_matching_maps_the_gray_range_only():
    real, synth = _stacks()
    q = fit_histogram(real)
    out = match_linear(synth, q)
    assert np.percentile(out, 1) == pytest.approx(np.percentile(real, 1), abs=2)
    assert np.percentile(out, 99) == pytest.approx(np.percentile(real, 99), abs=2)
    # linear: the synthetic stack's shape of the distribution is kept (correlation 1)
    assert np.corrcoef(out.ravel(), synth.ravel())[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_self_consistency_in_units_of_the_uncertainty():
    def est(phi, lig, u_phi=0.02, u_lig=2.0, hier=False):
        return {"quantities": {"solid_fraction": {"value": phi, "uncertainty": u_phi},
                               "ligament_nm": {"value": lig, "uncertainty": u_lig}}, "hierarchical": hier}

    c = self_consistency(est(0.30, 40.0), est(0.26, 41.0))
    assert c["per_quantity"]["solid_fraction"] == pytest.approx(2.0)
    assert c["per_quantity"]["ligament_nm"] == pytest.approx(0.5)
    assert c["distance"] == pytest.approx(2.0) and not c["hierarchical_flipped"]
    # the larger of the two uncertainties is the unit
    assert self_consistency(est(0.30, 40.0), est(0.26, 40.0, u_phi=0.04))["distance"] == pytest.approx(1.0)
    assert self_consistency(est(0.3, 40.0), est(0.3, 40.0, hier=True))["hierarchical_flipped"]


def test_forward_consistency_prefers_the_true_structure():
    """The label-free round check: the true structure, imaged again, correlates better with a stack made from it
    than the same structure dilated or eroded by a pixel."""
    from scipy import ndimage as ndi

    from fibsynth.fastsim.projection import project
    from fibsynth.reconstruct.estimate import forward_consistency
    from fibsynth.structure import leveled_wave

    vz = (8.0, 4.0, 4.0)
    truth = leveled_wave((10, 48, 48), vz, 0.3, 36.0, seed=2).astype(np.uint8)
    img, _ = project(truth, vz, 2.0)
    rng = np.random.default_rng(0)
    real = np.clip(30 + 190 * np.asarray(img, np.float64) ** 0.8 + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    f = {name: forward_consistency(seg, real, vz, 2.0) for name, seg in
         (("truth", truth), ("dilated", ndi.binary_dilation(truth, np.ones((1, 3, 3)))),
          ("eroded", ndi.binary_erosion(truth, np.ones((1, 3, 3)))))}
    assert f["truth"] > f["dilated"] and f["truth"] > f["eroded"], f
