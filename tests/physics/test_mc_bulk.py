"""Bulk backscatter coefficients against Mott-based codes, Hunger-Kuechler and the screened-Rutherford trap.

Every comparison uses the binomial standard error of the simulated eta (no frozen golden numbers).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from mc_reference import ENERGIES, RUTHERFORD_AU, band, hunger_kuechler, overlaps

from fibsynth.physics.montecarlo.engine import Detector, Physics, bulk_eta

# electrons per run: sigma ~ 0.003 for gold, ~0.002 for carbon
N_AU = {1.0: 25000, 2.0: 25000, 4.0: 15000, 10.0: 8000, 20.0: 4000}
N_C = {1.0: 25000, 2.0: 25000, 4.0: 20000, 10.0: 15000, 20.0: 12000}


@pytest.mark.parametrize("model,mat,i", [("mott-pwa", "Au", i) for i in range(5)]
                         + [("mott-pwa", "C:2.26", i) for i in range(5)]
                         + [("browning", "Au", i) for i in (0, 3, 4)] + [("browning", "C:2.26", i) for i in range(5)])
def test_bulk_eta_in_mott_band(model, mat, i):
    """Inside the band of the Mott codes widened by 0.03: Dirac partial-wave tables at every energy, Browning's
    fit except gold at 2 and 4 keV (next test)."""
    e = ENERGIES[i]
    n = (N_AU if mat == "Au" else N_C)[e]
    r = bulk_eta(mat, e, n, seed=11, physics=Physics(elastic=model))
    lo, hi = band(mat, i)
    assert overlaps(r.eta, r.eta_std, lo, hi), f"{mat} {e} keV: eta={r.eta:.4f}+-{r.eta_std:.4f}, band [{lo}, {hi}]"


@pytest.mark.parametrize("i", [1, 2])
def test_browning_gold_2_4_kev_known_excess(i):
    """Known discrepancy of the Browning fit (docs/montecarlo.md): gold at 2 and 4 keV ~0.01-0.02 above the
    Mott-code band widened by 0.03. Bound the excess (eta +- 3 sigma reaches [lo, hi + 0.03]) and check that the
    partial-wave tables give less there by more than 3 combined standard errors."""
    e = ENERGIES[i]
    r = bulk_eta("Au", e, 25000, seed=11, physics=Physics(elastic="browning"))
    lo, hi = band("Au", i)
    assert overlaps(r.eta, r.eta_std, lo, hi + 0.03), (e, r.eta, lo, hi)
    assert r.eta < RUTHERFORD_AU[i] - 0.08
    pwa = bulk_eta("Au", e, 25000, seed=12, physics=Physics(elastic="mott-pwa"))
    assert r.eta - pwa.eta > 3 * np.hypot(r.eta_std, pwa.eta_std), (e, r.eta, pwa.eta)


@pytest.mark.parametrize("mat,z", [("Au", 79), ("C:2.26", 6)])
@pytest.mark.parametrize("e", [10.0, 20.0])
def test_hunger_kuechler_high_energy(mat, z, e):
    n = 8000 if mat == "Au" else 60000  # sigma ~ 0.006 / 0.001: ~1.3 % / ~1.6 % of eta
    r = bulk_eta(mat, e, n, seed=12)
    hk = hunger_kuechler(z, e)
    # within 10 % of HK, allowing 2 standard errors
    assert abs(r.eta - hk) <= 0.10 * hk + 2 * r.eta_std, (mat, e, r.eta, hk)


@pytest.mark.parametrize("i", [0, 1, 2])
def test_screened_rutherford_reproduces_the_trap(i):
    """Joy's screened Rutherford + Joy-Luo: CASINO 2 and an independent code give 0.64/0.61/0.58."""
    e = ENERGIES[i]
    # the reference codes are elastic-only: no binary-collision channel
    r = bulk_eta("Au", e, 10000, seed=13, physics=Physics(elastic="rutherford", inelastic_deflection=False))
    ref = RUTHERFORD_AU[i]
    assert overlaps(r.eta, r.eta_std, ref - 0.03, ref + 0.03), (e, r.eta, ref)
    mott = bulk_eta("Au", e, 10000, seed=13)
    assert r.eta > mott.eta + 0.1


def test_eta_increases_with_z():
    mats = ["C", "Al", "Si", "Cu", "Ag", "Au"]
    res = [bulk_eta(m, 4.0, 8000, seed=14) for m in mats]
    for a, b in zip(res, res[1:]):
        assert b.eta > a.eta - 3 * np.hypot(a.eta_std, b.eta_std), [(m, r.eta) for m, r in zip(mats, res)]
    assert res[-1].eta - res[0].eta > 0.3


def test_tallies_consistent_and_energy_bounded():
    r = bulk_eta("Cu", 3.0, 5000, seed=15, detector=Detector(e_min_kev=1.5))
    assert r.energy_hist.sum() == r.backscattered == r.angle_hist.sum()
    # detected (E >= 1.5 keV) = BSE in the histogram bins above E/E0 = 0.5 (bins are 0.01 wide)
    assert r.detected == r.energy_hist[50:].sum()
    assert 0 < r.detected < r.backscattered


def test_angular_acceptance_cosine_law():
    """At normal incidence BSE leave roughly with a cosine law: a 0-45 degree cone holds ~half of them."""
    r = bulk_eta("Au", 5.0, 6000, seed=16, detector=Detector(theta_max_deg=45.0))
    frac = r.detected / r.backscattered  # cosine law: sin^2(45) = 0.5
    assert 0.40 < frac < 0.62
    assert r.angle_hist[:45].sum() == r.detected


def test_results_independent_of_thread_count():
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = bulk_eta("Au", 2.0, 3000, seed=17)
        numba.set_num_threads(max(2, old))
        b = bulk_eta("Au", 2.0, 3000, seed=17)
    finally:
        numba.set_num_threads(old)
    assert a.backscattered == b.backscattered
    assert np.array_equal(a.energy_hist, b.energy_hist)
    c = bulk_eta("Au", 2.0, 3000, seed=18)
    assert not np.array_equal(a.energy_hist, c.energy_hist)


def test_tilted_incidence_raises_eta():
    """Backscatter grows with the angle of incidence (classic result; e.g. Reimer's SEM textbook)."""
    a = bulk_eta("Si", 5.0, 6000, seed=19)
    b = bulk_eta("Si", 5.0, 6000, seed=19, incidence_deg=60.0)
    assert b.eta > a.eta + 3 * np.hypot(a.eta_std, b.eta_std)
