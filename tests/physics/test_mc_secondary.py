"""Secondary electrons (issue 17, item 3): the SE tally leaves the BSE transport untouched, the per-segment
escape integral is exact, and the yields of bulk targets agree with published measurements (docs/montecarlo.md,
"Secondary electrons", lists the sources and their numbers)."""

import math

import numpy as np
import pytest

from fibsynth.physics.montecarlo import kernel
from fibsynth.physics.montecarlo.engine import bulk_eta
from fibsynth.physics.montecarlo.secondary import bulk_se_yield, se_table, simulate_slice_se
from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
from fibsynth.physics.materials import get_material

N = 1500


def test_se_segment_is_the_exact_escape_integral():
    """A straight segment from depth a to depth b losing dE: 0.5 (dE / eps) (lambda / (b - a)) (e^-a/l - e^-b/l)."""
    sep = se_table([get_material("Si")])
    lam, inv_eps = sep[0, 1], sep[0, 0]
    ln_e0, inv_dln = 0.0, 10.0  # E = exp(u / 10) keV
    u_old, u_new = 10.0 * math.log(1.0), 10.0 * math.log(0.9)  # 0.1 keV lost
    vol = np.ones((1, 1, 1), np.uint8)
    nel = np.ones(1, np.int64)
    # no walls (wall False: segv is not read), passed with the argument types simulate_slice_se's kernel uses, so
    # that this is the se_segment variant numba compiles for it anyway (a test-only variant took ~13 s to compile)
    segv = (np.zeros((0, 1, 1)), np.zeros((1, 1, 1), np.uint32), np.zeros((0, 1, 3), np.int8))
    for a, b in [(0.0, 3.0), (1.0, 0.2), (2.0, 2.0)]:
        acc = np.zeros(3)
        path = 5.0
        uz = (b - a) / path
        kernel.se_segment(sep, acc, 0, ln_e0, inv_dln, u_old, u_new, 0.0, 0.0, b, 0.0, 0.0, uz, path, 0.0,
                          vol, nel, 0, False, 1e6, 1e6, 1e6, 0, False, segv)
        mean = math.exp(-a / lam) if a == b else lam * (math.exp(-min(a, b) / lam) - math.exp(-max(a, b) / lam)) / abs(b - a)
        assert acc[0] == pytest.approx(0.5 * 0.1 * inv_eps * mean, rel=1e-9)
        assert acc[1] == 0.0


def test_bse_tallies_bit_identical_with_se_on():
    r = bulk_eta("Au", 2.0, 400, seed=5)
    s = bulk_se_yield("Au", 2.0, 400, seed=5)
    assert s.bse.backscattered == r.backscattered
    assert np.array_equal(s.bse.energy_hist, r.energy_hist)
    assert np.array_equal(s.bse.angle_hist, r.angle_hist)
    assert s.delta > 0


def test_carbon_yield_inside_published_spread():
    """Graphite: the spread of the measured yields compiled in the USTC SEY database (docs/montecarlo.md):
    0.5 keV 0.669-1.02, 1 keV 0.467-0.990 (at 2 and 5 keV the model falls just below the spread)."""
    for e, lo, hi in [(0.5, 0.669, 1.02), (1.0, 0.467, 0.990)]:
        d = bulk_se_yield("graphite", e, N, seed=1).delta
        assert lo <= d <= hi, (e, d)


def test_metal_yields_inside_joy_database_spread():
    """Al, Si, Cu, Au at 0.5, 1, 2, 3, 5 keV against the spread of the measured yields in D. C. Joy's database
    (``se_reference``: every set with a point within 5 % of the energy; docs/montecarlo.md lists the numbers).
    Issue 17's target is >= 80 % of the compared energies inside. The model (no parameter fitted to these data)
    is inside at 16 of 20 with 4000 electrons (benchmarks/se_yield.py); Au at 2 keV lies 3 % under the top of
    its spread, about one standard error at this test's 2000 electrons, so >= 15 is asserted here. The misses are
    known and documented: Al 0.5 keV and Au 0.5 keV under the sets there, Al and Si 5 keV under the lowest set.
    Cu: inside at all five."""
    from fibsynth.physics.montecarlo.se_reference import COMPARE_ENERGIES, measured_spread

    from fibsynth.physics.montecarlo.se_reference import interpolated_spread

    inside = {}
    inside_i = {}
    for el in ("Al", "Si", "Cu", "Au"):
        for e in COMPARE_ENERGIES:
            lo, hi, sets = measured_spread(el, e)
            assert sets >= 2
            d = bulk_se_yield(el, e, 2000, seed=1).delta
            inside[el, e] = lo <= d <= hi
            lo, hi, _ = interpolated_spread(el, e)
            inside_i[el, e] = lo <= d <= hi
    assert sum(inside.values()) >= 15, inside
    assert all(inside["Cu", e] for e in COMPARE_ENERGIES), inside
    # se17: with each set's value interpolated between its neighbouring points (a set measured at 0.41 and
    # 0.6 keV counts at 0.5 keV) Al and Au at 0.5 keV lie inside (Bronstein's sets); 18 of 20 at 4000 electrons
    assert inside_i["Al", 0.5] and inside_i["Au", 0.5], inside_i
    assert sum(inside_i.values()) >= 17, inside_i


