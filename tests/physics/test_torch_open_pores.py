"""Open pores (vacuum) on the torch backend (issue 17 item 1, issue 16): against the numba kernel on tiny open-pore
volumes (per-pixel z scores and the total eta, two geometries x two energies; different random streams, so the
comparison is statistical), and against invariants (energy kept across a vacuum gap, free-standing films transmit,
a hole through the stack over vacuum is black, endless channels terminate, every electron ends exactly once).
Benchmark-size numbers: benchmarks/torch_open_pores.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fibsynth.errors import FibsynthError  # noqa: E402
from fibsynth.physics.montecarlo import backend_torch as bt  # noqa: E402
from fibsynth.physics.montecarlo.engine import film_eta  # noqa: E402
from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings  # noqa: E402
from fibsynth.physics.montecarlo.stack import simulate_slice  # noqa: E402

CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                       reason="no CUDA device visible to torch on this machine"))
VOX = (4.0, 4.0, 4.0)
KW = dict(threads=1, batch=3000)  # small batches: the compaction / refill runs with vacuum state too


def _settings(n, energy=2.0, incidence=38.0, seed=5, **geo):
    return StackSettings(beam=Beam(energy_kev=energy, incidence_deg=incidence), electrons_per_pixel=n, seed=seed,
                         geometry=StackGeometry(**{"solid": "gold", "pore": "vacuum", **geo}))


def _trench():
    vol = np.ones((12, 8, 8), np.uint8)
    vol[:9, 2:6, :] = 0  # an open trench across x, 4 voxels wide in y (the tilt direction), 8 deep below slice 1
    return vol


def _porous():
    from fibsynth.pipeline.products import make_structure

    return make_structure((14, 8, 8), VOX, solid_fraction=0.4, ligament_nm=20.0, seed=3).data


def _agreement(a, b, n):
    """Sum of per-pixel z^2, its number of pixels, and the z of the total eta (binomial errors)."""
    pa, pb = a / n, b / n
    var = (pa * (1 - pa) + pb * (1 - pb)) / n
    ok = var > 0
    chi2 = float((((pb - pa)[ok]) ** 2 / var[ok]).sum())
    ea, eb = pa.mean(), pb.mean()
    ze = (eb - ea) / math.sqrt((ea * (1 - ea) + eb * (1 - eb)) / (n * a.size))
    return chi2, int(ok.sum()), ze


def _bound(npix):
    return npix + 4.0 * math.sqrt(2.0 * npix) + 4.0  # chi^2 with npix degrees of freedom: ~4 sigma above its mean


def _invariants(res, n):
    assert res["all"].sum() + res["absorbed"] + res["transmitted"] + res.get("lost", 0) == n
    assert res["energy_hist"].sum() == res["all"].sum() == res["angle_hist"].sum()
    assert np.all(res["detected"] <= res["all"])
    if "energy_increases" in res:
        assert res["energy_increases"] == 0
        assert np.all(res["terminations_per_electron"] == 1)


@pytest.mark.parametrize("geometry,energy,k,geo", [
    ("trench", 1.0, 1, dict(backing="solid")),
    ("trench", 3.0, 1, dict(backing="solid")),
    ("porous", 1.0, 2, dict(solid="silicon", backing="repeat")),
    ("porous", 2.0, 2, dict(solid="silicon", backing="repeat")),
])
def test_open_pore_slice_matches_numba(geometry, energy, k, geo):
    """The same open-pore slice on both backends (own random streams): every pixel within its binomial error
    (sum of z^2 over the pixels inside chi^2's ~4 sigma), the total eta and the detected share within 4 sigma."""
    vol = _trench() if geometry == "trench" else _porous()
    n = 100
    s = _settings(n, energy, **geo)
    a = simulate_slice(vol, VOX, k, s)
    b = bt.simulate_slice_torch(vol, VOX, k, s.model_copy(update={"seed": 6}), diagnostics=True, **KW)
    _invariants(b, vol[0].size * n)
    assert b["vacuum_events"] > 0  # the flights through the pores are part of the transport
    chi2, npix, ze = _agreement(a["all"], b["all"], n)
    assert chi2 < _bound(npix), (chi2, npix)
    assert abs(ze) < 4.0, ze
    _, _, zd = _agreement(a["detected"], b["detected"], n)
    assert abs(zd) < 4.0, zd


def test_the_comparison_has_power():
    """The same comparison (1 keV trench) fails both its criteria when the torch run fills the trench with epoxy
    (16 nm of epoxy on the way to the wall): the test above can fail."""
    vol = _trench()
    n = 100
    a = simulate_slice(vol, VOX, 1, _settings(n, 1.0, backing="solid"))
    b = bt.simulate_slice_torch(vol, VOX, 1, _settings(n, 1.0, seed=6, backing="solid", pore="epoxy"), **KW)
    chi2, npix, ze = _agreement(a["all"], b["all"], n)
    assert chi2 > _bound(npix) and abs(ze) > 4.0, (chi2, npix, ze)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_no_energy_loss_across_a_vacuum_gap(device):
    """Gold under a 100 nm vacuum gap at normal incidence = gold with its surface as the face: the beam crosses the
    gap and the BSE come back up through it without losing energy (eta and the energy spectrum agree; both torch)."""
    n = 6000
    s = _settings(1, energy=3.0, incidence=0.0, backing="solid")
    gap = np.zeros((26, 1, 1), np.uint8)
    gap[25] = 1
    lat = (4.0, 1e6, 1e6)  # laterally uniform: one wide column
    a = bt.simulate_slice_torch(gap, lat, 0, s.model_copy(update={"electrons_per_pixel": n}), device=device,
                                diagnostics=True, **KW)
    b = bt.simulate_slice_torch(np.ones((1, 1, 1), np.uint8), lat, 0,
                                s.model_copy(update={"electrons_per_pixel": n, "seed": 9}), device=device, **KW)
    _invariants(a, n)
    assert a["lost"] == 0 and a["transmitted"] == 0
    assert a["vacuum_events"] >= 25 * n  # every electron crossed the 25 empty voxels on its way in
    pa, pb = a["all"].sum() / n, b["all"].sum() / n
    assert abs(pa - pb) < 4.0 * math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n)
    ha, hb = a["energy_hist"].reshape(10, 10).sum(1), b["energy_hist"].reshape(10, 10).sum(1)
    m = (ha + hb) > 0
    assert float((((ha - hb)[m]) ** 2 / (ha + hb)[m]).sum()) < 30.0  # chi^2 of <= 10 bins


