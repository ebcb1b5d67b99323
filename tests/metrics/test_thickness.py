"""Local thickness: independent references (brute force, scipy EDT, porespy) and analytic shapes."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from fibsynth.errors import FibsynthError
from fibsynth.metrics.thickness import (
    edt_nm,
    local_thickness,
    mean_ligament_diameter,
    planar_mean_diameter,
    planar_thickness_stack,
)


def _brute_local_thickness(a, sp):
    """Direct definition: max over solid centres c of 2 dt(c) for voxels p with |p - c| < dt(c)."""
    sp = np.asarray(sp, float)
    dt = ndi.distance_transform_edt(a, sampling=sp)
    solid = np.argwhere(a)
    pos = solid * sp
    out = np.zeros(a.shape)
    for c, pc in zip(solid, pos):
        r = dt[tuple(c)]
        inside = np.sqrt(((pos - pc) ** 2).sum(1)) < r * (1 - 1e-9)
        idx = tuple(solid[inside].T)
        out[idx] = np.maximum(out[idx], 2 * r)
    return out


def _random_structure(shape, sigma, seed):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.standard_normal(shape), sigma) > 0


@pytest.mark.parametrize("sp", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.3, 0.7, 1.1)])
def test_edt_matches_scipy(sp):
    a = _random_structure((13, 17, 15), 2, 0)
    np.testing.assert_allclose(edt_nm(a, sp), ndi.distance_transform_edt(a, sampling=sp), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        edt_nm(a[4], sp[1:]), ndi.distance_transform_edt(a[4], sampling=sp[1:]), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("sp", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.3, 0.7, 1.1)])
def test_local_thickness_matches_brute_force_definition(sp):
    a = _random_structure((12, 16, 14), 2, 1)
    lt = local_thickness(a, sp)
    assert lt.dtype == np.float32
    np.testing.assert_allclose(lt, _brute_local_thickness(a, sp), rtol=1e-6, atol=1e-5)
    assert np.all(lt[~a] == 0)
    # 2D
    np.testing.assert_allclose(local_thickness(a[5], sp[1:]), _brute_local_thickness(a[5], sp[1:]), rtol=1e-6)


def test_against_porespy_isotropic():
    ps = pytest.importorskip("porespy")
    a = _random_structure((40, 40, 40), 2.5, 2)
    lt = local_thickness(a)
    ref = 2.0 * ps.filters.local_thickness(a)  # porespy labels radii, restricted to integer radii
    # porespy's integer-radius balls are a subset of our continuous-radius balls -> ours is never smaller
    assert np.all(lt[a] >= ref[a] - 1e-5)
    # ... and binning radii down to integers costs < 1 voxel of diameter on average
    diff = lt[a].mean() - ref[a].mean()
    assert 0.0 <= diff < 1.5
    assert np.all(ref[~a] == 0)


@pytest.mark.parametrize("t", [3, 4, 7, 8])
@pytest.mark.parametrize("h", [1.0, 2.5])
def test_slab(t, h):
    a = np.zeros((t + 6, 9, 10), np.uint8)
    a[3 : 3 + t] = 1
    lt = local_thickness(a, (h, 0.7, 0.7))
    expect = (t + (t % 2)) * h  # voxel-centre convention: t (even) or t + 1 (odd) slice thicknesses
    np.testing.assert_allclose(lt[a == 1], expect, rtol=1e-6)
    assert mean_ligament_diameter(a, (h, 0.7, 0.7)) == pytest.approx(expect, rel=1e-6)


@pytest.mark.parametrize("R", [4.0, 6.5, 9.0])
def test_cylinder_and_disc(R):
    n = 2 * int(R) + 7  # odd: the axis passes through a voxel centre
    zz, yy = np.mgrid[:n, :n] - (n - 1) / 2
    disc = zz**2 + yy**2 <= R**2
    a = np.repeat(disc[:, :, None], 12, axis=2)  # cylinder along x
    lt = local_thickness(a)
    # digitised radius R: nearest pore centre is between R and R + 1 from the axis -> 2R .. 2R + 2
    assert np.all(lt[a] >= 2 * R - 1e-5) and np.all(lt[a] <= 2 * R + 2 + 1e-5)
    np.testing.assert_allclose(local_thickness(disc), lt[:, :, 5])  # 2D cross-section == 3D of a cylinder
    # anisotropic: cylinder along z of an circle of radius R nm, sampled with hx = hy = 0.5
    zz, yy = (np.mgrid[: 2 * n + 1, : 2 * n + 1] - n) * 0.5
    disc_fine = zz**2 + yy**2 <= R**2
    lt_f = local_thickness(np.repeat(disc_fine[None], 5, axis=0), (3.0, 0.5, 0.5))
    assert np.all(lt_f[:, disc_fine] >= 2 * R - 1e-5) and np.all(lt_f[:, disc_fine] <= 2 * R + 1 + 1e-5)


def test_sphere():
    R = 7.0
    n = 21
    g = np.mgrid[:n, :n, :n] - (n - 1) / 2
    a = (g**2).sum(0) <= R**2
    lt = local_thickness(a)
    assert np.all(lt[a] >= 2 * R - 1e-5) and np.all(lt[a] <= 2 * R + 2)


def test_planar_stack_equals_slicewise():
    a = _random_structure((5, 20, 24), 2, 3)
    st = planar_thickness_stack(a, (1.5, 1.0))
    for k in range(5):
        np.testing.assert_array_equal(st[k], local_thickness(a[k], (1.5, 1.0)))
    m = planar_mean_diameter(a, (1.5, 1.0))
    assert m == pytest.approx(st[a].astype(np.float64).mean(), rel=1e-6)


def test_degenerate_inputs():
    with pytest.raises(FibsynthError):
        local_thickness(np.ones((4, 4, 4), np.uint8))
    with pytest.raises(FibsynthError):
        local_thickness(np.zeros((4, 4, 4, 4), np.uint8))
    with pytest.raises(FibsynthError):
        local_thickness(np.zeros((4, 4, 4), np.uint8), (1.0, -1.0, 1.0))
    assert np.isnan(mean_ligament_diameter(np.zeros((4, 5, 6), np.uint8)))
    np.testing.assert_array_equal(local_thickness(np.zeros((4, 5), np.uint8)), 0)
