"""One Monte Carlo, two backends: numba and torch agree for every physics option (statistically, on the CPU),
share their set-up, tables and parameter record, and the settings compose physics, beam, detector, geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fibsynth.errors import FibsynthError  # noqa: E402
from fibsynth.physics import elastic  # noqa: E402
from fibsynth.physics.materials import get_material  # noqa: E402
from fibsynth.physics.montecarlo import backend_torch  # noqa: E402
from fibsynth.physics.montecarlo.engine import bulk_eta, film_eta  # noqa: E402
from fibsynth.physics.montecarlo.settings import (  # noqa: E402
    Beam,
    Detector,
    Physics,
    StackGeometry,
    StackSettings,
)
from fibsynth.physics.montecarlo.setup import layer_setup  # noqa: E402
from fibsynth.physics.montecarlo.stack import simulate_slice  # noqa: E402
from fibsynth.physics.montecarlo.tables import build_tables  # noqa: E402

KW = dict(threads=1, batch=4096)
# every distinct physics option: four elastic models (mott = mott-pwa), binary collisions on / off, analytic
# angular sampling (elastic only, analytic models only), another cut-off
OPTIONS = [
    dict(),
    dict(inelastic_deflection=False),
    dict(elastic="browning"),
    dict(elastic="rutherford", inelastic_deflection=False),
    dict(elastic="mott-pwa", cutoff_kev=0.5),
    dict(elastic="browning", angular_sampling="analytic", inelastic_deflection=False),
    dict(elastic="rutherford", angular_sampling="analytic", inelastic_deflection=False),
]
def _spectrum_chi2(a, b) -> float:
    """Chi-square between two BSE energy spectra in tenths of E0 (10 bins; < 35 at p ~ 1e-4 if equal)."""
    h1, h2 = a.energy_hist.reshape(10, 10).sum(1), b.energy_hist.reshape(10, 10).sum(1)
    m = (h1 + h2) > 0
    return float((((h1 - h2)[m]) ** 2 / (h1 + h2)[m]).sum())


BACKEND_KEYS = {"seed", "backend", "device", "dtype", "batch", "absorbed", "transmitted", "events", "iterations"}


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_numba_and_torch_agree_for_every_physics_option(opts):
    phys = Physics(**opts)
    n = 8000
    a = bulk_eta("Au", 2.0, n, seed=101, physics=phys)
    b = backend_torch.bulk_eta_torch("Au", 2.0, n, seed=102, physics=phys, **KW)
    z = (a.eta - b.eta) / math.hypot(a.eta_std, b.eta_std)
    assert abs(z) < 4, (opts, a.eta, b.eta)
    assert _spectrum_chi2(a, b) < 35, (opts, a.energy_hist, b.energy_hist)
    # one parameter record: every physics option is in it, on both backends, with the same values
    shared = {k: v for k, v in b.parameters.items() if k not in BACKEND_KEYS}
    assert shared == {k: v for k, v in a.parameters.items() if k not in BACKEND_KEYS}
    for k, v in phys.model_dump().items():
        assert b.parameters[k] == v
    assert (a.parameters["backend"], b.parameters["backend"]) == ("numba", "torch")


def test_the_comparison_has_power():
    """The same test separates physics options: torch with Rutherford vs numba with Mott (eta 0.61 vs 0.45 for
    gold at 2 keV), and a 0.5 keV cut-off vs the default (eta 0.42 vs 0.45; no BSE below E0/4 in the spectrum)."""
    n = 8000
    mott = bulk_eta("Au", 2.0, n, seed=103)
    ruth = backend_torch.bulk_eta_torch("Au", 2.0, n, seed=104, physics=Physics(elastic="rutherford"), **KW)
    cut = backend_torch.bulk_eta_torch("Au", 2.0, n, seed=105, physics=Physics(cutoff_kev=0.5), **KW)
    assert (ruth.eta - mott.eta) / math.hypot(ruth.eta_std, mott.eta_std) > 8
    assert (mott.eta - cut.eta) / math.hypot(cut.eta_std, mott.eta_std) > 2
    assert _spectrum_chi2(mott, cut) > 35


def test_analytic_sampling_reaches_the_torch_transport():
    """Physics(angular_sampling="analytic") builds analytic tables for both backends (the torch path used to
    build tabulated ones whatever was asked), and the torch scatter then samples the closed-form rule."""
    from scipy import stats

    phys = Physics(elastic="browning", angular_sampling="analytic", inelastic_deflection=False)
    su = layer_setup([], "Au", 2.0, 10, physics=phys)
    assert su.tables.analytic == 1
    tt = backend_torch.TorchTables(su.tables, torch.device("cpu"), torch.float32)
    assert tt.analytic
    n, e = 40000, 2.0
    g = torch.Generator().manual_seed(5)
    rr = torch.rand((5, n), generator=g)
    u = torch.full((n,), (math.log(e) - tt.ln_e0) * tt.inv_dln)
    zero = torch.zeros(n)
    _, _, nz, keep = backend_torch.scatter(tt, torch.zeros(n, dtype=torch.int64), u, torch.full((n,), e), zero,
                                           zero, zero + 1.0, rr)
    assert bool((keep == 1.0).all())  # elastic only
    ref = elastic.sample_cos_theta("browning", 79, e, np.random.default_rng(2), n)
    assert stats.ks_2samp(nz.double().numpy(), ref).pvalue > 1e-3


def test_film_and_detector_records_agree():
    phys = Physics(elastic="browning", inelastic_deflection=False)
    det = Detector(e_min_kev=1.0)
    a = film_eta("epoxy", "Au", 10.0, 2.0, 3000, seed=1, physics=phys, detector=det)
    b = backend_torch.film_eta_torch("epoxy", "Au", 10.0, 2.0, 3000, seed=2, physics=phys, detector=det, **KW)
    assert b.parameters["backend"] == "torch" and b.parameters["layers"] == a.parameters["layers"]
    z = (a.detected_fraction - b.detected_fraction) / math.hypot(a.detected_std, b.detected_std)
    assert abs(z) < 4
    # the engine's entry point dispatches to the torch backend
    c = bulk_eta("Au", 2.0, 100, seed=3, physics=phys, backend="torch", device="cpu")
    assert c.parameters["backend"] == "torch" and c.parameters["elastic"] == "browning"
    with pytest.raises(FibsynthError) as exc:
        film_eta("epoxy", "Au", 10.0, 2.0, 200, backend="cupy")
    assert exc.value.param == "backend"


def test_slice_agrees_with_analytic_sampling():
    """A stack slice with analytic angular sampling and an energy filter: same per-region yields on both
    backends (the stack settings carry the physics object, so the option reaches both transports)."""
    vol = np.zeros((6, 12, 12), np.uint8)
    vol[:, :, :6] = 1
    s = StackSettings(beam=Beam(energy_kev=2.0, incidence_deg=38.0), electrons_per_pixel=40, seed=9,
                      physics=Physics(elastic="rutherford", angular_sampling="analytic", inelastic_deflection=False),
                      detector=Detector(e_min_kev=0.5))
    a = simulate_slice(vol, (2.0, 2.0, 2.0), 1, s)
    b = backend_torch.simulate_slice_torch(vol, (2.0, 2.0, 2.0), 1, s, **KW)
    n = 12 * 6 * 40
    for cols in (slice(0, 6), slice(6, 12)):
        for key in ("all", "detected"):
            pa, pb = a[key][:, cols].sum() / n, b[key][:, cols].sum() / n
            sig = math.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)
            assert abs(pa - pb) < 4 * sig, (cols, key, pa, pb)
    assert a["all"][:, :6].sum() > a["all"][:, 6:].sum() * 2  # gold over epoxy: the test sees the structure


def test_stack_settings_compose_and_accept_the_flat_keywords():
    nested = StackSettings(beam=Beam(energy_kev=3.0, incidence_deg=10.0, probe_fwhm_nm=2.0), electrons_per_pixel=5,
                           physics=Physics(elastic="browning", inelastic_deflection=False),
                           detector=Detector(e_min_kev=1.0, theta_max_deg=60.0),
                           geometry=StackGeometry(solid="platinum", backing="repeat"), seed=4)
    flat = StackSettings(energy_kev=3.0, incidence_deg=10.0, probe_fwhm_nm=2.0, electrons_per_pixel=5,
                         elastic="browning", inelastic_deflection=False, detector_emin_kev=1.0,
                         detector_theta_max_deg=60.0, solid="platinum", backing="repeat", seed=4)
    assert nested == flat
    assert StackSettings.model_validate_json(flat.model_dump_json()) == flat
    # old flat names still read (one release), and the flat record keeps the old metadata keys
    assert (flat.energy_kev, flat.solid, flat.pore, flat.detector_emin_kev, flat.elastic) == (
        3.0, "platinum", "epoxy", 1.0, "browning")
    rec = flat.record()
    assert rec["detector_theta_max_deg"] == 60.0 and rec["angular_sampling"] == "table" and rec["seed"] == 4
    # the detector's own rule now holds for stacks too
    with pytest.raises(FibsynthError):
        StackSettings.build(None, energy_kev=2.0, electrons_per_pixel=1, detector_theta_min_deg=50,
                            detector_theta_max_deg=20)
    with pytest.raises(FibsynthError) as exc:
        StackSettings.build(None, beam=Beam(energy_kev=2.0), electrons_per_pixel=1, elastic="mot")
    assert exc.value.param == "physics.elastic" and "rutherford" in str(exc.value)


def test_elastic_models_listed_once():
    """The elastic models are elastic.MODELS; the settings and the CLI help take them from there."""
    from fibsynth.physics.montecarlo import cli

    for m in elastic.MODELS:
        Physics(elastic=m)
        assert m in cli._ELASTIC_HELP
    with pytest.raises(ValueError):
        Physics(elastic="casino")


def test_tables_shared_between_backends():
    """The torch tables are the numpy tables (same arrays), for a stack's materials too."""
    mats = [get_material("epoxy"), get_material("Au")]
    tabs = build_tables(mats, "browning", 0.05, "analytic", False)
    tt = backend_torch.TorchTables(tabs, torch.device("cpu"), torch.float64)
    np.testing.assert_array_equal(tt.lam.numpy(), tabs.lam_inv.ravel())
    np.testing.assert_array_equal(tt.acoef.numpy(), tabs.acoef.ravel())
    assert tt.analytic
