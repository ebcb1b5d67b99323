"""The shine-through projection: flat film, one gold voxel behind epoxy, tilt, K cut-off, exact ray geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.fastsim.network import load_model
from fibsynth.fastsim.projection import default_slices_behind, project, ray_cells
from fibsynth.physics.backscatter import kanaya_okayama_range_nm


class DepthModel:
    """Stand-in network: eta = 1 / (1 + depth) -- strictly decreasing, so the image encodes the hit depth."""

    def predict(self, energy_kev, z, depth_nm):
        e, z, d = np.broadcast_arrays(np.asarray(energy_kev, float), np.asarray(z, float), np.asarray(depth_nm, float))
        return 1.0 / (1.0 + d)


@pytest.fixture(scope="module")
def net():
    return load_model()


def test_ray_cells_normal_and_tilted():
    c = ray_cells(5, 4.0, 5.0, 0.0)
    assert c.tolist() == [[j, 0, 4.0 * j] for j in range(5)]
    t = ray_cells(6, 5.0, 5.0, 38.0)
    assert np.all(np.diff(t[:, 2]) > 0) and t[0].tolist() == [0, 0, 0]
    assert np.all(np.diff(t[:, 0]) >= 0) and np.all(np.diff(t[:, 1]) >= 0)
    # consecutive cells share a face: exactly one of (slice, y) advances
    assert np.all(np.diff(t[:, 0]) + np.diff(t[:, 1]) == 1)
    # entering cell column i happens where the ray reaches y = i * dy: depth = (i dy - dy/2) / tan(a)
    tan = math.tan(math.radians(38.0))
    for j, i, d in t:
        if i > 0 and (j == 0 or d > j * 5.0 + 1e-9):
            assert d == pytest.approx((i * 5.0 - 2.5) / tan)
    assert t[:, 0].max() == 5


def test_flat_film_falls_monotonically_and_vanishes_beyond_k(net):
    dz, k_behind, m = 10.0, 6, 12
    s = np.zeros((16, 4, 4), np.uint8)
    s[m:] = 1  # epoxy above slice m, gold from slice m on (the film thins as slices are milled)
    img, rec = project(s, (dz, 5.0, 5.0), 2.0, slices_behind=k_behind, incidence_deg=0.0, model=net,
                       normalise="eta")
    per_slice = img.mean(axis=(1, 2))
    assert np.allclose(img, per_slice[:, None, None])  # laterally uniform
    depth = (m - np.arange(m + 1)) * dz  # film thickness seen from slice k
    expect = net.predict(2.0, 79, depth)
    seen = depth < k_behind * dz
    assert np.allclose(per_slice[: m + 1][seen], expect[seen], atol=1e-6)
    # brightness falls monotonically with the epoxy thickness over the gold
    assert np.all(np.diff(per_slice[m - k_behind + 1: m + 1]) > 0)
    # beyond K the gold does not show: pore value, = the network's eta far below the epoxy surface
    assert np.allclose(per_slice[: m - k_behind + 1], rec["eta_pore"])
    assert rec["eta_pore"] == pytest.approx(float(net.predict(2.0, 79, rec["depth_far_nm"])))
    assert 0.05 < rec["eta_pore"] < 0.15  # epoxy-like backscatter at 2 keV
    assert np.allclose(per_slice[m:], float(net.predict(2.0, 79, 0.0)))  # gold face


def test_single_voxel_behind_epoxy_normal_and_tilted(net):
    s = np.zeros((12, 24, 9), np.uint8)
    z0, y0, x0 = 10, 12, 4
    s[z0, y0, x0] = 1
    dz = dy = 5.0
    img, rec = project(s, (dz, dy, dy), 2.0, slices_behind=8, incidence_deg=0.0, model=net, spread=0.0)
    for k in range(z0 + 1):
        lit = np.argwhere(img[k] > 0)
        if z0 - k < 8:
            assert lit.tolist() == [[y0, x0]]
        else:
            assert lit.size == 0
    v = img[: z0 + 1, y0, x0]
    assert v[z0] == pytest.approx(1.0)  # group-normalised: gold at the face = 1
    assert np.all(np.diff(v[z0 - 7:]) > 0)  # brighter as the epoxy over it thins
    # tilted beam (0, sin a, cos a): pixel y sees depth d at y + d tan(a), so the lit pixel moves to smaller y
    img_t, rec_t = project(s, (dz, dy, dy), 2.0, slices_behind=8, incidence_deg=38.0, model=net, spread=0.0)
    tan = math.tan(math.radians(38.0))
    ys = []
    for k in range(z0 - 5, z0 + 1):
        lit = np.argwhere(img_t[k] > 0)
        assert np.all(lit[:, 1] == x0) and len(lit) >= 1
        ys.append(lit[:, 0].mean())
        # the lit pixels' rays pass through the voxel column; their centres are within one pixel of the shift
        shift = ((z0 - k) * dz + 0.5 * dz) * tan / dy
        assert abs((y0 - lit[:, 0].mean()) - shift) <= 1.0
    assert np.all(np.diff(ys) > 0)  # deeper -> farther shifted
    # and it wraps periodically in y
    s2 = np.zeros((12, 24, 9), np.uint8)
    s2[z0, 0, x0] = 1
    img2, _ = project(s2, (dz, dy, dy), 2.0, slices_behind=8, incidence_deg=38.0, model=net, spread=0.0)
    assert np.array_equal(np.roll(img2, 12, axis=1), img_t)


def _brute_depth(vol, k, y, x, dz, dy, a, kmax):
    """First-solid entry depth along a finely sampled ray (independent of the DDA)."""
    ny = vol.shape[1]
    step = 0.002
    t = np.arange(0, kmax * dz / math.cos(a) + step, step)
    zz = t * math.cos(a)
    yy = (y + 0.5) * dy + t * math.sin(a)
    j = np.floor(zz / dz + 1e-12).astype(int)
    i = np.floor(yy / dy + 1e-12).astype(int) % ny
    ok = (j < kmax) & (k + j < vol.shape[0])
    hit = ok & (vol[np.minimum(k + j, vol.shape[0] - 1), i, x] == 1)
    if not hit.any():
        return None
    return zz[np.argmax(hit)]


@pytest.mark.parametrize("angle", [0.0, 30.0, 52.0])
def test_matches_brute_force_ray_march(angle):
    rng = np.random.default_rng(5)
    vol = (rng.random((10, 9, 3)) < 0.25).astype(np.uint8)
    dz, dy, kmax = 7.0, 4.0, 5
    img, rec = project(vol, (dz, dy, dy), 3.0, slices_behind=kmax, incidence_deg=angle, model=DepthModel(),
                       normalise="eta", spread=0.0)
    for k in range(vol.shape[0]):
        for y in range(vol.shape[1]):
            for x in range(vol.shape[2]):
                d = _brute_depth(vol, k, y, x, dz, dy, math.radians(angle), kmax)
                want = rec["eta_pore"] if d is None else 1.0 / (1.0 + d)
                assert img[k, y, x] == pytest.approx(want, abs=2e-3), (k, y, x, d)


def test_default_k_from_range_and_slices_option(net):
    for e, dz in ((1.0, 5.0), (2.0, 5.0), (4.0, 10.0)):
        k = default_slices_behind(e, dz)
        assert k == math.ceil(0.5 * kanaya_okayama_range_nm("epoxy", e) / dz)
    s = np.zeros((20, 4, 4), np.uint8)
    s[15:] = 1
    full, rec = project(s, (5.0, 5.0, 5.0), 1.0, model=net)
    assert rec["slices_behind"] == default_slices_behind(1.0, 5.0)
    part, _ = project(s, (5.0, 5.0, 5.0), 1.0, model=net, slices=(10, 16))
    assert np.array_equal(part, full[10:16])


def test_errors(net):
    s = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(FibsynthError, match="binary"):
        project(s + 2, (5, 5, 5), 2.0, model=net)
    with pytest.raises(FibsynthError, match="slices_behind"):
        project(s, (5, 5, 5), 2.0, slices_behind=0, model=net)
    with pytest.raises(FibsynthError, match="energy"):
        project(s, (5, 5, 5), 50.0, model=net)
    with pytest.raises(FibsynthError, match="3-D"):
        project(s[0], (5, 5, 5), 2.0, model=net)


def test_flat_film_unchanged_by_lateral_window(net):
    s = np.zeros((16, 6, 6), np.uint8)
    s[9:] = 1
    a, _ = project(s, (5.0, 5.0, 5.0), 2.0, slices_behind=12, model=net, spread=0.0)
    b, _ = project(s, (5.0, 5.0, 5.0), 2.0, slices_behind=12, model=net, spread=1.5)
    assert np.array_equal(a, b)  # laterally infinite solid fills every window: F = 1


@pytest.mark.parametrize("spread", [0.4, 1.0])
def test_lateral_window_against_numpy(net, spread):
    rng = np.random.default_rng(11)
    vol = (rng.random((12, 10, 7)) < 0.3).astype(np.uint8)
    dz, dy, dx = 6.0, 4.0, 3.0
    K = 6
    img, rec = project(vol, (dz, dy, dx), 2.0, slices_behind=K, incidence_deg=30.0, model=net, spread=spread,
                       normalise="eta")
    ref, _ = project(vol, (dz, dy, dx), 2.0, slices_behind=K, incidence_deg=30.0, model=DepthModel(), spread=0.0,
                     normalise="eta")
    cells = np.array(rec["cells"])
    w = np.array(rec["weights"])
    for k in range(vol.shape[0]):
        for y in range(vol.shape[1]):
            for x in range(vol.shape[2]):
                if ref[k, y, x] == pytest.approx(_pore(rec, K * dz)):
                    assert img[k, y, x] == pytest.approx(rec["eta_pore"], abs=1e-6)
                    continue
                d = 1.0 / ref[k, y, x] - 1.0  # hit depth from the stand-in model
                c = int(np.argmin(np.abs(cells[:, 2] - d)))
                j, i, dd = cells[c]
                ry, rx = int(np.rint(spread * dd / dy)), int(np.rint(spread * dd / dx))
                ys = np.arange(y + int(i) - ry, y + int(i) + ry + 1) % vol.shape[1]
                xs = np.arange(x - rx, x + rx + 1) % vol.shape[2]
                f = vol[k + int(j)][np.ix_(np.unique(ys), np.unique(xs))].mean()
                want = rec["eta_pore"] + (w[c] - rec["eta_pore"]) * f
                assert img[k, y, x] == pytest.approx(want, abs=1e-5), (k, y, x)


def _pore(rec, d_far):
    return 1.0 / (1.0 + rec["depth_far_nm"])


def test_lateral_window_dims_isolated_deep_voxel(net):
    s = np.zeros((10, 15, 15), np.uint8)
    s[6, 7, 7] = 1
    a, rec = project(s, (5.0, 5.0, 5.0), 2.0, slices_behind=10, incidence_deg=0.0, model=net, spread=0.0)
    b, _ = project(s, (5.0, 5.0, 5.0), 2.0, slices_behind=10, incidence_deg=0.0, model=net, spread=0.5)
    for k in range(7):
        r = int(np.rint(0.5 * (6 - k) * 5.0 / 5.0))
        assert b[k, 7, 7] == pytest.approx(a[k, 7, 7] / (2 * r + 1) ** 2, rel=1e-5)
    assert np.count_nonzero(b) == np.count_nonzero(a)  # dimmer, not moved
