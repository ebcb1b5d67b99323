"""Leveled-wave structures: field vs brute force, solid fraction, ligament size (porespy as an
independent local thickness), chunk-independence, seeds, isotropy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.structure import LeveledWave, leveled_wave, lwm_config, to_dask
import importlib

lwm_mod = importlib.import_module("fibsynth.structure.leveled_wave")
from fibsynth.structure.leveled_wave import X_PERIOD_WAVELENGTHS, evaluate_field, sample_waves


def test_field_equals_direct_sum_of_cosines_on_anisotropic_grid():
    cfg = lwm_config((9, 11, 13), (3.0, 1.5, 1.5), 0.3, 12.0, waves=300, seed=5)
    m = LeveledWave(cfg)
    f = m.field()
    z, y, x = np.meshgrid(
        (np.arange(9) + 0.5) * 3.0, (np.arange(11) + 0.5) * 1.5, (np.arange(13) + 0.5) * 1.5, indexing="ij"
    )
    ref = np.zeros(z.shape)
    for qz, qy, qx, ph in m.waves:
        ref += np.cos(qz * z + qy * y + qx * x + ph)
    ref *= math.sqrt(2.0 / len(m.waves))
    assert np.abs(f - ref).max() < 2e-5


def test_waves_have_exact_wave_number_uniform_directions_and_quantised_qx():
    q0 = 0.7
    w = sample_waves(20000, q0, np.random.default_rng(0))
    assert np.allclose(np.linalg.norm(w[:, :3], axis=1), q0, rtol=1e-12)
    c = w[:, 2] / (q0 / X_PERIOD_WAVELENGTHS)
    assert np.allclose(c, np.rint(c), atol=1e-9)
    u = w[:, :3] / q0
    # uniform on the sphere: each component uniform on [-1, 1] (mean 0, variance 1/3), phases uniform
    assert np.abs(u.mean(axis=0)).max() < 0.02
    assert np.allclose((u**2).mean(axis=0), 1 / 3, atol=0.01)
    for k in range(3):
        hist, _ = np.histogram(u[:, k], bins=10, range=(-1, 1))
        assert np.abs(hist / len(u) - 0.1).max() < 0.012
    assert abs(w[:, 3].mean() - math.pi) < 0.05 and w[:, 3].min() >= 0 and w[:, 3].max() < 2 * math.pi


def test_field_is_standardised_like_a_gaussian():
    f = evaluate_field(*_model_field_args((48, 48, 48), 8.0))
    assert abs(float(f.mean())) < 0.05
    assert abs(float(f.std()) - 1.0) < 0.05


def _model_field_args(shape, lig):
    m = LeveledWave(lwm_config(shape, 1.0, 0.3, lig, seed=2))
    return m.waves, m.q0, m.config.voxel_size, tuple(slice(0, n) for n in shape)


@pytest.mark.parametrize("phi", [0.2, 0.35, 0.5])
@pytest.mark.parametrize("shape", [(64, 64, 64), (80, 72, 96)])
def test_solid_fraction_within_001(phi, shape):
    s = leveled_wave(shape, 1.0, phi, 9.0, seed=3)
    assert s.dtype == np.uint8 and set(np.unique(s)) <= {0, 1}
    assert abs(s.mean() - phi) <= 0.01


def test_solid_fraction_with_subsampled_quantile(monkeypatch):
    """Force the sub-lattice quantile (stride > 1), as used for large volumes."""
    monkeypatch.setattr(lwm_mod, "QUANTILE_MAX_SAMPLES", 20_000)
    s, m = leveled_wave((96, 96, 96), 1.0, 0.25, 8.0, seed=4, return_model=True)
    assert m.level["quantile_stride"] >= 3
    assert abs(s.mean() - 0.25) <= 0.01


def test_level_correction_moves_threshold_towards_realised_quantile():
    s, m = leveled_wave((64, 64, 64), 1.0, 0.3, 10.0, waves=50, seed=1, return_model=True)
    f = m.field()
    xi_g = m.level["xi_gaussian"]
    assert abs(xi_g - math.sqrt(2) * 0.3708071585) < 1e-6  # sqrt(2) erfinv(0.4)
    plain = float((f > xi_g).mean())
    assert abs(s.mean() - 0.3) <= abs(plain - 0.3) + 1e-3


def _porespy_mean_diameter(solid):
    ps = pytest.importorskip("porespy")
    lt = ps.filters.local_thickness(solid.astype(bool), method="legacy", sizes=80, smooth=False)
    return 2.0 * float(lt[solid.astype(bool)].mean())


@pytest.mark.parametrize("phi,lig,n", [(0.2, 8.0, 64), (0.35, 10.0, 80), (0.5, 12.0, 96)])
def test_ligament_diameter_within_10_percent_porespy(phi, lig, n):
    """Independent local thickness: porespy (legacy method, 80 fractional radii, no smoothing)."""
    s = leveled_wave((n, n, n), 1.0, phi, lig, seed=7)
    d = _porespy_mean_diameter(s)
    assert abs(d / lig - 1.0) <= 0.10, d


@pytest.mark.parametrize("phi", [0.2, 0.3, 0.45])
def test_ligament_diameter_within_10_percent_nm_units(phi):
    """Physical units: 4 nm voxels, 36 nm ligaments (9 voxels); fibsynth local thickness in nm."""
    from fibsynth.metrics.thickness import mean_ligament_diameter

    s = leveled_wave((72, 72, 72), 4.0, phi, 36.0, seed=11)
    d = mean_ligament_diameter(s, (4.0, 4.0, 4.0))
    assert abs(d / 36.0 - 1.0) <= 0.10, d


def test_same_seed_same_volume_other_seed_differs():
    a = leveled_wave((32, 40, 48), (2.0, 1.0, 1.0), 0.3, 8.0, seed=9)
    b = leveled_wave((32, 40, 48), (2.0, 1.0, 1.0), 0.3, 8.0, seed=9)
    c = leveled_wave((32, 40, 48), (2.0, 1.0, 1.0), 0.3, 8.0, seed=10)
    assert np.array_equal(a, b)
    assert (a != c).mean() > 0.2


def test_chunked_is_bitwise_identical_to_in_memory():
    cfg = lwm_config((37, 45, 53), (2.5, 1.5, 1.5), 0.33, 11.0, seed=12)
    m = LeveledWave(cfg)
    full = m.solid()
    for chunks in [(7, 11, 13), (37, 1, 53), (5, 45, 8)]:
        arr = to_dask(m, chunks)
        assert arr.chunks[0][0] == chunks[0]
        import dask

        with dask.config.set(scheduler="synchronous"):
            assert np.array_equal(arr.compute(), full)
    # the field too, on an odd region
    reg = (slice(3, 30), slice(17, 18), slice(4, 51))
    assert np.array_equal(m.field(reg), m.field()[reg])


def test_dask_graph_carries_only_the_wave_table():
    m = LeveledWave(lwm_config((64, 64, 64), 1.0, 0.3, 8.0, waves=200, seed=1))
    arr = to_dask(m, (16, 16, 16))
    graph = dict(arr.__dask_graph__())
    spec_keys = [k for k in graph if isinstance(k, str) and "spec" in k]
    assert len(spec_keys) == 1 and len(graph) == 1 + 64  # one spec + one task per block
    ((waves, q0, voxel, thr),) = graph[spec_keys[0]]
    assert waves.shape == (200, 4) and np.array_equal(waves, m.waves)


def test_isotropy_of_the_generated_structure():
    """e_TPCF (paper Eq. 7, fibsynth.metrics) of a 96^3 structure with small ligaments is small, and a
    structure stretched 1.5x along z (anisotropic) scores clearly higher."""
    from scipy.ndimage import zoom

    from fibsynth.metrics.isotropy import isotropy_report

    s = leveled_wave((96, 96, 96), 1.0, 0.3, 6.0, seed=0)
    e = isotropy_report(s, (1.0, 1.0, 1.0))["e_tpcf"]
    stretched = zoom(s[:64], (1.5, 1, 1), order=0)
    e_str = isotropy_report(stretched, (1.0, 1.0, 1.0))["e_tpcf"]
    assert e < 0.08
    assert e_str > 2 * e


def test_anisotropic_voxels_sample_one_physical_field():
    """Voxel (2, 1, 1) nm: coarse slice k has its centre at z = 2k + 1 nm, midway between the 1 nm grid's
    centres 2k + 0.5 and 2k + 1.5 nm. The same waves evaluated on both grids must agree there up to the
    curvature error of averaging, |f''| (0.5 nm)^2 / 2, where f'' along z has standard deviation
    q0^2 / sqrt(5) for the normalised field (bound used: 3 q0^2 / 8, about 6.7 sigma)."""
    from fibsynth.structure.leveled_wave import _raw

    m = LeveledWave(lwm_config((10, 12, 14), (2.0, 1.0, 1.0), 0.3, 8.0, seed=4))
    f_coarse = m.field()
    fine = _raw(m.waves, m.q0, VoxelSize(x=1.0, y=1.0, z=1.0), (slice(0, 20), slice(0, 12), slice(0, 14)), None)
    fine = fine * np.float32(math.sqrt(2 / len(m.waves)))
    mid = 0.5 * (fine[0::2] + fine[1::2])
    assert np.abs(mid - f_coarse).max() < m.q0**2 / 8 * 3  # 3 sigma of the sum's curvature
    assert np.abs(fine[0::2] - f_coarse).max() > 10 * np.abs(mid - f_coarse).max()  # the test can see a shift


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(solid_fraction=1.0), "solid_fraction"),
        (dict(solid_fraction=0.0), "solid_fraction"),
        (dict(ligament_nm=1.5), "ligament_nm"),
        (dict(ligament_nm=-3.0), "ligament_nm"),
        (dict(waves=0), "waves"),
        (dict(shape=(0, 4, 4)), "shape"),
    ],
)
def test_bad_values_are_one_line_errors(kwargs, match):
    base = dict(shape=(8, 8, 8), voxel_size=1.0, solid_fraction=0.3, ligament_nm=4.0, waves=10, seed=0)
    base.update(kwargs)
    with pytest.raises(FibsynthError, match=match) as ei:
        leveled_wave(**base)
    assert "\n" not in str(ei.value)


def _net_shear(w, weight):
    """Least-squares in-plane displacement per unit z of the plane waves, each weighted by a function of its
    in-plane wave number: (sum w k k^T)^-1 sum w k q_z, k = (q_y, q_x) (the apparent shear of z-slices)."""
    k, qz = w[:, 1:3], w[:, 0]
    c = weight(np.hypot(k[:, 0], k[:, 1]))
    return np.linalg.solve((k * c[:, None]).T @ k, (k * c[:, None]).T @ qz)


def test_mirrored_wave_set_is_uniform_and_has_no_net_shear():
    """Every wave of a mirrored set is still uniform on the sphere with |q| = q0 and quantised q_x, but the set's
    off-diagonal moments vanish for any weights of |q_z|, |q_y|, |q_x|: no net shear for slices along any axis.
    A set of independent directions has one of order 1/sqrt(N)."""
    q0 = 0.7
    w = sample_waves(20000, q0, np.random.default_rng(0), "mirrored")
    assert w.shape == (20000, 4)
    assert np.allclose(np.linalg.norm(w[:, :3], axis=1), q0, rtol=1e-12)
    c = w[:, 2] / (q0 / X_PERIOD_WAVELENGTHS)
    assert np.allclose(c, np.rint(c), atol=1e-9)
    u = w[:, :3] / q0
    assert np.allclose((u**2).mean(axis=0), 1 / 3, atol=0.01)
    for k in range(3):
        hist, _ = np.histogram(u[:, k], bins=10, range=(-1, 1))
        assert np.abs(hist / len(u) - 0.1).max() < 0.012
    assert abs(w[:, 3].mean() - math.pi) < 0.05 and len(np.unique(w[:, 3])) == len(w)  # own phase per wave
    weights = (lambda k: np.ones_like(k), lambda k: np.exp(-((k / q0 - 0.5) ** 2)), lambda k: (k / q0) ** 3)
    for weight in weights:
        for axes in ((0, 1, 2), (1, 0, 2), (2, 1, 0)):  # slices along z, y and x
            assert np.abs(_net_shear(w[:, list(axes) + [3]], weight)).max() < 1e-12
    ind = sample_waves(1000, q0, np.random.default_rng(1))
    assert np.abs(_net_shear(ind, weights[0])).max() > 1e-3  # seed 1: 0.03 / 0.02 per unit z


def test_mirrored_structure_keeps_fraction_ligament_and_isotropy():
    from fibsynth.metrics.isotropy import isotropy_report

    s, m = leveled_wave((96, 96, 96), 1.0, 0.3, 6.0, waves=4000, seed=0, wave_set="mirrored", return_model=True)
    assert abs(float(s.mean()) - 0.3) < 0.001
    assert m.parameters()["wave_set"] == "mirrored" and m.waves.shape == (4000, 4)
    assert isotropy_report(s, (1.0, 1.0, 1.0))["e_tpcf"] < 0.08
    region = (slice(10, 27), slice(31, 50), slice(3, 90))  # a block computed alone is the same region
    assert np.array_equal(m.solid(region), s[region])


def test_mirrored_wave_set_needs_a_multiple_of_four_waves():
    with pytest.raises(FibsynthError, match="multiple of 4") as ei:
        leveled_wave((8, 8, 8), 1.0, 0.3, 4.0, waves=10, wave_set="mirrored")
    assert ei.value.param == "waves" and "\n" not in str(ei.value)
    with pytest.raises(FibsynthError):
        leveled_wave((8, 8, 8), 1.0, 0.3, 4.0, waves=12, wave_set="rotated")
