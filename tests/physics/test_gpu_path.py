"""The vectorised PyTorch transport (``montecarlo.backend_torch``, formerly ``montecarlo.gpu``) against the numba engine and against invariants.

Both paths use the same tables but different random streams, so they are compared statistically: differences
in units of the combined binomial standard error (|z| < 4). The torch runs use small batches so that the
compaction / refill of the live set is exercised. Everything runs on the CPU here; where torch sees a CUDA
device the device-parametrised tests also run there. torch is pinned to one CPU thread per call (see
``gpu._threads``: numba's OpenMP layer changes torch's thread count, and oversubscribed OpenMP regions on a
loaded machine are very slow).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fibsynth.errors import FibsynthError  # noqa: E402
from fibsynth.physics import elastic  # noqa: E402
from fibsynth.physics.materials import get_material  # noqa: E402
from fibsynth.physics.montecarlo import backend_torch as gpu  # noqa: E402
from fibsynth.physics.montecarlo.engine import Detector, bulk_eta, film_eta  # noqa: E402
from fibsynth.physics.montecarlo.stack import StackSettings, simulate_slice  # noqa: E402
from fibsynth.physics.montecarlo.tables import build_tables  # noqa: E402

CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                       reason="no CUDA device visible to torch on this machine"))
DEVICES = ["cpu", CUDA]
KW = dict(threads=1, batch=4096)


def _z(a, b):
    return (a.eta - b.eta) / math.hypot(a.eta_std, b.eta_std)


def _check_invariants(res):
    p = res.parameters
    assert res.backscattered + p["absorbed"] + p["transmitted"] == res.electrons
    assert res.energy_hist.sum() == res.backscattered == res.angle_hist.sum()
    assert 0 <= res.detected <= res.backscattered
    if "energy_increases" in p:
        assert p["energy_increases"] == 0
        assert np.all(p["terminations_per_electron"] == 1)


@pytest.mark.parametrize("material,energy", [("Au", 2.0), ("C:2.26", 2.0), ("Au", 10.0), ("C:2.26", 10.0)])
def test_bulk_eta_matches_numba(material, energy):
    n = 20000
    ref = bulk_eta(material, energy, n, seed=11)
    res = gpu.bulk_eta_torch(material, energy, n, seed=12, diagnostics=True, **KW)
    _check_invariants(res)
    assert res.parameters["device"] == "cpu" and res.parameters["dtype"] == "float32"
    assert abs(_z(res, ref)) < 4, (res.eta, ref.eta)
    # the BSE energy spectrum agrees too (coarse bins: E/E0 in tenths)
    h1 = res.energy_hist.reshape(10, 10).sum(1)
    h2 = ref.energy_hist.reshape(10, 10).sum(1)
    m = (h1 + h2) > 0
    chi2 = float((((h1 - h2)[m]) ** 2 / (h1 + h2)[m]).sum())
    assert chi2 < 35, (chi2, h1, h2)  # 10 dof: p ~ 1e-4


@pytest.mark.parametrize("device", DEVICES)
def test_bulk_gold_on_device_and_float64(device):
    ref = bulk_eta("Au", 2.0, 20000, seed=21)
    for dtype in (torch.float32, torch.float64):
        res = gpu.bulk_eta_torch("Au", 2.0, 20000, seed=22, device=device, dtype=dtype, diagnostics=True, **KW)
        assert res.parameters["device"].startswith(device)
        _check_invariants(res)
        assert abs(_z(res, ref)) < 4, (dtype, res.eta, ref.eta)


def test_oblique_incidence_matches_numba():
    ref = bulk_eta("Au", 2.0, 20000, seed=31, incidence_deg=60.0)
    res = gpu.bulk_eta_torch("Au", 2.0, 20000, seed=32, incidence_deg=60.0, **KW)
    _check_invariants(res)
    assert abs(_z(res, ref)) < 4, (res.eta, ref.eta)
    assert res.eta > gpu.bulk_eta_torch("Au", 2.0, 20000, seed=33, **KW).eta + 0.03  # eta rises with tilt


def test_film_matches_numba():
    """20 nm epoxy on gold at 2 keV: between the two bulk values, and equal to the numba film."""
    n = 20000
    ref = film_eta("epoxy", "Au", 20.0, 2.0, n, seed=41)
    res = gpu.film_eta_torch("epoxy", "Au", 20.0, 2.0, n, seed=42, diagnostics=True, **KW)
    _check_invariants(res)
    assert abs(_z(res, ref)) < 4, (res.eta, ref.eta)
    au = gpu.bulk_eta_torch("Au", 2.0, n, seed=43, **KW)
    ep = gpu.bulk_eta_torch("epoxy", 2.0, n, seed=44, **KW)
    assert ep.eta + 0.02 < res.eta < au.eta - 0.02


def test_detector_model_matches_numba():
    """Energy threshold and polar acceptance reduce the detected yield as in the numba kernel."""
    n = 20000
    for det in (Detector(e_min_kev=1.5), Detector(theta_min_deg=20.0, theta_max_deg=50.0)):
        ref = bulk_eta("Au", 2.0, n, seed=51, detector=det)
        res = gpu.bulk_eta_torch("Au", 2.0, n, seed=52, detector=det, **KW)
        _check_invariants(res)
        f1, f2 = res.detected_fraction, ref.detected_fraction
        assert abs(f1 - f2) < 4 * math.hypot(res.detected_std, ref.detected_std), (det, f1, f2)
        assert res.detected < 0.8 * res.backscattered  # the filter removes a real share
        assert abs(_z(res, ref)) < 4  # and leaves the BSE count itself alone
    # the threshold is a cut of the same spectrum: detected(E >= 1.5) = histogram above bin 75
    res = gpu.bulk_eta_torch("Au", 2.0, n, seed=53, detector=Detector(e_min_kev=1.5), **KW)
    assert res.detected == res.energy_hist[75:].sum()


def _slice_volume():
    """16 x 16 face: gold for x < 8 at every depth; epoxy elsewhere, with a gold block 2 slices behind the face
    under y >= 8 (shine-through region)."""
    vol = np.zeros((10, 16, 16), np.uint8)
    vol[:, :, :8] = 1
    vol[3:, 8:, 8:] = 1
    return vol


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k,backing,fwhm", [(0, "pore", 0.0), (1, "repeat", 3.0)])
def test_slice_matches_numba(device, k, backing, fwhm):
    vol = _slice_volume()
    npp = 48
    s = StackSettings(energy_kev=2.0, electrons_per_pixel=npp, incidence_deg=38.0, seed=5, backing=backing,
                      probe_fwhm_nm=fwhm)
    ref = simulate_slice(vol, (2.0, 2.0, 2.0), k, s)
    res = gpu.simulate_slice_torch(vol, (2.0, 2.0, 2.0), k, s, device=device, diagnostics=True, **KW)
    assert res["all"].shape == (16, 16) and res["detected"].shape == (16, 16)
    assert res["launched"] == 16 * 16 * npp
    assert res["all"].sum() + res["absorbed"] + res["transmitted"] == res["launched"]
    assert res["energy_increases"] == 0 and np.all(res["terminations_per_electron"] == 1)
    assert res["energy_hist"].sum() == res["all"].sum() == res["angle_hist"].sum()
    gold = np.zeros((16, 16), bool)
    gold[:, :8] = True
    buried = np.zeros((16, 16), bool)
    buried[8:, 8:] = True
    means = {}
    for name, m in (("gold", gold), ("epoxy", ~gold & ~buried), ("buried", buried)):
        n = m.sum() * npp
        a, b = res["all"][m].sum() / n, ref["all"][m].sum() / n
        sig = math.sqrt(a * (1 - a) / n + b * (1 - b) / n)
        assert abs(a - b) < 4 * sig, (name, a, b, sig)
        means[name] = a
    # the comparison has power: gold stands far above both epoxy regions, and gold 2-3 slices (4-6 nm) behind the
    # face brightens the epoxy over it (shine-through; ~0.037 at 2 keV, 38 degrees, with both engines)
    assert means["gold"] > means["buried"] + 0.1 and means["buried"] > means["epoxy"], means
    # per pixel: the two maps agree within binomial noise (chi-square over all pixels with nonzero variance)
    p = (res["all"] + ref["all"]) / (2 * npp)
    var = 2 * npp * p * (1 - p)
    ok = var > 0
    chi2 = float((((res["all"] - ref["all"])[ok]) ** 2 / var[ok]).sum())
    dof = int(ok.sum())
    assert chi2 < dof + 5 * math.sqrt(2 * dof), (chi2, dof)


def test_energy_loss_is_the_csda_range_inversion():
    """E after a path s solves R(E') = R(E) - s on the same piecewise-linear range table as the kernel."""
    mats = [get_material("epoxy"), get_material("Au")]
    tabs = build_tables(mats)
    tt = gpu.TorchTables(tabs, torch.device("cpu"), torch.float64)
    rng = np.random.default_rng(0)
    n = 4000
    mat = rng.integers(0, 2, n)
    e = np.exp(rng.uniform(np.log(0.1), np.log(30.0), n))
    u = (np.log(e) - tabs.ln_e0) * tabs.inv_dln
    grid = np.arange(tabs.rng.shape[1])
    r0 = np.array([np.interp(uu, grid, tabs.rng[m]) for uu, m in zip(u, mat)])
    r = r0 * rng.uniform(0.01, 1.0, n)
    want = np.array([np.interp(rr, tabs.rng[m], grid) for rr, m in zip(r, mat)])
    got = tt.invert_range(torch.as_tensor(mat), torch.as_tensor(r)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    back = tt.interp(tt.rng, torch.as_tensor(mat), torch.as_tensor(got)).numpy()
    np.testing.assert_allclose(back, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("model", ["mott", "rutherford"])
def test_scatter_angle_distribution_and_rotation(model):
    """cos(theta) between old and new directions follows elastic.sample_cos_theta (KS test), the new direction
    is a unit vector, and the azimuth about the old direction is uniform."""
    from scipy import stats

    mats = [get_material("Au")]
    # elastic channel only: the reference is the elastic model's own sampler
    tt = gpu.TorchTables(build_tables(mats, model, inelastic=False), torch.device("cpu"), torch.float32)
    n = 40000
    e = 2.0
    g = torch.Generator().manual_seed(3)
    rr = torch.rand((5, n), generator=g)
    d = torch.randn((3, n), generator=g, dtype=torch.float64)
    d[:, : n // 4] = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)[:, None]  # exercise the polar branch
    d = (d / d.norm(dim=0)).float()
    mat = torch.zeros(n, dtype=torch.int64)
    u = torch.full((n,), (math.log(e) - tt.ln_e0) * tt.inv_dln)
    nx, ny, nz, _ = gpu.scatter(tt, mat, u, torch.full((n,), e), d[0], d[1], d[2], rr)
    new = torch.stack([nx, ny, nz]).double()
    np.testing.assert_allclose(new.norm(dim=0).numpy(), 1.0, atol=1e-6)
    ct = (new * d.double()).sum(0).numpy()
    ref = elastic.sample_cos_theta(model, 79, e, np.random.default_rng(1), n)
    assert stats.ks_2samp(ct, ref).pvalue > 1e-3
    # azimuth of the new direction about the old one, against a fixed perpendicular reference
    ref_axis = np.where(np.abs(d[0].numpy()) < 0.9, 1.0, 0.0)
    a = np.stack([ref_axis, 1.0 - ref_axis, np.zeros(n)])
    dn = d.double().numpy()
    e1 = a - (a * dn).sum(0) * dn
    e1 /= np.linalg.norm(e1, axis=0)
    e2 = np.cross(dn.T, e1.T).T
    perp = new.numpy() - ct * dn
    keep = np.linalg.norm(perp, axis=0) > 1e-3
    phi = np.arctan2((perp * e2).sum(0), (perp * e1).sum(0))[keep]
    assert stats.kstest(phi, stats.uniform(loc=-np.pi, scale=2 * np.pi).cdf).pvalue > 1e-3


def test_batch_bounds_memory_and_all_electrons_are_followed():
    """Many more electrons than the batch: every electron id terminates exactly once, eta unbiased."""
    ref = bulk_eta("Au", 2.0, 20000, seed=61)
    res = gpu.bulk_eta_torch("Au", 2.0, 6000, seed=62, batch=300, threads=1, diagnostics=True)
    _check_invariants(res)
    assert abs(_z(res, ref)) < 4


def test_reproducible_and_seed_dependent():
    a = gpu.bulk_eta_torch("Au", 2.0, 3000, seed=7, **KW)
    b = gpu.bulk_eta_torch("Au", 2.0, 3000, seed=7, **KW)
    c = gpu.bulk_eta_torch("Au", 2.0, 3000, seed=8, **KW)
    assert np.array_equal(a.energy_hist, b.energy_hist)
    assert not np.array_equal(a.energy_hist, c.energy_hist)


def test_device_selection():
    assert gpu.pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert gpu.pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(FibsynthError, match="no CUDA device"):
            gpu.pick_device("cuda")


def test_slice_reuses_uploaded_volume_and_tables():
    """A stack loop may upload the volume and tables once: same result, bit for bit, as from numpy input."""
    from fibsynth.physics.montecarlo.setup import stack_materials as _materials

    vol = _slice_volume()
    s = StackSettings(energy_kev=2.0, electrons_per_pixel=4, seed=3)
    a = gpu.simulate_slice_torch(vol, (2.0, 2.0, 2.0), 2, s, threads=1)
    tt = gpu.TorchTables(build_tables(_materials(s)[0]), torch.device("cpu"), torch.float32)
    b = gpu.simulate_slice_torch(torch.as_tensor(vol), (2.0, 2.0, 2.0), 2, s, tables=tt, threads=1)
    assert np.array_equal(a["all"], b["all"]) and np.array_equal(a["energy_hist"], b["energy_hist"])
    assert a["all"].sum() > 0


def test_table_reads_stay_inside_the_tables_for_undefined_coordinates(monkeypatch):
    """A NaN or infinite energy-grid coordinate must never turn into an index outside a table: NaN -> int64 is
    INT64_MIN on the CPU and device-defined on CUDA, where an H200 run aborted with a device-side index assert.
    With the check mode on, every such read is verified; an index outside its table is one error naming it."""
    from fibsynth.physics.montecarlo.setup import layer_setup

    monkeypatch.setattr(gpu, "_CHECK", True)
    tt = gpu.TorchTables(layer_setup([], "Au", 2.0, 10, seed=0).tables, torch.device("cpu"), torch.float32)
    u = torch.tensor([float("nan"), float("inf"), -float("inf"), -1e30, 1e30, 3.5, -2.0])
    row = torch.zeros(u.shape, dtype=torch.int64)
    v = tt.interp(tt.lam, row, u)  # indices checked inside; NaN/inf values may come out, reads stay in the table
    assert v.shape == u.shape and torch.isfinite(v[5])
    xi = torch.tensor([0.0, 1e-12, 0.5, 0.999999, float("nan"), 0.3, 0.7])
    mu = gpu.sample_mu_table(tt, row, u, torch.full(u.shape, 0.5), xi)
    assert mu.shape == u.shape and 0.0 <= float(mu[5]) <= 1.0
    with pytest.raises(RuntimeError, match="outside interp"):
        gpu._check_index(torch.tensor([0, tt.lam.numel()]), tt.lam.numel() - 1, "interp", torch.zeros(2))
