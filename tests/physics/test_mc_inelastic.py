"""Binary collisions with atomic electrons (the inelastic channel of ``montecarlo/tables.py``): the sampled
angles and energy transfers against the channel's own density, the restricted stopping power, and the physical
direction of its effect on bulk eta (more deflection: low-Z eta rises, gold barely moves)."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.physics.materials import get_material
from fibsynth.physics.montecarlo import kernel
from fibsynth.physics.montecarlo.engine import Physics, bulk_eta
from fibsynth.physics.montecarlo.tables import (
    MU_BINARY_MAX, _binary_density, _binary_mu_grid, binary_stopping, build_tables)
from fibsynth.physics.stopping import stopping_power


def _kernel_samples(tabs, mat, j, e_kev, n):
    u = (np.log(e_kev) - tabs.ln_e0) * tabs.inv_dln
    out = np.empty(n)
    for k in range(n):
        s0, s1 = kernel.seed_state(5, j, 0, k)
        out[k], _, _ = kernel.sample_mu_table(tabs.muq, mat, j, u, tabs.ang_scale, tabs.ang_off, np.uint64(s0),
                                              np.uint64(s1))
    return out


@pytest.mark.parametrize("sym,e", [("C", 2.0), ("C", 10.0), ("Au", 4.0)])
def test_binary_channel_sampling_matches_its_density(sym, e):
    """The kernel's sampler on the binary row reproduces <mu> and <W/E> = <4 mu (1 - mu)> of the
    Rutherford x Møller density, and never turns the primary beyond 45 degrees (up to the grid's interpolation)."""
    tabs = build_tables([get_material(sym)])
    assert tabs.eloss[0].tolist()[:2] == [0.0, 1.0]  # element channel, then its binary channel
    n = 40000
    # the angular grid is on energies of its own: sample at a grid energy to compare with one density
    ea = float(tabs.ang_e_kev[np.argmin(abs(np.log(tabs.ang_e_kev / e)))])
    mu = _kernel_samples(tabs, 0, 1, ea, n)
    grid = _binary_mu_grid()
    _, f = _binary_density(6 if sym == "C" else 79, ea, grid)
    m1 = np.trapezoid(grid * f, grid)
    w = np.trapezoid(4 * grid * (1 - grid) * f, grid)
    sm = 4 * mu * (1 - mu)
    assert abs(mu.mean() - m1) < 4 * mu.std() / np.sqrt(n) + 0.01 * m1, (mu.mean(), m1)
    assert abs(sm.mean() - w) < 4 * sm.std() / np.sqrt(n) + 0.01 * w, (sm.mean(), w)
    assert mu.max() <= MU_BINARY_MAX * 1.03


def test_restricted_stopping_keeps_joy_luo_on_average():
    """Binary collisions carry a share of Joy-Luo's stopping power that is physical (Bethe: close collisions up to
    W = E/2 carry somewhat less than half) for every Z; the range table uses the rest, so the range with the
    channel on is longer than the plain CSDA range by exactly that share."""
    e = np.array([1.0, 2.0, 4.0, 10.0, 20.0])
    for sym in ("H", "C", "O", "Al", "Si", "Cu", "Ag", "Au", "epoxy"):
        m = get_material(sym)
        share = binary_stopping(m, e) / stopping_power(m, e)
        assert np.all((share > 0.2) & (share < 0.5)), (sym, share)
    m = get_material("C")
    on = build_tables([m])
    off = build_tables([m], inelastic=False)
    assert np.all(on.rng[0, 1:] > off.rng[0, 1:])
    # d(range)/dE = 1 / S: the ratio of the slopes is S_JL / (S_JL - S_bin)
    g = np.exp(on.ln_e0 + np.arange(on.rng.shape[1]) / on.inv_dln)
    i = np.searchsorted(g, 10.0)
    ratio = (on.rng[0, i + 1] - on.rng[0, i]) / (off.rng[0, i + 1] - off.rng[0, i])
    ge = np.sqrt(g[i] * g[i + 1])
    want = 1.0 / (1.0 - binary_stopping(m, np.array([ge]))[0] / stopping_power(m, ge))
    assert ratio == pytest.approx(want, rel=2e-3)


def test_inelastic_channel_raises_carbon_eta_and_leaves_gold():
    n = 60000
    on = bulk_eta("C", 10.0, n, seed=31)
    off = bulk_eta("C", 10.0, n, seed=32, physics=Physics(inelastic_deflection=False))
    assert on.eta - off.eta > 4 * np.hypot(on.eta_std, off.eta_std), (on.eta, off.eta)
    au_on = bulk_eta("Au", 2.0, 30000, seed=33)
    au_off = bulk_eta("Au", 2.0, 30000, seed=34, physics=Physics(inelastic_deflection=False))
    assert abs(au_on.eta - au_off.eta) < 0.01 + 3 * np.hypot(au_on.eta_std, au_off.eta_std)


def test_analytic_sampling_needs_the_channel_off():
    with pytest.raises(ValueError, match="inelastic_deflection"):
        Physics(elastic="browning", angular_sampling="analytic")
    Physics(elastic="browning", angular_sampling="analytic", inelastic_deflection=False)
