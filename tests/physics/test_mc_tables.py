"""Tabulated angular sampling (tables.muq, kernel.sample_mu_table) against the analytic models and the
partial-wave tables; bulk eta with tabulated vs analytic sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fibsynth.physics import elastic
from fibsynth.physics.materials import get_material
from fibsynth.physics.montecarlo import kernel
from fibsynth.physics.montecarlo.engine import Physics, bulk_eta
from fibsynth.physics.montecarlo.tables import analytic_muq, build_tables, icdf_to_muq, prob_grid

try:
    from fibsynth.physics import mott_tables
except ImportError:  # pragma: no cover - the partial-wave module is optional
    mott_tables = None

XI = (np.arange(2_000_000) + 0.5) / 2_000_000  # midpoint quadrature in the kernel's uniform variate


def table_mu(qrow: np.ndarray, xi: np.ndarray = XI) -> np.ndarray:
    """mu(xi) exactly as the kernel computes it from one odds-ratio row."""
    npr = len(qrow)
    tk = (1.0 - np.sqrt(np.sqrt(xi))) * (npr - 1)
    k = np.minimum(tk.astype(np.int64), npr - 2)
    f = tk - k
    q = qrow[k] + f * (qrow[k + 1] - qrow[k])
    qv = q * (1.0 - xi)
    return qv / (xi + qv)


@pytest.mark.parametrize("model", ["browning", "rutherford"])
@pytest.mark.parametrize("z", [1, 6, 29, 79, 92])
def test_table_moments_match_analytic(model, z):
    """<mu> and <mu^2> of the tabulated distribution (quadrature of the kernel's formula) within 0.5 % of the
    closed forms, 50 eV - 30 keV."""
    es = np.geomspace(0.05, 30.0, 12)
    rows = analytic_muq(model, z, es)
    for e, row in zip(es, rows):
        mu = table_mu(row)
        m1, m2 = elastic.mixture_moments(*elastic.mixture_parameters(model, z, e))
        assert mu.mean() == pytest.approx(m1, rel=5e-3), (model, z, e)
        assert (mu * mu).mean() == pytest.approx(m2, rel=5e-3), (model, z, e)


def test_table_is_exact_for_screened_rutherford_and_isotropic():
    _, v = prob_grid()
    s = 3.5e-3
    mu = elastic.mixture_inverse_cdf(v, 1.0, s)
    assert np.allclose(mu, s * v / (1 + s - v))
    row = analytic_muq("rutherford", 79, np.array([2.0]))[0]
    assert np.allclose(row, row[0], rtol=1e-6)  # q = s / (1 + s) everywhere (to rounding near v = 1)
    iso = icdf_to_muq(v, v)[0]
    assert np.allclose(iso, 1.0)


def _kernel_sample(tabs, mat, j, e_kev, n, seed=1):
    import numba

    @numba.njit(cache=False)
    def draw(muq, u, sc, off, n, seed):
        out = np.empty(n)
        s0, s1 = kernel.seed_state(seed, 0, 0, 0)
        for i in range(n):
            out[i], s0, s1 = kernel.sample_mu_table(muq, mat, j, u, sc, off, s0, s1)
        return out

    u = (math.log(e_kev) - tabs.ln_e0) * tabs.inv_dln
    return draw(tabs.muq, u, tabs.ang_scale, tabs.ang_off, n, seed)


def test_kernel_sampler_and_stochastic_energy_interpolation():
    """The numba sampler reproduces the table's moments on a grid energy, and half-way between two grid energies
    the mixture of the two rows (PENELOPE's stochastic interpolation)."""
    tabs = build_tables([get_material("Au")], "browning")
    n = 4_000_000
    for pos in (40.0, 40.5):  # on the angular grid, half-way between points 40 and 41
        lne = np.log(tabs.ang_e_kev[0]) + pos * (np.log(tabs.ang_e_kev[1]) - np.log(tabs.ang_e_kev[0]))
        mu = _kernel_sample(tabs, 0, 0, float(np.exp(lne)), n)
        a = int(pos)
        w = pos - a
        ref = (1 - w) * table_mu(tabs.muq[0, 0, a]).mean() + w * table_mu(tabs.muq[0, 0, a + 1]).mean()
        se = mu.std() / math.sqrt(n)
        assert abs(mu.mean() - ref) < 4 * se, (pos, mu.mean(), ref, se)
        assert np.all((mu >= 0) & (mu <= 1))
    # the half-way mixture is resolved from either row alone (the test can tell the rule from "nearest row")
    for a in (40, 41):
        assert abs(ref - table_mu(tabs.muq[0, 0, a]).mean()) > 5 * se


@pytest.mark.parametrize("mat,e", [("Au", 2.0), ("Au", 10.0), ("C:2.26", 2.0)])
def test_bulk_eta_table_vs_analytic_sampling(mat, e):
    """Tabulated and analytic angular sampling (Browning) give the same bulk eta within 3.5 combined standard
    errors."""
    n = 30000 if e < 5 else 10000
    t = bulk_eta(mat, e, n, seed=21, physics=Physics(elastic="browning", inelastic_deflection=False))
    a = bulk_eta(mat, e, n, seed=22, physics=Physics(elastic="browning", angular_sampling="analytic", inelastic_deflection=False))
    z = abs(t.eta - a.eta) / math.hypot(t.eta_std, a.eta_std)
    assert z < 3.5, (mat, e, t.eta, a.eta)


def test_physics_rejects_analytic_mott_pwa():
    with pytest.raises(ValueError):
        Physics(elastic="mott-pwa", angular_sampling="analytic")
    with pytest.raises(ValueError):
        elastic.canonical_model("mott-typo")


@pytest.mark.skipif(mott_tables is None, reason="partial-wave tables (physics/mott_tables.py) not available")
@pytest.mark.parametrize("z", [6, 79])
def test_mott_pwa_conversion_preserves_moments(z):
    """Resampling the partial-wave inverse CDF to the kernel's odds-ratio grid keeps <mu>, <mu^2> within 0.5 %
    of the partial-wave table's own (exact, piecewise-linear) moments at every tabulated energy."""
    tab = mott_tables.load_mott_tables([z], compute_missing=False)
    rows = icdf_to_muq(tab.prob, tab.mu_icdf[0])
    for g in range(len(tab.e_ev)):
        m1, m2 = mott_tables.icdf_moments(tab.mu_icdf[0, g].astype(float), tab.prob)
        mu = table_mu(rows[g])
        assert mu.mean() == pytest.approx(m1, rel=5e-3), (z, tab.e_ev[g])
        assert (mu * mu).mean() == pytest.approx(m2, rel=5e-3), (z, tab.e_ev[g])
