"""Fast SE projection of open pores (issue 17, item 4): a flat face gives the bulk SE yield, a slot shows edge
brightening and a dark bottom, and on a small open-pore stack the projection follows the Monte Carlo in-lens SE
stack (the full-size fidelity is benchmarks/se_fastpath.py's)."""

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.fastsim.se_projection import project_se

Y = (1.0, 0.25, 0.0)  # (delta_1, delta_2, eta_cone) given: no Monte Carlo in the geometric tests


def test_flat_face_gives_the_bulk_yield_and_nothing_through_empty_space():
    vol = np.ones((6, 8, 8), np.uint8)
    img, rec = project_se(vol, (4.0, 4.0, 4.0), 2.0, solid="gold", yields=Y)
    assert img.shape == (6, 8, 8) and np.allclose(img, 1.25, rtol=1e-4)
    assert rec["delta_1"] == 1.0 and rec["view"] == "straight"
    empty = np.zeros((4, 8, 8), np.uint8)
    assert (project_se(empty, (4.0, 4.0, 4.0), 2.0, yields=Y)[0] == 0).all()
    with pytest.raises(FibsynthError) as e:
        project_se(vol, (4.0, 4.0, 4.0), 2.0, yields=Y, view="cosine")
    assert e.value.param == "view"


def test_in_lens_bse_share_is_in_the_image_and_scale_multiplies_the_se_terms():
    """The BSE share w eta_cone P_open is part of the image (it was dropped before 2026-11-29), and ``scale``
    multiplies only the SE terms: a flat face gives scale (delta_1 + delta_2) + w eta_cone."""
    vol = np.ones((6, 8, 8), np.uint8)
    y = (1.0, 0.25, 0.04)
    img = project_se(vol, (4.0, 4.0, 4.0), 2.0, solid="gold", yields=y)[0]
    assert np.allclose(img, 1.29, rtol=1e-4)
    img2 = project_se(vol, (4.0, 4.0, 4.0), 2.0, solid="gold", yields=y, scale=1.5, bse_weight=2.0)[0]
    assert np.allclose(img2, 1.5 * 1.25 + 2.0 * 0.04, rtol=1e-4)
    with pytest.raises(FibsynthError) as e:
        project_se(vol, (4.0, 4.0, 4.0), 2.0, yields=y, scale=0.0)
    assert e.value.param == "scale"


def test_slot_edge_brightening_and_dark_bottom():
    """A 2-voxel open slot along y in gold, 20 nm deep: the face next to its edges is brighter than the face far
    away (the cloud meets the wall), and the beam that falls into the slot sees a darker bottom (few SE fly out;
    counting every SE that leaves a wall, it is brighter)."""
    vol = np.ones((30, 8, 24), np.uint8)
    vol[:10, :, 11:13] = 0
    img = project_se(vol, (2.0, 2.0, 2.0), 2.0, solid="gold", yields=Y)[0][0]
    far, edge, inside = img[:, 2].mean(), img[:, 10].mean(), img[:, 11:13].mean()
    assert edge > 1.1 * far
    assert inside < far
    every = project_se(vol, (2.0, 2.0, 2.0), 2.0, solid="gold", yields=Y, view="all")[0][0]
    assert every[:, 11:13].mean() > inside


def test_projection_follows_the_monte_carlo_in_lens_stack():
    from fibsynth.config import VoxelSize
    from fibsynth.pipeline.products import make_structure
    from fibsynth.physics.montecarlo.detectors import SignalDetector
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.stack import simulate_stack

    vol = make_structure((12, 16, 16), (4.0, 4.0, 4.0), solid_fraction=0.3, ligament_nm=30.0, seed=3).data
    vol = vol.astype(np.uint8)
    s = StackSettings(beam=Beam(energy_kev=2.0), electrons_per_pixel=30, seed=1,
                      geometry=StackGeometry(solid="gold", pore="vacuum", backing="repeat"),
                      signal=SignalDetector(kind="inlens"))
    mc = simulate_stack(vol, VoxelSize(x=4, y=4, z=4), s, slices=(0, 4), progress=False)["eta"]
    img, rec = project_se(vol, (4.0, 4.0, 4.0), 2.0, solid="gold", slices=(0, 4), electrons=1500)
    r = np.corrcoef(mc.ravel(), img.ravel())[0, 1]
    hit = np.corrcoef(mc.ravel(), (img > 0).ravel())[0, 1]
    assert r > 0.75 and r > hit + 0.05, (r, hit)
    assert 0.6 < img.mean() / mc.mean() < 1.5