def test_free_standing_film_matches_numba_and_transmits():
    """5 nm gold on vacuum at 5 keV (``film_eta_torch``): eta as the kernel's; most electrons fly out below."""
    n = 10000
    a = film_eta("Au", "vacuum", 5.0, 5.0, n, seed=3)
    b = bt.film_eta_torch("Au", "vacuum", 5.0, 5.0, n, seed=4, diagnostics=True, **KW)
    p = b.parameters
    assert b.backscattered + p["absorbed"] + p["transmitted"] + p["lost"] == n
    assert p["energy_increases"] == 0 and np.all(p["terminations_per_electron"] == 1)
    assert p["transmitted"] > 0.8 * n
    assert abs(b.eta - a.eta) < 4.0 * math.hypot(a.eta_std, b.eta_std), (a.eta, b.eta)


def test_through_hole_over_vacuum_is_dark_and_endless_channels_end():
    """A hole through every slice over a vacuum backing: its pixel is exactly 0 (the beam flies out below,
    ``transmitted``). With ``repeat`` the channel is endless: the flights are given up (``lost``), as in the
    kernel, and the run finishes."""
    vol = np.ones((3, 3, 3), np.uint8)
    vol[:, 1, 1] = 0
    vox = (4.0, 8.0, 8.0)
    n = 200
    r = bt.simulate_slice_torch(vol, vox, 0, _settings(n, incidence=0.0, backing="pore"), diagnostics=True, **KW)
    _invariants(r, 9 * n)
    assert r["all"][1, 1] == 0 and r["all"].sum() > 0 and r["transmitted"] >= n
    r = bt.simulate_slice_torch(vol, vox, 0, _settings(n, incidence=0.0, backing="repeat"), diagnostics=True, **KW)
    _invariants(r, 9 * n)
    assert r["all"][1, 1] == 0 and r["lost"] >= n and r["transmitted"] == 0


def test_unreached_vacuum_changes_nothing():
    """An all-gold slice with a solid backing: declaring the pores vacuum (never reached) gives the same tallies,
    electron for electron, as epoxy pores -- the vacuum steps draw no random numbers and change no live value."""
    vol = np.ones((4, 4, 4), np.uint8)
    a = bt.simulate_slice_torch(vol, VOX, 1, _settings(100, backing="solid"), **KW)
    b = bt.simulate_slice_torch(vol, VOX, 1, _settings(100, backing="solid", pore="epoxy"), **KW)
    assert "vacuum_events" in a and a["vacuum_events"] == 0 and "vacuum_events" not in b
    for key in ("all", "detected", "energy_hist", "angle_hist"):
        assert np.array_equal(a[key], b[key]), key
    assert (a["absorbed"], a["events"]) == (b["absorbed"], b["events"])


def test_secondary_electrons_stay_on_numba():
    from fibsynth.physics.montecarlo.detectors import SignalDetector

    s = _settings(1).model_copy(update={"signal": SignalDetector(kind="inlens")})
    with pytest.raises(FibsynthError) as exc:
        bt.simulate_slice_torch(np.ones((2, 2, 2), np.uint8), VOX, 0, s, **KW)
    assert exc.value.param == "backend" and "numba" in str(exc.value)
