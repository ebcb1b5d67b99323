"""The per-slice precomputation behind SE emission from open-pore walls (issue 17: SE open-pore stack speed):
neighbour masks and lazily filled pore view factors must give what the full per-SE search gives."""

import numpy as np
import pytest

from fibsynth.physics.montecarlo import kernel
from fibsynth.physics.montecarlo.secondary import pore_view_factors, se_walls


def _porous(seed=3, shape=(10, 12, 12)):
    rng = np.random.default_rng(seed)
    vol = (rng.random(shape) < 0.55).astype(np.uint8)  # 1 = matter, 0 = vacuum
    vol[:, 5:7, :] = 0  # an open slot through the face
    return vol


@pytest.mark.parametrize("backing,repeat", [(1, False), (0, False), (0, True)])
def test_masked_wall_search_equals_the_full_search(backing, repeat):
    """Random points (inside the stack, below it, on voxel planes): the masked search returns the full 26-neighbour
    search's distance, and the view factor of the same nearest pore voxel (filled on first use = the eager
    ``pore_view_factors`` value)."""
    vol = _porous()
    nel = np.array([0, 1], np.int64)
    vox = (2.0, 1.5, 1.0)
    k = 2
    views, masks, dirs = se_walls(vol, k, nel, backing, repeat, "straight")
    assert (views == -1.0).all() and masks.shape == (min(128, vol.shape[0] + 2 - k), 12, 12)
    eager = pore_view_factors(vol, k, vox, nel, backing, repeat)
    rng = np.random.default_rng(0)
    pts = rng.random((4000, 3)) * np.array([14.0 * 2.0, 12 * 1.5, 12 * 1.0]) + np.array([k * 2.0, 0.0, 0.0])
    pts[:500, 0] = np.round(pts[:500, 0] / 2.0) * 2.0  # on voxel planes
    pts[500:800, 1] = np.round(pts[500:800, 1] / 1.5) * 1.5
    cap = 5.0
    n_wall = 0
    full = (views, np.zeros((0, 12, 12), np.uint32), dirs)  # no mask layers: every point takes the full search
    for z, y, x in pts:
        w0, _ = kernel.wall_distance(vol, nel, backing, repeat, x, y, z, 2.0, 1.5, 1.0, k, cap)
        w1, g1 = kernel.wall_distance(vol, nel, backing, repeat, x, y, z, 2.0, 1.5, 1.0, k, cap, (views, masks, dirs))
        w2, g2 = kernel.wall_distance(vol, nel, backing, repeat, x, y, z, 2.0, 1.5, 1.0, k, cap, full)
        assert w1 == pytest.approx(w0, abs=1e-12) and w2 == w0, (z, y, x)
        assert g1 == g2, (z, y, x)  # the same nearest pore voxel, also on voxel planes (ties)
        if w1 < cap:
            n_wall += 1
            assert 0.0 <= g1 <= 1.0
    assert n_wall > 1000
    filled = views >= 0
    assert filled.sum() > 50
    assert np.array_equal(views[filled], eager[: views.shape[0]][filled])
    # "all": no view layers, g = 1
    _, masks_a, dirs_a = se_walls(vol, k, nel, backing, repeat, "all")
    w, g = kernel.wall_distance(vol, nel, backing, repeat, 6.3, 6.1, 7.7, 2.0, 1.5, 1.0, k, cap,
                                (np.zeros((0, 12, 12)), masks_a, dirs_a))
    assert g == 1.0



@pytest.mark.parametrize("backing,repeat", [(1, False), (0, True)])
def test_two_point_wall_search_equals_two_searches(backing, repeat):
    """``se_segment``'s search of a segment's middle and end (``kernel.wall_distance2``: one look-up and one pass
    over the mask bits when both lie in one voxel) returns bit for bit what two ``wall_distance`` calls return:
    pairs in one voxel, in neighbouring voxels, on voxel planes, below the masked layers; with the neighbour masks
    and lazily filled view factors, with masks only, and without either (the full search)."""
    vol = _porous(seed=4)
    nel = np.array([0, 1], np.int64)
    vox = (2.0, 1.5, 1.0)
    k = 2
    rng = np.random.default_rng(1)
    b = rng.random((3000, 3)) * np.array([14.0 * 2.0, 12 * 1.5, 12 * 1.0]) + np.array([k * 2.0, 0.0, 0.0])
    b[:300, 0] = np.round(b[:300, 0] / 2.0) * 2.0  # on voxel planes
    b[300:500, 2] = np.round(b[300:500, 2])
    step = rng.normal(size=(3000, 3)) * np.array([0.3, 0.3, 0.3])
    step[2000:] *= 5.0  # mostly in another voxel
    m = b - step
    m[:, 1] %= 12 * 1.5  # inside the lateral range, as the transport keeps them
    m[:, 2] %= 12 * 1.0
    m[:, 0] = np.maximum(m[:, 0], k * 2.0)
    cap = 5.0
    n_same, n_wall = 0, 0
    for mode in ("straight", "all", None):
        if mode is None:
            segv = None
        else:
            segv = se_walls(vol, k, nel, backing, repeat, mode)
        for (zb, yb, xb), (zm, ym, xm) in zip(b, m):
            two = kernel.wall_distance2(vol, nel, backing, repeat, xm, ym, zm, xb, yb, zb, *vox, k, cap, segv)
            one = (kernel.wall_distance(vol, nel, backing, repeat, xm, ym, zm, *vox, k, cap, segv)
                   + kernel.wall_distance(vol, nel, backing, repeat, xb, yb, zb, *vox, k, cap, segv))
            assert two == one, (mode, zb, yb, xb, zm, ym, xm)
            if mode == "straight":
                n_wall += two[2] < cap
                n_same += all(int(p / v) == int(q / v) for p, q, v in zip((zb, yb, xb), (zm, ym, xm), vox))
    assert n_same > 1000 and n_wall > 1000


