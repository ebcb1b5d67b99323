"""fidelity.hist_distance_bands (fast15): the histogram distance split by quantile band, exactly."""
import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.fastsim.fidelity import hist_distance, hist_distance_bands


def _binomial(p, seed, n=100):
    return np.random.default_rng(seed).binomial(n, p) / n


def test_bands_add_up_to_the_distance_and_locate_a_tail_error():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.7, (2, 32, 32))
    ref, x = _binomial(p, 1), _binomial(p, 2)
    b = hist_distance_bands(x, ref)
    assert np.isclose(sum(b["abs"]), hist_distance(x, ref), rtol=1e-12, atol=1e-15)
    assert all(a >= abs(s) - 1e-15 for a, s in zip(b["abs"], b["signed"]))
    # brighten only the brightest 1 % of x: the gap appears in the top band and nowhere else, with a + sign
    y = x.copy().ravel()
    top = np.argsort(y)[-(len(y) // 100):]
    y[top] += 0.2
    d = np.subtract(hist_distance_bands(y.reshape(x.shape), ref)["signed"], b["signed"])
    assert d[-1] > 0 and np.allclose(d[:-1], 0, atol=1e-12)


def test_a_pure_shift_shows_in_every_band_with_its_sign():
    ref = _binomial(np.full((4, 16, 16), 0.3), 3)
    ref = ref + np.linspace(0, 0.3, ref.size).reshape(ref.shape)  # a spread-out reference
    lo, hi = np.percentile(ref, (0.1, 99.9))
    b = hist_distance_bands(ref - 0.01, ref)
    widths = np.diff(np.rint(np.asarray(b["quantiles"]) * ref.size)) / ref.size  # the bands' shares of the pixels
    assert np.allclose(b["signed"], -0.01 / (hi - lo) * widths, rtol=1e-6)
    assert np.allclose(b["abs"], 0.01 / (hi - lo) * widths, rtol=1e-6)


def test_refusals_name_the_parameter():
    with pytest.raises(FibsynthError, match="x"):
        hist_distance_bands(np.zeros(10), np.arange(12.0))
    with pytest.raises(FibsynthError, match="quantiles"):
        hist_distance_bands(np.arange(10.0), np.arange(10.0), quantiles=(0.0, 0.5))
