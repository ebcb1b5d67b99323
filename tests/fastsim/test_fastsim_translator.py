"""The paired translator: sheared depth features, binomial shot noise, the shipped weights, fast_stack wiring."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.fastsim import translator as T


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_depth_fractions_put_a_voxel_in_its_bin_where_the_tilted_beam_meets_it():
    s = np.zeros((40, 16, 8), np.uint8)
    s[9, 10, 3] = 1  # one gold voxel, slice 9
    bins = T.DEPTH_BINS_NM
    for a in (0.0, 38.0):
        f = T.sheared_depth_fractions(s, (5.0, 5.0, 5.0), a, bins)
        tan = math.tan(math.radians(a))
        for k in range(10):
            d = (9 - k + 0.5) * 5.0  # centre depth of the voxel seen from slice k
            b = int(np.searchsorted(bins, d, side="right") - 1)
            j0 = int(math.ceil(bins[b] / 5.0 - 0.5 - 1e-9))
            j1 = int(math.ceil(bins[b + 1] / 5.0 - 0.5 - 1e-9))
            y = (10 - int(round(d * tan / 5.0))) % 16  # the pixel whose ray reaches y = 10 at that depth
            assert f[b, k, y, 3] == pytest.approx(1.0 / (j1 - j0)), (a, k)
            assert f[:, k].sum() == pytest.approx(1.0 / (j1 - j0))  # nowhere else
        assert f[:, 10:].sum() == 0  # milled away: behind the face no more


def test_shot_noise_is_binomial_seeded_and_zero_dose_is_the_mean():
    p = np.full((200, 200), 0.3, np.float32)
    a = T.shot_noise(p, 100, seed=5)
    assert np.array_equal(a, T.shot_noise(p, 100, seed=5)) and not np.array_equal(a, T.shot_noise(p, 100, seed=6))
    # mean p, variance p (1 - p) / N (4e4 pixels: the sample variance is within ~2 % of it)
    assert a.mean() == pytest.approx(0.3, abs=0.002)
    assert a.var() == pytest.approx(0.3 * 0.7 / 100, rel=0.05)
    assert np.allclose(a * 100, np.rint(a * 100), atol=1e-4)  # whole numbers of electrons
    assert np.array_equal(T.shot_noise(p, 0, seed=1), p)
    with pytest.raises(FibsynthError) as ei:
        T.shot_noise(p, -1, seed=0)
    assert ei.value.param == "electrons_per_pixel"


@pytest.fixture(scope="module")
def shipped():
    return T.load_paired()


def test_shipped_weights_are_small_and_carry_their_record(shipped):
    assert T.DEFAULT_WEIGHTS.stat().st_size < 1_000_000
    cfg = json.loads(T.DEFAULT_CONFIG.read_text())
    tr = cfg["training"]
    assert tr["materials"] == ["gold", "epoxy"] and tr["energy_range_kev"][0] <= 1 and tr["energy_range_kev"][1] >= 4
    assert set(tr["data"]["held_out_test_structures"]).isdisjoint(tr["data"]["train_structures"])
    assert "measured" in cfg and set(cfg["measured"]["energies"]) >= {"1.0", "2.0", "4.0"}


def test_translator_brightens_gold_is_deterministic_and_in_the_monte_carlo_range(shipped):
    from fibsynth.structure import leveled_wave

    s = leveled_wave((40, 32, 32), voxel_size=5.0, solid_fraction=0.3, ligament_nm=40.0, seed=4)
    for e in (1.0, 4.0):
        a, m = shipped(s, (5.0, 5.0, 5.0), e, electrons_per_pixel=100, seed=3, slices=(0, 2))
        b, _ = shipped(s, (5.0, 5.0, 5.0), e, electrons_per_pixel=100, seed=3, slices=(0, 2))
        c, _ = shipped(s, (5.0, 5.0, 5.0), e, electrons_per_pixel=100, seed=4, slices=(0, 2))
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        assert a.shape == m.shape == (2, 32, 32) and 0 <= m.min() and m.max() <= 1
        face = s[:2].astype(bool)
        # gold at the face backscatters far more than epoxy (bulk eta ~0.4-0.5 vs ~0.05-0.1 at 38 deg)
        assert m[face].mean() > m[~face].mean() + 0.1
        assert 0.25 < m[face].mean() < 0.7 and 0.0 < np.median(m[~face]) < 0.3


def test_translator_refuses_what_it_was_not_trained_for(shipped, tmp_path):
    s = np.zeros((8, 8, 8), np.uint8)
    with pytest.raises(FibsynthError) as ei:
        shipped(s, (5, 5, 5), 10.0)
    assert ei.value.param == "energy_kev"
    with pytest.raises(FibsynthError) as ei:
        shipped(s, (5, 5, 5), 2.0, solid="copper")
    assert ei.value.param == "solid"
    with pytest.raises(FibsynthError) as ei:
        shipped(s, (5, 5, 5), 2.0, pore="vacuum")  # open pores: no pairs trained
    assert ei.value.param == "pore"
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"not a tensor file")
    (tmp_path / "w.json").write_text(T.DEFAULT_CONFIG.read_text())
    with pytest.raises(FibsynthError, match="refused"):
        T.PairedTranslator(bad)


def test_fast_stack_paired_translation():
    from fibsynth import pipeline
    from fibsynth.structure import leveled_wave

    s = leveled_wave((30, 24, 24), voxel_size=5.0, solid_fraction=0.3, ligament_nm=40.0, seed=2)
    p = pipeline.fast_stack(s, 5.0, 2.0, translation="paired", seed=7, electrons_per_pixel=50, keep_projection=True)
    q = pipeline.fast_stack(s, 5.0, 2.0, translation="paired", seed=7, electrons_per_pixel=50)
    assert np.array_equal(p.data, q.data) and p.data.shape == s.shape and p.data.dtype == np.float32
    assert p.meta.generator == pipeline.FAST and p.meta.parameters["translator"] == "paired"
    assert p.meta.parameters["histogram_calibration"] is True
    assert p.meta.parameters["electrons_per_pixel"] == 50 and p.meta.seed == 7
    assert np.allclose(p.data * 50, np.rint(p.data * 50), atol=1e-3)  # counts of 50 electrons
    assert p.record["projection_product"].meta.generator == pipeline.PROJECTION
    with pytest.raises(FibsynthError) as ei:
        pipeline.fast_stack(s, 5.0, 2.0, translation="paired", electrons_per_pixel=-3)
    assert ei.value.param == "electrons_per_pixel"


def test_histogram_calibration_undoes_a_regression_to_the_mean():
    """A mean image shrunk towards its centre (as a regression's is) gives a noisy histogram unlike the Monte
    Carlo's; the fitted monotone offsets bring the expected histogram back, and leave an unshrunk mean alone."""
    rng = np.random.default_rng(0)
    gold = rng.random(12000) < 0.35
    p = np.clip(np.where(gold, 0.45, 0.08) + 0.04 * rng.standard_normal(gold.size), 0.0, 1.0)
    mc = T.shot_noise(p, 100, seed=1)
    knots = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    shrunk = 0.25 + 0.85 * (p - 0.25)
    f = T.fit_histogram_offsets([shrunk], [mc], 100, knots=knots, smooth=1.0)
    assert f["monotone"] and f["distance_after"] < 0.3 * f["distance_before"]
    fixed = T.apply_histogram_offsets(shrunk, f["knots"], f["offsets"])
    assert fixed.dtype == np.float32 and np.all(np.diff(fixed[np.argsort(shrunk)]) >= 0)  # no pixel passes another
    # the tails come back out: low yields lower, high yields higher
    assert np.interp(0.1, knots, f["offsets"]) < -0.005 and np.interp(0.45, knots, f["offsets"]) > 0.005
    # against a fresh Monte Carlo draw the noisy histogram is as close as a second Monte Carlo run
    from fibsynth.fastsim.fidelity import hist_distance

    ref = T.shot_noise(p, 100, seed=2)
    assert hist_distance(T.shot_noise(fixed, 100, seed=3), ref) < 2 * hist_distance(mc, ref) + 1e-3
    assert hist_distance(T.shot_noise(shrunk, 100, seed=3), ref) > 2 * hist_distance(mc, ref)
    g = T.fit_histogram_offsets([p], [mc], 100, knots=knots, smooth=1.0)  # nothing to correct
    assert max(abs(v) for v in g["offsets"][1:-1]) < 0.004
    with pytest.raises(FibsynthError) as ei:
        T.fit_histogram_offsets([p], [mc], 100, knots=(0.2, 0.1))
    assert ei.value.param == "knots"
    with pytest.raises(FibsynthError) as ei:
        T.fit_histogram_offsets([np.full(10, 0.9)], [mc], 100, knots=(0.0, 0.1, 0.2))
    assert ei.value.param == "means"


def test_shipped_histogram_calibration_is_monotone_and_optional(shipped):
    from fibsynth.structure import leveled_wave

    cal = shipped.histogram_calibration
    assert cal is not None and cal["energies_kev"][0] <= 1 and cal["energies_kev"][-1] >= 4
    knots = np.asarray(cal["knots"])
    for d in cal["offsets"]:
        assert np.all(np.diff(knots + np.asarray(d)) > 0) and max(abs(v) for v in d) < 0.05
    s = leveled_wave((40, 32, 32), voxel_size=5.0, solid_fraction=0.3, ligament_nm=40.0, seed=4)
    _, raw = shipped(s, (5.0, 5.0, 5.0), 2.5, electrons_per_pixel=0, slices=(0, 2), calibrated=False)
    _, cal_m = shipped(s, (5.0, 5.0, 5.0), 2.5, electrons_per_pixel=0, slices=(0, 2))
    d = [np.interp(2.5, cal["energies_kev"], np.asarray(cal["offsets"])[:, j]) for j in range(len(knots))]
    assert np.array_equal(cal_m, T.apply_histogram_offsets(raw, knots, d)) and not np.array_equal(cal_m, raw)
    assert np.abs(cal_m - raw).max() < 0.05
    o = np.argsort(raw.ravel(), kind="stable")
    assert np.all(np.diff(cal_m.ravel()[o]) >= 0)  # the order of the pixels is kept


def test_noise_variance_by_level_tells_binomial_from_overdispersed_noise():
    from fibsynth.errors import FibsynthError
    from fibsynth.fastsim.fidelity import noise_variance_by_level

    rng = np.random.default_rng(3)
    n = 100
    p = rng.uniform(0.05, 0.65, (4, 64, 64))
    r0, r1 = rng.binomial(n, p) / n, rng.binomial(n, p) / n
    res = noise_variance_by_level(p, r0, r1, n)
    ratio, se = np.array(res["ratio"]), np.array(res["ratio_se"])
    assert len(ratio) == 8 and sum(res["pixels"]) == p.size
    assert np.all(np.abs(ratio - 1) < 4 * se) and np.all(se < 0.05)
    # the bins follow the level: their binomial variance rises with p up to 0.5
    assert res["binomial"][0] < res["binomial"][3] < res["binomial"][6]
    # extra variance on top of the binomial one (each realisation's p jitters by 0.03): every bin sees it
    q0 = np.clip(p + rng.normal(0, 0.03, p.shape), 0, 1)
    q1 = np.clip(p + rng.normal(0, 0.03, p.shape), 0, 1)
    over = noise_variance_by_level(p, rng.binomial(n, q0) / n, rng.binomial(n, q1) / n, n)
    assert min(over["ratio"]) > 1.15
    with pytest.raises(FibsynthError) as err:
        noise_variance_by_level(p, r0, r1, 1)
    assert err.value.param == "electrons_per_pixel"
    with pytest.raises(FibsynthError) as err:
        noise_variance_by_level(p[:1], r0, r1, n)
    assert err.value.param == "level"


def test_t_interval_matches_the_textbook_and_covers_at_its_level():
    from fibsynth.fastsim.fidelity import t_interval, verdict

    ci = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sd sqrt(2.5), t(0.975, 4) = 2.7764451: half-width 2.7764451 * sqrt(2.5 / 5)
    assert ci["mean"] == pytest.approx(3.0) and ci["sd"] == pytest.approx(math.sqrt(2.5)) and ci["n"] == 5
    assert ci["hi"] - 3.0 == pytest.approx(2.7764451 * math.sqrt(0.5), rel=1e-6)
    assert 3.0 - ci["lo"] == pytest.approx(ci["hi"] - 3.0)
    # coverage of the true mean by the 95 % interval of 6 normal draws (paired differences of 6 structures)
    rng = np.random.default_rng(0)
    hits = [(c := t_interval(rng.normal(0.4, 2.0, 6)))["lo"] <= 0.4 <= c["hi"] for _ in range(4000)]
    assert 0.935 < np.mean(hits) < 0.965
    assert math.isnan(t_interval([1.0])["lo"])
    # verdicts: inside, outside, straddling a bound
    assert verdict({"lo": -0.004, "hi": -0.001}, hi=0.0) == "met"
    assert verdict({"lo": 0.0002, "hi": 0.0009}, hi=0.0) == "not met"
    assert verdict({"lo": -0.0003, "hi": 0.0009}, hi=0.0) == "unresolved"
    assert verdict({"lo": 0.931, "hi": 0.94}, lo=0.93) == "met"
    assert verdict({"lo": -0.012, "hi": 0.002}, -0.01, 0.01) == "unresolved"


def test_binomial_noise_level_reads_the_noise_power_off_the_histogram():
    """(mean x - mean x^2) / (N - 1) of binomial images is their mean shot-noise variance E[m (1 - m)] / N, the
    level of the noise power spectrum in every band: so two binomial outputs with the same gray-value histogram
    have the same noise power (issue 15: a histogram calibration cannot cost noise power)."""
    from fibsynth.errors import FibsynthError
    from fibsynth.fastsim.fidelity import binomial_noise_level, radial_nps

    rng = np.random.default_rng(7)
    n = 100
    m = rng.uniform(0.05, 0.65, (4, 64, 64))
    a, b = rng.binomial(n, m) / n, rng.binomial(n, m) / n
    expected = float(np.mean(m * (1 - m)) / n)
    assert binomial_noise_level([a, b], n) == pytest.approx(expected, rel=0.01)
    # the noise power of the two draws sits at that level in every band (each band's estimate within ~5 %)
    assert np.allclose(radial_nps(a, b), expected, rtol=0.08)
    # the same pixel values in another arrangement (same histogram, other image): the same level
    perm = rng.permutation(m.ravel()).reshape(m.shape)
    c = rng.binomial(n, perm) / n
    assert binomial_noise_level(c, n) == pytest.approx(binomial_noise_level(a, n), rel=0.01)
    # a wider distribution of the mean (var + 0.01) lowers the level by 0.01 / N: the histogram tells it
    w = np.clip(0.35 + (m - 0.35) * np.sqrt(1 + 0.01 / m.var()), 0, 1)
    d = rng.binomial(n, w) / n
    assert binomial_noise_level(d, n) == pytest.approx(float(np.mean(w * (1 - w)) / n), rel=0.01)
    assert binomial_noise_level(a, n) - binomial_noise_level(d, n) == pytest.approx(0.01 / n, rel=0.15)
    # a plain variance of the pixels is not it (it holds the structure's variance too)
    assert a.var() > 5 * expected
    with pytest.raises(FibsynthError) as err:
        binomial_noise_level(a, 1)
    assert err.value.param == "electrons_per_pixel"


def test_level_correction_shifts_the_calibrated_level_by_the_fitted_structure_term(shipped, tmp_path):
    """fast13: the per-structure level correction. The fit recovers a linear level law of the depth bins' gold
    fractions; the shift's mean over a periodic slice is c + w . mean(F) whatever the blur; a translator whose JSON
    carries one adds exactly that shift to its calibrated mean image (not to the plain regression)."""
    from fibsynth.structure import leveled_wave

    rng = np.random.default_rng(11)
    f = rng.uniform(0.2, 0.4, (40, 3))
    w_true, c_true = np.array([0.02, -0.01, 0.005]), -0.003
    en = np.repeat([1.0, 4.0], 20)
    y = c_true + f @ w_true * np.where(en == 4.0, 1.0, 0.5)
    lc = T.fit_level_correction(f, y, en, ridge=1e-9, sigma_px=8.0)
    assert lc["energies_kev"] == [1.0, 4.0]
    assert np.allclose(lc["weights"][1], w_true, atol=1e-6) and np.allclose(lc["weights"][0], 0.5 * w_true, atol=1e-6)
    assert lc["intercept"][1] == pytest.approx(c_true, abs=1e-7)
    # heavy shrinkage leaves about the mean bias
    assert np.abs(T.fit_level_correction(f, y, en, 1e9, 0.0)["weights"]).max() < 1e-6
    depth = rng.uniform(0, 1, (2, 3, 16, 16)).astype(np.float32)
    for sigma in (0.0, 3.0, 30.0):
        sh = T.level_correction_shift(depth, {**lc, "sigma_px": sigma}, 2.5)
        wb = 0.5 * (np.asarray(lc["weights"][0]) + np.asarray(lc["weights"][1]))  # linear in E: 2.5 is halfway
        cb = 0.5 * (lc["intercept"][0] + lc["intercept"][1])
        assert np.allclose(sh.mean((1, 2)), cb + depth.mean((2, 3)) @ wb, atol=1e-6)
    assert np.ptp(T.level_correction_shift(depth, {**lc, "sigma_px": 30.0}, 4.0)[0]) < 1e-4  # a level only
    assert np.array_equal(T.level_correction_shift(depth, lc, 9.0), T.level_correction_shift(depth, lc, 4.0))
    with pytest.raises(FibsynthError) as ei:
        T.fit_level_correction(f, y, en, ridge=0.0, sigma_px=1.0)
    assert ei.value.param == "ridge"
    # the interface density: stripes 2 px wide in x (an edge every 2 px in x, none in y) -> 0.5 x 1/2 = 0.25
    v = np.zeros((6, 8, 8), np.uint8)
    v[:, :, 0:2] = v[:, :, 4:6] = 1
    d = T.interface_density(v, (0, 3), 2)  # a pixel counts its +x neighbour: 1|0 at x = 1, 0|1 at x = 3, ...
    assert np.allclose(d, np.array([0, 0.5] * 4)[None, None]) and d.mean() == pytest.approx(0.25)
    v[1:] = 0  # only the face slice has edges: averaged over 2 slices, half of it; the last slice none
    d = T.interface_density(v, (0, 6), 2)
    assert d[0].mean() == pytest.approx(0.125) and d[1:].max() == 0
    x = np.zeros((6, 5, 8, 8), np.float32)  # projection, 3 depth bins, energy
    lf = T.level_features(x, 3, {"interface_slices": 2}, v, (0, 6))
    assert lf.shape == (6, 4, 8, 8) and np.array_equal(lf[:, 3], d)
    with pytest.raises(FibsynthError) as ei:
        T.level_features(x, 3, {"interface_slices": 2})
    assert ei.value.param == "structure"
    # the translator applies it after the histogram calibration
    nb = len(shipped.bins_nm) - 1
    cfg = json.loads(T.DEFAULT_CONFIG.read_text())
    cfg["level_correction"] = {"energies_kev": [1.0, 4.0], "intercept": [0.01, -0.02],
                               "weights": [[0.0] * nb, [0.05] + [0.0] * (nb - 1)], "sigma_px": 4.0}
    (tmp_path / "t.json").write_text(json.dumps(cfg))
    (tmp_path / "t.pt").write_bytes(T.DEFAULT_WEIGHTS.read_bytes())
    tr = T.PairedTranslator(tmp_path / "t.pt")
    s = leveled_wave((40, 32, 32), voxel_size=5.0, solid_fraction=0.3, ligament_nm=40.0, seed=4)
    for e, lvl in ((1.0, 0.01), (4.0, None)):
        _, base = shipped(s, (5.0, 5.0, 5.0), e, electrons_per_pixel=0, slices=(0, 2))
        _, corr = tr(s, (5.0, 5.0, 5.0), e, electrons_per_pixel=0, slices=(0, 2))
        _, raw = tr(s, (5.0, 5.0, 5.0), e, electrons_per_pixel=0, slices=(0, 2), calibrated=False)
        _, raw0 = shipped(s, (5.0, 5.0, 5.0), e, electrons_per_pixel=0, slices=(0, 2), calibrated=False)
        assert np.array_equal(raw, raw0)
        d = (corr - base).astype(np.float64)
        if lvl is not None:
            assert np.allclose(d, lvl, atol=1e-6)
        else:  # -0.02 + 0.05 x the surface gold, blurred: the slice means follow the surface fraction
            assert np.allclose(d.mean((1, 2)), -0.02 + 0.05 * s[:2].mean((1, 2)), atol=1e-5)
            assert np.ptp(d) > 0.005
