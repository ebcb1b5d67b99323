"""Isotropy errors: Eq. 7/8 by hand, isotropic vs stretched structures, anisotropic voxels, transposes."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from fibsynth.errors import FibsynthError
from fibsynth.metrics.isotropy import (
    diameter_error,
    isotropy_report,
    l2_anisotropy_error,
    planar_ligament_diameters,
)


def _isotropic(n=64, sigma=2.5, seed=0):
    g = ndi.gaussian_filter(np.random.default_rng(seed).standard_normal((n, n, n)), sigma, mode="wrap")
    return g > 0.2 * g.std()


@pytest.fixture(scope="module")
def iso():
    return _isotropic()


def test_eq7_and_eq8_by_hand():
    fx, fy, fz = np.array([3.0, 4.0]), np.array([0.0, 5.0]), np.array([3.0, 0.0])
    # ||fx - fz|| = 4, ||fx|| = 5, ||fz|| = 3 -> 8/8 = 1; ||fy - fz|| = sqrt(34), ||fy|| = 5 -> 2 sqrt(34)/8
    assert l2_anisotropy_error(fx, fy, fz) == pytest.approx(0.5 * (1 + 2 * np.sqrt(34) / 8))
    assert l2_anisotropy_error(fz, fz, fz) == 0
    assert diameter_error(10.0, 12.0, 9.0) == pytest.approx(0.5 * (0.2 + 0.1))


def test_isotropic_low_and_stretched_high(iso):
    r = isotropy_report(iso, 1.0)
    stretched = ndi.zoom(iso, (1.5, 1, 1), order=0)[: iso.shape[0]]
    s = isotropy_report(stretched, 1.0)
    for k in ("e_tpcf", "e_tpcf_centered", "e_lpf", "e_diameter"):
        assert r[k] < 0.1, (k, r[k])
        assert s[k] > 2.5 * r[k] and s[k] > 0.1, (k, r[k], s[k])
    # stretching along z thickens ligaments seen in xz / yz slices only
    assert s["D_xz_nm"] > 1.1 * s["D_xy_nm"] and s["D_yz_nm"] > 1.1 * s["D_xy_nm"]
    assert r["lag_max_nm"] <= 0.25 * 64 + 1e-9


def test_anisotropic_voxels_are_handled_in_nm(iso):
    sub = iso[::2]  # every second slice: voxel (2, 1, 1) nm describes the same isotropic structure
    right = isotropy_report(sub, (2.0, 1.0, 1.0))
    wrong = isotropy_report(sub, (1.0, 1.0, 1.0))  # pretending cubic voxels = squashing z by 2
    for k in ("e_tpcf", "e_lpf", "e_diameter"):
        assert right[k] < 0.1 and wrong[k] > 3 * right[k], (k, right[k], wrong[k])
    assert right["lag_step_nm"] == 2.0


def test_layered_slabs_clearly_anisotropic():
    a = np.zeros((64, 32, 32), bool)
    for z0 in range(0, 64, 8):
        a[z0 : z0 + 3] = True
    a[:, :, 0] = False  # a pore column so that every xy slice has pore pixels
    r = isotropy_report(a, 1.0)
    assert r["e_lpf"] > 0.5 and r["e_tpcf"] > 0.2 and r["e_diameter"] > 0.5


def test_transpose_permutes_planar_diameters(iso):
    a = iso[:, :40, :48]
    d = planar_ligament_diameters(a, 1.0)
    t = planar_ligament_diameters(a.transpose(2, 1, 0), 1.0)  # new z = old x, new x = old z
    assert t["D_xz_nm"] == pytest.approx(d["D_xz_nm"])
    assert t["D_xy_nm"] == pytest.approx(d["D_yz_nm"])
    assert t["D_yz_nm"] == pytest.approx(d["D_xy_nm"])


def test_errors():
    with pytest.raises(FibsynthError):
        isotropy_report(np.zeros((8, 8, 8), np.uint8), 1.0)
    with pytest.raises(FibsynthError):
        isotropy_report(np.zeros((8, 8), np.uint8), 1.0)
    with pytest.raises(FibsynthError):
        isotropy_report(_isotropic(16, 1.5), (1.0, 0.0, 1.0))