def test_components_sum_to_the_image_and_leave_it_unchanged():
    """``components``: SE1, SE2 and the in-lens BSE share add up to the image (the SE translator's inputs), with
    the first-hit depth; the image is the same with or without them."""
    vol = np.ones((8, 8, 8), np.uint8)
    vol[:3, 1:7, 2:5] = 0  # a 3-slice-deep open pore, long in y (the beam's tilt)
    y = (1.0, 0.25, 0.04)
    img = project_se(vol, (4.0, 4.0, 4.0), 2.0, solid="gold", yields=y, slices=(0, 2))[0]
    img2, rec = project_se(vol, (4.0, 4.0, 4.0), 2.0, solid="gold", yields=y, slices=(0, 2), components=True)
    c = rec["components"]
    assert np.array_equal(img, img2) and c.shape == (2, 4, 8, 8)
    assert np.allclose(c[:, :3].sum(axis=1), img, atol=1e-6)
    assert c[0, 3, 3, 6] == 0.0  # solid at the face: hit at depth 0
    assert c[0, 3, 2, 3] == 12.0  # down the pore: its bottom, 3 slices (12 nm) below the face
    assert (c[0, 3][vol[0] == 1] == 0).all() and c[0, 3].max() == 12.0


def test_blur_over_the_slices_it_reads_equals_the_full_depth_blur_bit_for_bit():
    """project_se builds and blurs the surface density only down to the deepest first-solid cell plus the Gaussian's
    reach (session 17: ~10 % of its time); the values it reads must be those of the blur over the full depth."""
    from scipy import ndimage

    from fibsynth.fastsim.projection import ray_cells
    from fibsynth.fastsim.se_projection import _hits, surface_density
    from fibsynth.physics.backscatter import kanaya_okayama_range_nm
    from fibsynth.physics.montecarlo.secondary import pore_view_factors

    rng = np.random.default_rng(4)
    # thick enough (40 slices of 10 nm) that the truncation cuts the density well above the stack's end
    vol = (ndimage.gaussian_filter(rng.random((40, 16, 16)), 1.5) > 0.5).astype(np.uint8)
    vz, e, spread, spread1 = (10.0, 4.0, 4.0), 2.0, 0.5, 0.2
    img, rec = project_se(vol, vz, e, solid="silicon", yields=Y, spread=spread, spread_se1=spread1, bse_weight=0.0)
    r_ko = kanaya_okayama_range_nm("silicon", e)
    sig, sig1 = tuple(spread * r_ko / v for v in vz), tuple(spread1 * r_ko / v for v in vz)
    nz, ny, nx = vol.shape
    depth = int(min(nz + 4 * sig[0] + 2, nz + 64))
    cells = ray_cells(nz, vz[0], vz[1], 38.0)
    flat = np.zeros((depth, 8, 8), np.float32)
    flat[0] = 1.0
    mode = ("constant", "wrap", "wrap")
    b2 = float(ndimage.gaussian_filter(flat, sig, mode=mode)[0, 0, 0])
    b1 = float(ndimage.gaussian_filter(flat, sig1, mode=mode)[0, 0, 0])
    hz, hy, hc = (np.empty((ny, nx), np.int64) for _ in range(3))
    for k in range(nz):  # the reference: density and views over the full depth, as before the truncation
        gv = pore_view_factors(vol, k, vz, np.array([0, 1], np.int64), 0, True)
        sd = surface_density(vol, k, depth, gv)
        blur1, blur2 = ndimage.gaussian_filter(sd, sig1, mode=mode), ndimage.gaussian_filter(sd, sig, mode=mode)
        _hits(vol, k, cells[:, 0].astype(np.int64), cells[:, 1].astype(np.int64), hz, hy, hc)
        hit = hz >= 0
        zi, yi = np.where(hit, hz - k, 0), np.where(hit, hy, 0)
        xi = np.broadcast_to(np.arange(nx), (ny, nx))
        ref = np.where(hit, Y[0] * blur1[zi, yi, xi] / b1 + Y[1] * blur2[zi, yi, xi] / b2, 0.0).astype(np.float32)
        assert np.array_equal(img[k], ref), k
