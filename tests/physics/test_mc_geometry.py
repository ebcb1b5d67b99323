"""Films and voxel volumes: limits, Kanaya-Okayama scaling, voxel path vs bulk / film, shine-through."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.config import VoxelSize
from fibsynth.physics.materials import get_material
from fibsynth.physics.montecarlo.engine import bulk_eta, film_eta
from fibsynth.physics.montecarlo.stack import StackSettings, simulate_slice, simulate_stack
from fibsynth.physics.stopping import kanaya_okayama_range_nm


def _z(a, b):
    return abs(a.eta - b.eta) / np.hypot(a.eta_std, b.eta_std)


def test_film_limits():
    sub = bulk_eta("Au", 3.0, 6000, seed=1)
    assert _z(film_eta("C:2.26", "Au", 0.0, 3.0, 6000, seed=2), sub) < 4
    thick = film_eta("C:2.26", "Au", 5000.0, 3.0, 6000, seed=3)  # far beyond the range in carbon
    assert _z(thick, bulk_eta("C:2.26", 3.0, 6000, seed=4)) < 4


def test_film_half_thickness_scales_with_kanaya_okayama_range():
    """eta(t) of carbon on gold falls monotonically from gold's to carbon's value; the thickness at which it has
    dropped halfway is a roughly fixed fraction of the KO range in carbon across energies."""
    c = get_material("C:2.26")
    fractions = np.array([0.0, 0.04, 0.08, 0.12, 0.18, 0.26, 0.4, 1.0])
    halves = []
    for e in (2.0, 5.0, 10.0):
        r_ko = kanaya_okayama_range_nm(c, e)
        res = [film_eta(c, "Au", f * r_ko, e, 3000, seed=5, stream=j) for j, f in enumerate(fractions)]
        eta = np.array([r.eta for r in res])
        std = np.array([r.eta_std for r in res])
        assert np.all(np.diff(eta) <= 3 * np.hypot(std[1:], std[:-1])), (e, eta)
        assert eta[0] - eta[-1] > 0.25
        half = 0.5 * (eta[0] + eta[-1])
        k = int(np.argmax(eta < half))
        f_half = fractions[k - 1] + (half - eta[k - 1]) / (eta[k] - eta[k - 1]) * (fractions[k] - fractions[k - 1])
        halves.append(f_half)
    halves = np.array(halves)
    assert np.all((halves > 0.03) & (halves < 0.5)), halves
    assert halves.max() / halves.min() < 1.6, halves


def _settings(**kw):
    base = dict(energy_kev=2.0, electrons_per_pixel=100, incidence_deg=0.0, seed=7)
    base.update(kw)
    return StackSettings(**base)


def test_voxel_homogeneous_reproduces_bulk_with_boundary_stops():
    """A random two-phase volume whose phases are the same gold: every phase boundary stops the flight and
    resamples it (memorylessness), which must not change eta."""
    rng = np.random.default_rng(0)
    vol = (rng.random((6, 8, 8)) < 0.5).astype(np.uint8)
    s = _settings(solid="gold", pore="Au:19.32", backing="solid", electrons_per_pixel=150, incidence_deg=38.0)
    res = simulate_slice(vol, (1.0, 1.0, 1.0), 1, s)
    n = 150 * 64
    eta = res["all"].sum() / n
    ref = bulk_eta("Au", 2.0, 20000, seed=8, incidence_deg=38.0)
    assert abs(eta - ref.eta) < 4 * np.hypot(np.sqrt(eta * (1 - eta) / n), ref.eta_std), (eta, ref.eta)


@pytest.mark.parametrize("incidence", [0.0, 38.0])
def test_voxel_flat_film_reproduces_film(incidence):
    vol = np.zeros((8, 4, 4), np.uint8)
    vol[3:] = 1  # epoxy slices 0..2 (3 x 4 nm) in front of gold; face at slice 1 -> 8 nm of epoxy
    s = _settings(solid="gold", pore="C:2.26", backing="solid", electrons_per_pixel=600, incidence_deg=incidence)
    res = simulate_slice(vol, (4.0, 3.0, 3.0), 1, s)
    n = 600 * 16
    eta = res["all"].sum() / n
    ref = film_eta("C:2.26", "Au", 8.0, 2.0, 20000, seed=9, incidence_deg=incidence)
    assert abs(eta - ref.eta) < 4 * np.hypot(np.sqrt(eta * (1 - eta) / n), ref.eta_std), (eta, ref.eta)


def test_shine_through_of_buried_gold():
    """Epoxy face; a gold block 1-3 slices (5-15 nm) behind it under the left half of the face, deep epoxy on the
    right: the left pixels must be brighter, from the transport alone."""
    vol = np.zeros((12, 8, 16), np.uint8)
    vol[3:6, :, :8] = 1  # gold in slices 3..5 under x < 8
    s = _settings(energy_kev=3.0, electrons_per_pixel=200, incidence_deg=38.0)
    res = simulate_slice(vol, (5.0, 5.0, 5.0), 2, s)  # face at slice 2: gold 1 slice behind
    p = res["detected"] / 200
    left, right = p[:, 1:7].mean(), p[:, 9:15].mean()
    se = np.sqrt(left * (1 - left) / (200 * 48)) + np.sqrt(right * (1 - right) / (200 * 48))
    assert left > right + 5 * se, (left, right)
    # pixels over deep epoxy (no gold in front of 8 nm-ish lateral distance) are dark, like bulk epoxy
    assert right < 0.15


def test_stack_multiprocess_dask_equals_in_process(tmp_path):
    from dask.distributed import Client, LocalCluster

    rng = np.random.default_rng(3)
    vol = (rng.random((3, 6, 6)) < 0.4).astype(np.uint8)
    s = _settings(electrons_per_pixel=20, probe_fwhm_nm=3.0)
    vox = VoxelSize.from_xy_z(4.0, 5.0)
    a = simulate_stack(vol, vox, s, workers=1, progress=False)
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        b = simulate_stack(vol, vox, s, scheduler=cluster.scheduler_address, progress=False)
    assert np.array_equal(a["eta"], b["eta"]) and np.array_equal(a["energy_hist"], b["energy_hist"])
    assert a["eta"].max() > 0


def test_stack_resume_skips_done_slices(tmp_path):
    import zarr

    rng = np.random.default_rng(4)
    vol = (rng.random((4, 5, 5)) < 0.5).astype(np.uint8)
    s = _settings(electrons_per_pixel=10)
    vox = VoxelSize.from_xy_z(4.0, 4.0)
    work = tmp_path / "w.zarr"
    full = simulate_stack(vol, vox, s, work=work, workers=1, progress=False)
    g = zarr.open_group(str(work), mode="r+")
    g["done"][:] = np.array([1, 0, 1, 0], np.uint8)
    g["eta"][0] = np.full((5, 5), 7.0, np.float32)  # a marker: slice 0 must be loaded, not recomputed
    again = simulate_stack(vol, vox, s, work=work, resume=True, workers=1, progress=False)
    assert again["simulated"] == 2
    assert np.all(again["eta"][0] == 7.0)
    assert np.array_equal(again["eta"][1:], full["eta"][1:])
    with pytest.raises(Exception, match="other settings"):
        simulate_stack(vol, vox, _settings(electrons_per_pixel=11), work=work, resume=True, workers=1, progress=False)


def test_negative_layer_thickness_is_refused():
    """A negative film thickness is a user error on both paths (it used to be dropped silently by the filter)."""
    from fibsynth.errors import FibsynthError
    from fibsynth.physics.montecarlo.engine import run_layers

    with pytest.raises(FibsynthError, match="layer thickness must be >= 0"):
        run_layers([("epoxy", -5.0)], "Au", 2.0, 10)