def test_se_reference_spread_lookup():
    """The measured-spread lookup: points within 5 % of the energy, at least two sets, min and max of them."""
    from fibsynth.physics.montecarlo.se_reference import JOY_SE_YIELD, measured_points, measured_spread

    pts = measured_points("Au", 0.5)
    assert sorted(pts) == [(4, 0.5, 1.55), (69, 0.52, 1.42)]
    assert measured_spread("Au", 0.5) == (1.42, 1.55, 2)
    assert measured_spread("graphite", 2.0) == (0.308, 0.527, 2)
    assert measured_spread("Cu", 0.25) is None  # no set has a point there (only >= 0.4 keV are kept)
    for sets in JOY_SE_YIELD.values():
        for s in sets:
            assert all(0.4 <= e <= 5.0 and 0.0 < d < 4.0 for e, d in s.points), s


def test_carbon_sets_give_the_carbon_spread():
    """The USTC carbon sets one by one (se17): within 5 % of each compared energy their min-max is the stored
    carbon spread, and every kept point lies at 0.4-5 keV."""
    from fibsynth.physics.montecarlo.se_reference import CARBON_SPREAD, USTC_C_SETS

    for e, (lo, hi) in CARBON_SPREAD.items():
        ds = [d for s in USTC_C_SETS for x, d in s.points if abs(x - e) <= 0.05 * e]
        assert (min(ds), max(ds)) == (lo, hi), e
    for s in USTC_C_SETS:
        assert all(0.4 <= x <= 5.0 and 0.0 < d < 2.0 for x, d in s.points), s


def test_interpolated_spread():
    """A set without a point within 5 % of E but with points on both sides (at most a factor max_gap apart)
    contributes its log-log interpolation there: Bronstein's Al set (0.41 keV 0.64, 0.6 keV 0.58) at 0.5 keV;
    a wider gap contributes nothing; the interpolated spread always contains the 5 % window's."""
    from fibsynth.physics.montecarlo.se_reference import (COMPARE_ENERGIES, JOY_SE_YIELD, interpolated_spread,
                                                          measured_spread, set_value)

    bron = next(s for s in JOY_SE_YIELD["Al"] if s.ref == 106)
    t = math.log(0.5 / 0.41) / math.log(0.6 / 0.41)
    want = math.exp((1 - t) * math.log(0.64) + t * math.log(0.58))
    assert set_value(bron, 0.5) == [pytest.approx(want, rel=1e-12)]
    assert set_value(bron, 0.5, max_gap=1.4) == []  # 0.6 / 0.41 = 1.46
    assert set_value(bron, 1.0) == [0.45]  # a point within 5 %: the point itself
    assert set_value(bron, 5.0) == []  # the set stops at 4 keV: no extrapolation
    lo, hi, n = interpolated_spread("Al", 0.5)
    assert (lo, hi, n) == (pytest.approx(want, rel=1e-12), 3.179, 3)
    for el in ("graphite", "Al", "Si", "Cu", "Au"):
        for e in COMPARE_ENERGIES:
            a, b = measured_spread(el, e), interpolated_spread(el, e)
            assert b[0] <= a[0] and b[1] >= a[1] and b[2] >= a[2], (el, e, a, b)


def test_se_yield_does_not_depend_on_density():
    """The escape depth scales with the density like the Kanaya-Okayama range it comes from, and the transport
    scales with it too: the yield of carbon is the same at 2.26 (graphite) and 1.8 g/cm^3 (amorphous-carbon-like
    density), so the choice between them cannot move the comparison (se17)."""
    a = bulk_se_yield("graphite", 2.0, 300, seed=4)
    b = bulk_se_yield("C:1.8", 2.0, 300, seed=4)
    assert b.delta == pytest.approx(a.delta, rel=1e-9) and b.bse.backscattered == a.bse.backscattered


def test_se_yield_keeps_the_energy_of_stopped_electrons():
    """Every keV an electron loses in the target makes SE at 1 / epsilon, also the energy it still has when the
    transport stops following it (below the cut-off energy, or range-rejected because it can no longer reach the
    face): the yield does not depend on where the transport stops. Before (se8) that energy was dropped: raising
    the cut-off from 50 to 150 eV lowered the yield of graphite at 0.5 keV by 6.6 % and of gold by 8.0 %
    (measured with 3000 electrons); now by <= 2 %. Range rejection on / off: same BSE, SE within 0.3 %."""
    from fibsynth.physics.montecarlo.settings import Physics

    for m in ("graphite", "Au"):
        a = bulk_se_yield(m, 0.5, N, seed=1).delta
        b = bulk_se_yield(m, 0.5, N, seed=1, physics=Physics(cutoff_kev=0.15)).delta
        assert abs(b / a - 1.0) < 0.04, (m, a, b)
    vol = np.ones((6, 1, 4), np.uint8)
    st = StackSettings(beam=Beam(energy_kev=1.0, incidence_deg=0.0), electrons_per_pixel=300, seed=3,
                       geometry=StackGeometry(solid="Si", pore="vacuum", backing="solid"))
    on = simulate_slice_se(vol, (2.0, 2.0, 2.0), 0, st, range_rejection=True)
    off = simulate_slice_se(vol, (2.0, 2.0, 2.0), 0, st, range_rejection=False)
    assert np.array_equal(on["all"], off["all"])
    assert on["se"].mean() == pytest.approx(off["se"].mean(), rel=0.01)


