"""Stack-kernel speed-ups are exact: range rejection changes no tally, free-flight skipping gives the same images
(issue 16). Tiny volumes; the speed itself is measured by ``benchmarks/bench_mc.py --stack``."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.physics.montecarlo import kernel
from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
from fibsynth.physics.montecarlo.setup import stack_materials, slice_tables
from fibsynth.physics.montecarlo.stack import block_levels, distance_map, simulate_slice

VOX = (4.0, 4.0, 4.0)


def _structure(shape=(20, 10, 10), seed=0):
    """Random blobs (smoothed noise), so there are thick and thin regions of both materials."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    f = ndimage.uniform_filter(rng.random(shape), size=4, mode="wrap")
    return (f > np.quantile(f, 0.6)).astype(np.uint8)


def _settings(n, **geo):
    return StackSettings(beam=Beam(energy_kev=2.0), electrons_per_pixel=n, seed=11,
                         geometry=StackGeometry(**{"solid": "gold", "pore": "epoxy", **geo}))


def _same(a, b):
    return (np.array_equal(a["all"], b["all"]) and np.array_equal(a["detected"], b["detected"])
            and np.array_equal(a["energy_hist"], b["energy_hist"])
            and np.array_equal(a["angle_hist"], b["angle_hist"]))


@pytest.mark.parametrize("geo", [{"backing": "pore"}, {"backing": "solid"}, {"backing": "repeat"},
                                 {"backing": "Si"}])
def test_range_rejection_changes_no_tally(geo):
    """Each electron has its own random stream, and a rejected electron could never reach the face: the
    tallies with and without rejection are identical, electron by electron."""
    vol = _structure()
    s = _settings(40, **geo)
    on = simulate_slice(vol, VOX, 3, s, range_rejection=True)
    off = simulate_slice(vol, VOX, 3, s, range_rejection=False)
    assert on["all"].sum() > 0
    assert _same(on, off)


@pytest.mark.parametrize("solid,pore", [("gold", "gold"), ("gold", "C")])
def test_range_rejection_in_a_column_like_bulk_and_film(solid, pore):
    """A 1 x 1 column (laterally uniform: bulk gold, a gold layer on carbon): identical with and without."""
    vol = np.array([1, 1, 0, 0, 0], np.uint8).reshape(5, 1, 1)
    s = StackSettings(beam=Beam(energy_kev=2.0, incidence_deg=0.0), electrons_per_pixel=3000, seed=5,
                      geometry=StackGeometry(solid=solid, pore=pore, backing="pore"))
    on = simulate_slice(vol, (2.0, 1e6, 1e6), 0, s, range_rejection=True)
    off = simulate_slice(vol, (2.0, 1e6, 1e6), 0, s, range_rejection=False)
    assert 0.2 < on["all"].sum() / 3000 < 0.6
    assert _same(on, off)


def test_max_range_bounds_every_material():
    """``max_range`` is at least each material's own range at every grid energy, and the path in any mix."""
    s = _settings(1, backing="Si")
    mats, _, _ = stack_materials(s)
    tab = slice_tables(s, mats)
    rstar = kernel.max_range(tab.rng, True)
    assert rstar[0] == 0.0
    assert np.all(rstar[None, :] >= tab.rng - 1e-9)
    # a mix: the path through half the grid in one material and the rest in another is also bounded
    g = tab.rng.shape[1] // 2
    for a in range(len(mats)):
        for b in range(len(mats)):
            mix = tab.rng[a, g] + (tab.rng[b, -1] - tab.rng[b, g])
            assert mix <= rstar[-1] + 1e-9
    assert np.all(kernel.max_range(tab.rng, False) > 1e299)


def _brute_distance(vol, backing, repeat, cap):
    nz, ny, nx = vol.shape
    deep = cap + 2

    def mat(z, y, x):
        y %= ny
        x %= nx
        if z < 0:
            z = 0  # above the volume: the kernel's face clamp covers it
        if z < nz:
            return vol[z, y, x]
        return vol[nz - 1, y, x] if repeat else backing

    out = np.zeros((nz + deep, ny, nx), np.uint8)
    for z in range(nz + deep):
        for y in range(ny):
            for x in range(nx):
                m = mat(z, y, x)
                r = 0
                while r < cap:
                    q = r + 1
                    ok = all(mat(z + a, y + b, x + c) == m for a in range(-q, q + 1) for b in range(-q, q + 1)
                             for c in range(-q, q + 1))
                    if not ok:
                        break
                    r = q
                out[z, y, x] = r
    return out


