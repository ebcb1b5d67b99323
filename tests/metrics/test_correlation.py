"""Directional S2 and lineal path: brute force on tiny volumes, porespy's chords, invariants."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from fibsynth.metrics.correlation import chord_length_histogram, directional_lineal_path, directional_tpcf


def _vol(shape=(9, 11, 13), seed=0, sigma=1.5, level=0.2):
    g = ndi.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma)
    return g > level * g.std()


def _brute(a, axis):
    n = a.shape[axis]
    lines = np.moveaxis(a, axis, -1).reshape(-1, n)
    s2 = [np.mean([ln[i] & ln[i + k] for ln in lines for i in range(n - k)]) for k in range(n)]
    lp = [np.mean([ln[i : i + k + 1].all() for ln in lines for i in range(n - k)]) for k in range(n)]
    return np.array(s2), np.array(lp)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_brute_force(axis):
    a = _vol()
    s2, lp = _brute(a, axis)
    n = a.shape[axis]
    vs = (2.0, 0.5, 1.5)
    lags, f = directional_tpcf(a, vs, axis, n - 1)
    np.testing.assert_allclose(lags, np.arange(n) * vs[axis])
    np.testing.assert_allclose(f, s2, atol=1e-9)
    lags, g = directional_lineal_path(a.astype(np.uint8), vs, axis, n - 1)
    np.testing.assert_allclose(g, lp, atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_chords_match_porespy(axis):
    ps = pytest.importorskip("porespy")
    a = _vol((20, 24, 28), seed=3, sigma=2)
    chords = ps.filters.apply_chords(a, spacing=0, axis=axis, trim_edges=False)
    # label each chord separately: runs are 1-voxel-thick lines along `axis`
    structure = np.zeros((3, 3, 3), bool)
    idx = [1, 1, 1]
    for d in (0, 2):
        idx[axis] = d
        structure[tuple(idx)] = True
    structure[1, 1, 1] = True
    lab, n = ndi.label(chords > 0, structure=structure)
    lengths = np.bincount(lab.ravel())[1:]
    ref = np.bincount(lengths, minlength=a.shape[axis] + 1)
    assert np.array_equal(chord_length_histogram(a, axis), ref)
    # a chord of l voxels holds l voxels: total solid voxels recovered
    h = chord_length_histogram(a, axis)
    assert (h * np.arange(h.size)).sum() == a.sum()


def test_invariants_and_transposes():
    a = _vol((16, 20, 24), seed=1, sigma=2)
    phi = a.mean()
    for ax in range(3):
        _, s2 = directional_tpcf(a, None, ax)
        _, lp = directional_lineal_path(a, None, ax)
        assert s2[0] == pytest.approx(phi) and lp[0] == pytest.approx(phi)
        assert np.all(np.diff(lp) <= 1e-15) and np.all(lp <= s2 + 1e-12)
    t = a.transpose(2, 0, 1)  # new (z, y, x) = old (x, z, y)
    vs = (1.0, 2.0, 3.0)
    vt = (3.0, 1.0, 2.0)
    for new_ax, old_ax in ((0, 2), (1, 0), (2, 1)):
        for fn in (directional_tpcf, directional_lineal_path):
            l1, f1 = fn(a, vs, old_ax, 7)
            l2, f2 = fn(t, vt, new_ax, 7)
            np.testing.assert_allclose(l1, l2)
            np.testing.assert_allclose(f1, f2, atol=1e-9)


def test_slabs_analytic():
    # slabs of 3 solid + 5 pore voxels along z: along x and y every line is constant
    a = np.zeros((48, 6, 7), bool)
    for z0 in range(0, 48, 8):
        a[z0 : z0 + 3] = True
    _, lx = directional_lineal_path(a, None, 2)
    _, sx = directional_tpcf(a, None, 2)
    np.testing.assert_allclose(lx, 3 / 8)
    np.testing.assert_allclose(sx, 3 / 8)
    _, lz = directional_lineal_path(a, None, 0, 4)
    # chords of 3 voxels: L(k) = 6 chords * (3 - k) / (48 - k) per line
    np.testing.assert_allclose(lz, [6 * max(0, 3 - k) / (48 - k) for k in range(5)])
    _, sz = directional_tpcf(a, None, 0, 8)
    assert sz[8] == pytest.approx(15 / 40)  # period 8: pairs (i, i + 8) both solid for the i < 40 with i % 8 < 3