def test_se2_is_beta_eta_of_se1():
    """SE2 / SE1 = beta eta with beta roughly independent of the element (the classic delta = delta_1 (1 +
    beta eta), H. Seiler, J. Appl. Phys. 54 (1983) R1): at 3 keV beta between 2 and 5 for C, Al, Cu and Au (the
    model gives 2.8-3.9, benchmarks/se_yield.py; SE2 = SE made after the electron first turned back towards the
    face from deeper than one escape depth, or had been deeper than five; the depth-only split of before gave Au
    1.2 and failed here)."""
    for m in ("graphite", "Al", "Cu", "Au"):
        r = bulk_se_yield(m, 3.0, N, seed=2)
        beta = r.se2 / r.se1 / r.eta
        assert 2.0 < beta < 5.0, (m, beta)


def test_gold_yield_shape_and_crossover():
    """Au (CRC Handbook: delta_m 1.4 at 0.8 keV, second crossover above 2 keV): delta rises then falls; above 1
    at 2 keV; higher than carbon's at 2 keV."""
    d = {e: bulk_se_yield("Au", e, N, seed=1).delta for e in (0.3, 0.8, 4.0)}
    assert d[0.3] < d[0.8] > d[4.0]
    assert bulk_se_yield("Au", 2.0, N, seed=1).delta > 1.0
    assert bulk_se_yield("Au", 2.0, N, seed=1).delta > bulk_se_yield("graphite", 2.0, N, seed=1).delta


def test_se2_share_grows_with_z():
    """SE2 (from backscattered electrons) / SE1 grows with the backscatter coefficient from C to Al to Cu, and
    Au's is above C's (Au and Cu come out level, docs/montecarlo.md)."""
    ratio = []
    for m in ("graphite", "Al", "Cu", "Au"):
        r = bulk_se_yield(m, 3.0, N, seed=2)
        ratio.append(r.se2 / r.se1)
    assert ratio[0] < ratio[1] < ratio[2], ratio
    assert ratio[3] > 2 * ratio[0], ratio


def test_open_pore_wall_edge_brightening():
    """A slot (open pore) in Si at 1 keV: pixels next to its walls are brighter in SE than the flat face
    (the topographic edge effect), which face-only emission does not show; BSE counts are unchanged.
    1200 electrons per pixel (was 150): at 150 the edge/flat ratio (expected ~2.2-2.3) scattered by +-0.2 between
    seeds and fell below 2 for about 1 seed in 12 with either kernel (mcspeed6, /work/notes/mcspeed6.md)."""
    vol = np.ones((8, 1, 16), np.uint8)
    vol[:, :, 6:10] = 0
    st = StackSettings(beam=Beam(energy_kev=1.0, incidence_deg=0.0), electrons_per_pixel=1200, seed=3,
                       geometry=StackGeometry(solid="Si", pore="vacuum", backing="solid"))
    r = simulate_slice_se(vol, (2.0, 2.0, 2.0), 0, st)
    f = simulate_slice_se(vol, (2.0, 2.0, 2.0), 0, st, walls=False)
    se, sf = r["se"][0], f["se"][0]
    edge = 0.5 * (se[5] + se[10])
    flat = 0.5 * (se[0] + se[15])
    assert edge > 2.0 * flat, (edge, flat)  # measured 2.54 vs 0.87 at 150 e/px (former kernel); ~2.35 vs ~1.05 at 1200
    assert edge > 2.0 * 0.5 * (sf[5] + sf[10]), (edge, sf)  # face only: 0.71
    assert np.array_equal(r["all"], f["all"])


def test_cli_bulk_secondary(capsys):
    import json

    from fibsynth.cli import main

    assert main(["mc", "bulk", "--material", "Cu", "--energy-kev", "1.5", "--electrons", "800", "--seed", "2",
                 "--secondary", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["delta"] == pytest.approx(out["se1"] + out["se2"])
    assert 0.7 < out["delta"] < 1.4  # E_II of Cu is 1.5 keV (delta = 1); measured here 1.03 with 4000 electrons
    assert main(["mc", "bulk", "--material", "W", "--energy-kev", "2", "--electrons", "10", "--secondary"]) == 2
    err = capsys.readouterr().err
    assert "--material" in err and "W" in err and len(err.strip().splitlines()) == 1
    assert main(["mc", "bulk", "--material", "Cu", "--energy-kev", "2", "--secondary", "--backend", "torch"]) == 2
    assert "--backend" in capsys.readouterr().err