@pytest.mark.parametrize("backing,repeat", [(0, False), (1, False), (0, True)])
def test_distance_map_is_the_same_material_radius(backing, repeat):
    vol = _structure((5, 4, 6), seed=3)
    got = distance_map(vol, backing, repeat, cap=3)
    assert np.array_equal(got, _brute_distance(vol, backing, repeat, 3))


def test_skip_tracking_gives_the_same_image():
    """Free-flight skipping against voxel-by-voxel tracking: per-pixel counts agree within their binomial
    standard errors (chi-square of the paired differences) and the totals within 3 sigma."""
    vol = _structure((24, 12, 12), seed=1)
    s = _settings(60, backing="pore")
    a = simulate_slice(vol, VOX, 2, s, tracking="voxel")
    b = simulate_slice(vol, VOX, 2, s, tracking="skip")
    n = 60
    pa, pb = a["all"] / n, b["all"] / n
    pm = np.clip((pa + pb) / 2, 1.0 / n, 1 - 1.0 / n)
    var = 2 * pm * (1 - pm) / n  # as if independent: conservative for paired, common-random-number runs
    chi2 = float(np.sum((pa - pb) ** 2 / var))
    assert chi2 < pa.size + 4 * np.sqrt(2 * pa.size)
    assert abs(pa.sum() - pb.sum()) <= 3 * np.sqrt(var.sum())
    assert pa.sum() > 0