def test_dominated_neighbours_are_dropped_but_the_nearest_kept():
    """A vacuum face neighbour hides the edge and corner neighbours on its side that the full search visits after
    it; one visited before it is kept (at equal distance, a point on a voxel plane, the full search keeps the
    first: the same pore voxel and view factor)."""
    def bit(oz, oy, ox):
        return 1 << (9 * (oz + 1) + 3 * (oy + 1) + ox + 1)

    face = bit(-1, 0, 0)
    assert kernel._undominated(face | bit(-1, 0, 1) | bit(-1, 1, 1) | bit(1, 1, 1)) == face | bit(1, 1, 1)
    assert kernel._undominated(face | bit(-1, -1, 0)) == face | bit(-1, -1, 0)  # searched before the face
    assert kernel._undominated(bit(-1, -1, -1)) == bit(-1, -1, -1)


def test_se_slice_with_masks_equals_the_full_search():
    """A whole SE slice of an open-pore stack: wall masks reaching every layer vs none (every point takes the full
    search): the same BSE tallies, the same SE images up to rounding (two pore voxels at the same distance from
    a point on a voxel plane may swap when the two searches round differently)."""
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.setup import slice_beam, slice_tables, stack_materials

    vol = _porous(seed=5, shape=(8, 8, 8))
    s = StackSettings(beam=Beam(energy_kev=1.0), electrons_per_pixel=6, seed=3,
                      geometry=StackGeometry(solid="Si", pore="vacuum", backing="repeat"))
    mats, backing, repeat = stack_materials(s)
    tabs = slice_tables(s, mats).as_tuple()
    from fibsynth.physics.montecarlo.secondary import se_table

    sep = se_table(mats)
    by, bz, sx, sy, cmin, cmax = slice_beam(s)
    out = []
    for depth in (128, 0):
        # voxel_zyx: the precomputed rays, as simulate_slice_se passes them (the run_slice_se variant the suite
        # compiles anyway; float directions here compiled a second one, ~80 CPU s cold)
        views, masks, dirs = se_walls(vol, 1, tabs[6], backing, repeat, "straight", mask_depth=depth,
                                      voxel_zyx=(2.0, 2.0, 2.0))
        if depth == 0:
            masks = np.zeros((0, 8, 8), np.uint32)
        r = kernel.run_slice_se(1, 6, 3, 1.0, by, bz, sx, sy, vol, 2.0, 2.0, 2.0, backing, repeat,
                                np.zeros((1, 1, 1), np.uint8), 0.0, True, 0.0, cmin, cmax, *tabs, sep, True,
                                np.array([0.0, 0.0, -1.0, 2.0]), (views, masks, dirs))
        out.append(r)
    for i in (0, 1, 4, 5, 6):  # BSE counts and histograms: the transport is the same
        assert np.array_equal(out[0][i], out[1][i])
    for i in (2, 3, 7):  # SE sums: equal up to rounding-level ties between equidistant pore voxels
        assert np.allclose(out[0][i], out[1][i], rtol=5e-3, atol=1e-3), i  # per-pixel SE errors: ~5 %
        assert abs(out[0][i].sum() / out[1][i].sum() - 1.0) < 1e-4, i
    assert out[0][2].sum() > 0


@pytest.mark.parametrize("vox,k,backing,repeat", [((2.0, 1.5, 1.0), 2, 1, False), ((1.0, 1.0, 1.0), 0, 0, True)])
def test_precomputed_view_rays_equal_the_march(vox, k, backing, repeat):
    """``view_rays`` (the cells of each direction's half-voxel march, precomputed once per voxel size) give, from
    every pore voxel, the view factor of ``march_out``'s step-by-step march along the same directions: equal,
    not merely close (the same cells are looked up)."""
    from fibsynth.physics.montecarlo.secondary import view_directions, view_rays

    vol = _porous(seed=7, shape=(14, 12, 12))
    nel = np.array([0, 1], np.int64)
    rays = view_rays(vox)
    assert rays.dtype == np.int8 and np.abs(rays).max() == 1
    dirs = view_directions()
    n = 0
    for z in range(k, vol.shape[0]):
        for y in range(12):
            for x in range(12):
                if vol[z, y, x]:
                    continue
                a = kernel.pore_view(vol, nel, backing, repeat, k, z, y, x, dirs, *vox)
                b = kernel.pore_view(vol, nel, backing, repeat, k, z, y, x, rays, *vox)
                assert a == b, (z, y, x, a, b)
                n += a > 0
    assert n > 100