def _brute_levels(vol, max_level):
    nz, ny, nx = vol.shape
    out = np.zeros(vol.shape, np.uint8)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                lev = 0
                for level in range(1, max_level + 1):
                    n = 1 << level
                    z0, y0, x0 = (z // n) * n, (y // n) * n, (x // n) * n
                    if z0 + n > nz or y0 + n > ny or x0 + n > nx:
                        break
                    if np.all(vol[z0:z0 + n, y0:y0 + n, x0:x0 + n] == vol[z, y, x]):
                        lev = level
                    else:
                        break
                out[z, y, x] = lev
    return out


def test_block_levels_are_the_largest_uniform_aligned_blocks():
    """``block_levels``: material in the low bits, and the largest level whose aligned block lies inside the
    volume and holds one material (shapes that are not multiples of the block size leave partial blocks)."""
    vol = _structure((11, 9, 13), seed=4)
    vol[:8, :8, :8] = 1  # one uniform 8-block
    for max_level in (1, 3):
        code = block_levels(vol, max_level)
        assert np.array_equal(code & kernel.MAT_MASK, vol)
        assert np.array_equal(code >> kernel.LEVEL_SHIFT, _brute_levels(vol, max_level))
    assert (block_levels(vol, 3) >> kernel.LEVEL_SHIFT).max() == 3
    with pytest.raises(FibsynthError) as exc:
        block_levels(np.full((2, 2, 2), 16, np.uint8))
    assert str(exc.value).startswith("vol: ")


def _chi2_same(a, b, n):
    pa, pb = a["all"] / n, b["all"] / n
    pm = np.clip((pa + pb) / 2, 1.0 / n, 1 - 1.0 / n)
    var = 2 * pm * (1 - pm) / n  # as if independent: conservative for paired, common-random-number runs
    chi2 = float(np.sum((pa - pb) ** 2 / var))
    return chi2 < pa.size + 4 * np.sqrt(2 * pa.size) and abs(pa.sum() - pb.sum()) <= 3 * np.sqrt(var.sum())


@pytest.mark.parametrize("geo,k", [({"backing": "pore"}, 3), ({"backing": "repeat"}, 5), ({"backing": "Si"}, 0),
                                   ({"pore": "vacuum", "backing": "solid"}, 3)])
def test_block_tracking_gives_the_same_image(geo, k):
    """Block tracking (stop only on the faces of uniform blocks) against voxel-by-voxel tracking: per-pixel
    counts agree (chi-square) and the totals within 3 sigma; faces that cut blocks (k = 3, 5), partial blocks
    at the edges (12 x 10 face, 22 slices), every backing, and open pores (vacuum flights leave and enter
    blocks). The same random streams and the same material boundaries: in practice the tallies come out
    identical."""
    vol = _structure((22, 12, 10), seed=2)
    vol[8:16, :8, :8] = 0  # a large pore: level-3 blocks
    s = _settings(60, **geo)
    a = simulate_slice(vol, VOX, k, s, tracking="voxel")
    b = simulate_slice(vol, VOX, k, s, tracking="block")
    assert a["all"].sum() > 0
    assert _chi2_same(a, b, 60)


def test_block_comparison_has_power():
    """The same comparison sees a wrong block map: claiming mixed 4-voxel blocks uniform lets electrons fly
    through gold as if it were epoxy, and the image changes far beyond its errors."""
    vol = _structure((20, 12, 12), seed=2)
    s = _settings(60, backing="pore")
    a = simulate_slice(vol, VOX, 2, s, tracking="voxel")
    wrong = vol | np.uint8(2 << kernel.LEVEL_SHIFT)
    b = simulate_slice(vol, VOX, 2, s, tracking="block", blocks=wrong)
    assert not _chi2_same(a, b, 60)


def test_bad_tracking_names_the_parameter():
    with pytest.raises(FibsynthError) as exc:
        simulate_slice(_structure((4, 3, 3)), VOX, 0, _settings(1), tracking="woodcock")
    assert str(exc.value).startswith("tracking: ")


def test_the_rejection_check_is_live():
    """The bit-identity above is not vacuous: with a bound 50x too short the same electrons give fewer BSE,
    with the true bound exactly the same as with none."""
    s = _settings(1, backing="pore")
    mats, backing, repeat = stack_materials(s)
    tabs = slice_tables(s, mats).as_tuple()
    rng = tabs[3]
    vol = np.ones((4, 1, 1), np.uint8)  # gold over epoxy
    nodist = np.zeros((1, 1, 1), np.uint8)
    # no vacuum: empty layers (the depth below the face); passed so that transport_one is the variant that
    # test_open_pores compiles too (each numba variant of the transport costs ~10 s to compile)
    layers = kernel.matter_layers(vol, tabs[6], backing, repeat)
    assert layers[0].size == 0

    def escapes(rstar):
        n = 0
        for k in range(400):
            s0, s1 = kernel.seed_state(7, 0, 0, k)
            esc, *_ = kernel.transport_one(0.5, 0.5, 0.0, 0.0, 0.0, 1.0, 2.0, np.uint64(s0), np.uint64(s1), vol, 4.0,
                                           1e6, 1e6, 0, backing,
                                           repeat, nodist, 0.0, rstar, *tabs, *layers)
            n += bool(esc)
        return n

    none = escapes(kernel.max_range(rng, False))
    assert escapes(kernel.max_range(rng, True)) == none
    assert escapes(kernel.max_range(rng, True) * 0.02) < none


def test_stack_block_tracking_is_the_default_and_gives_the_same_stack():
    """``simulate_stack`` computes the block codes once and tracks by blocks by default; the stack equals the
    voxel-tracked one within errors (chi-square per slice), and a bad ``tracking`` is refused naming it."""
    from fibsynth.config import VoxelSize
    from fibsynth.physics.montecarlo.stack import simulate_stack

    vol = _structure((16, 8, 8), seed=5)
    s = _settings(40, backing="pore")
    vox = VoxelSize(z=4.0, y=4.0, x=4.0)
    a = simulate_stack(vol, vox, s, slices=(0, 3), progress=False)
    b = simulate_stack(vol, vox, s, slices=(0, 3), progress=False, tracking="voxel")
    assert a["eta"].sum() > 0
    for i in range(3):
        ra = {"all": np.rint(a["eta"][i] * 40)}
        rb = {"all": np.rint(b["eta"][i] * 40)}
        assert _chi2_same(ra, rb, 40)
    with pytest.raises(FibsynthError) as exc:
        simulate_stack(vol, vox, s, slices=(0, 1), progress=False, tracking="woodcock")
    assert str(exc.value).startswith("tracking: ")


def test_in_place_table_helpers_equal_the_row_versions():
    """The transport indexes table rows in place (no row views: a view costs an atomic reference-count pair in
    the loop); ``interp_m``/``interp_mj``/``range_to_u_m`` must give exactly what the row functions give on the
    real range, free-path and channel tables of a two-material stack."""
    mats, _, _ = stack_materials(_settings(1))
    t = slice_tables(_settings(1), mats)
    rng = np.random.default_rng(5)
    ng = t.rng.shape[1]
    for m in range(t.rng.shape[0]):
        for u in rng.uniform(1.0, ng - 2.0, 200):
            assert kernel.interp_m(t.rng, m, u) == kernel.interp_row(t.rng[m], u)
            assert kernel.interp_m(t.lam_inv, m, u) == kernel.interp_row(t.lam_inv[m], u)
            for j in range(int(t.nel[m])):
                assert kernel.interp_mj(t.cum, m, j, u) == kernel.interp_row(t.cum[m, j], u)
            # a residual range somewhere below the range at u (the transport's use)
            r = kernel.interp_row(t.rng[m], u) * rng.uniform(0.05, 0.999)
            if r > t.rng[m, 0]:
                assert kernel.range_to_u_m(t.rng, t.rinvd, m, u, r) == kernel.range_to_u(t.rng[m], t.rinvd[m], u, r)


# ------------------------------------------------------------------ mcspeed6: sampling and table layout


def _exp_draws(n, seed):
    import numba

    @numba.njit(cache=False)
    def draw(n, s0, s1):
        out = np.empty(n)
        for i in range(n):
            out[i], s0, s1 = kernel.next_exp(s0, s1)
        return out

    s0, s1 = kernel.seed_state(seed, 1, 2, 3)
    return draw(n, np.uint64(s0), np.uint64(s1))


def test_ziggurat_free_paths_are_unit_exponential():
    """``next_exp`` (the free-path sampler, ziggurat) against the unit exponential: binned chi-square over 0-8
    (fine bins) plus the tail beyond the ziggurat's base layer (sampled by its own branch), and the mean. A wrong
    layer table (e.g. the sampler scaled by 2 %) fails it."""
    n = 1_000_000
    x = _exp_draws(n, 3)
    edges = np.concatenate([np.linspace(0.0, 8.0, 161), [10.0, np.inf]])

    def chi2(v):
        c, _ = np.histogram(v, edges)
        e = n * (np.exp(-edges[:-1]) - np.exp(-edges[1:]))
        return float(((c - e) ** 2 / e).sum())

    dof = len(edges) - 2
    assert chi2(x) < dof + 5 * np.sqrt(2 * dof)
    assert abs(x.mean() - 1.0) < 5.0 / np.sqrt(n)
    tail = int((x > kernel._ZR).sum())
    assert abs(tail - n * np.exp(-kernel._ZR)) < 5 * np.sqrt(n * np.exp(-kernel._ZR))
    assert chi2(1.02 * x) > dof + 5 * np.sqrt(2 * dof)  # power: a 2 % scale error fails the same bound


@pytest.mark.parametrize("geo", [{}, {"solid": "Al2O3:3.95", "pore": "Ni"}])
def test_kernel_layout_keeps_every_distribution(geo):
    """``Tables.as_tuple()`` (what the kernel reads) against the ``Tables`` fields: mean free path = 1 / lam_inv,
    channel probabilities the same per channel after the reordering (most probable first), the angular rows and
    channel flags moved with their channel, the angular rows in float32."""
    from fibsynth.physics.montecarlo.tables import channel_order

    st = _settings(1, **geo)
    mats, _, _ = stack_materials(st)
    t = slice_tables(st, mats)
    lam, cumg, muq, prut, acoef, eloss = (t.as_tuple()[k] for k in (2, 7, 11, 12, 13, 14))
    assert t.as_tuple() is t.as_tuple()  # built once
    solid = t.lam_inv > 0
    np.testing.assert_allclose(lam[solid] * t.lam_inv[solid], 1.0, rtol=1e-14)
    order = channel_order(t.cum, t.nel)
    assert muq.dtype == np.float32
    for m in range(len(mats)):
        ne = int(t.nel[m])
        p = np.diff(np.concatenate([np.zeros((1, t.cum.shape[2])), t.cum[m, :ne]]), axis=0)
        pk = np.diff(np.concatenate([np.zeros((t.cum.shape[2], 1)), cumg[m, :, :ne]], axis=1), axis=1).T
        np.testing.assert_allclose(pk, p[order[m, :ne]], atol=1e-12)
        assert np.all(cumg[m, :, ne - 1] == 1.0)
        assert sorted(order[m, :ne]) == list(range(ne))
        means = pk.mean(axis=1)
        assert np.all(np.diff(means) <= 1e-15)  # decreasing probability
        for k in range(ne):
            j = order[m, k]
            np.testing.assert_array_equal(muq[m, k], t.muq[m, j].astype(np.float32))
            assert eloss[m, k] == t.eloss[m, j]
            np.testing.assert_array_equal(prut[m, k], t.prut[m, j])
            np.testing.assert_array_equal(acoef[m, k], t.acoef[m, j])


def test_the_kernel_profiler_instruments_the_current_kernel():
    """``benchmarks/mc_kernel_profile.py`` patches the kernel's source at fixed places; every place must still
    exist (a kernel edit that moves one would otherwise break the profiler silently). Text only: not compiled."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "mc_kernel_profile.py"
    spec = importlib.util.spec_from_file_location("mc_kernel_profile", path)
    prof = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prof)
    src = prof.instrumented_source(prof.KERNEL.read_text())
    compile(src, "kernel_profiled.py", "exec")
    assert src.count("rdtsc()") >= 8 and "cache=True" not in src
