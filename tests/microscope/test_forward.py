"""Forward microscope model: each effect checked against its definition and physics invariants."""

from __future__ import annotations

import numpy as np
import pytest
from microscope_phantom import ETA_EPOXY, ETA_GOLD, phantom


from fibsynth.errors import FibsynthError
from fibsynth.microscope import (
    Charging,
    Curtaining,
    Detector,
    Drift,
    MicroscopeModel,
    Shading,
    apply,
    jitter_structure,
    jittered_z,
    sample_at_z,
    shading_field,
    simple_degrade,
)


def _old_degrade(img, gamma, gain, offset, blur_sigma_px, noise_std, seed):
    """The experiment engine's DegradeStep before the microscope stage existed (verbatim)."""
    from scipy.ndimage import gaussian_filter

    x = img.astype(np.float64)
    lo, hi = np.percentile(x, [0.1, 99.9])
    u = np.clip((x - lo) / max(hi - lo, 1e-12), 0, 1) ** gamma
    if blur_sigma_px:
        u = gaussian_filter(u, sigma=(0, blur_sigma_px, blur_sigma_px))
    r1, r99 = np.percentile(u, [1, 99])
    u = u + np.random.default_rng(seed).normal(0.0, noise_std * (r99 - r1), u.shape)
    return (gain * u + offset).astype(np.float32)


@pytest.mark.parametrize("kw", [dict(gamma=0.5, gain=1.0, offset=0.0, blur_sigma_px=0.0, noise_std=0.1, seed=3),
                                dict(gamma=1.7, gain=2.0, offset=-0.3, blur_sigma_px=1.2, noise_std=0.02, seed=9)])
def test_simple_degrade_is_the_old_degrade_step(kw):
    _, eta = phantom((4, 32, 32), 1)
    assert np.array_equal(simple_degrade(eta, **kw), _old_degrade(eta, **kw))


def test_default_model_is_the_identity_and_seed_reproducible():
    _, eta = phantom((4, 48, 48), 2)
    r = apply(eta)
    assert r.image.dtype == np.float32 and np.allclose(r.image, eta, atol=1e-6)
    m = MicroscopeModel.sample(5, strength=1.0)
    a, b = apply(eta, m), apply(eta, m)
    assert np.array_equal(a.image, b.image)
    c = apply(eta, m.model_copy(update={"seed": m.seed + 1}))
    assert not np.array_equal(a.image, c.image)


def test_poisson_gaussian_variance_on_a_flat_field():
    eta = np.full((4, 128, 128), 0.3)
    det = Detector(electrons_per_pixel=200, efficiency=0.5, gain=0.8, dark_offset=0.05, read_noise=0.01)
    out = apply(eta, MicroscopeModel(detector=det, seed=1)).image.astype(np.float64)
    mean = 0.05 + 0.8 * 0.3
    var = 0.8 / (200 * 0.5) * (mean - 0.05) + 0.01 ** 2  # a * (mean - dark) + read**2
    assert out.mean() == pytest.approx(mean, rel=0.01)
    assert out.var() == pytest.approx(var, rel=0.05)
    # dose from beam current and dwell: 100 pA x 1 us / e = 624 electrons
    assert Detector(beam_current_pa=100, dwell_us=1.0).dose() == pytest.approx(624.15, rel=1e-4)


def test_response_bits_and_line_artifacts():
    _, eta = phantom((2, 64, 64), 3)
    g = apply(eta, MicroscopeModel(detector=Detector(response="gamma", gamma=0.5, gain=1.5))).image
    assert np.allclose(g, (1.5 * eta) ** 0.5, atol=1e-6)
    s = apply(eta, MicroscopeModel(detector=Detector(response="saturating", saturation=0.5, gain=2.0))).image
    assert np.all(np.diff(np.sort(np.unique(s))) > 0) and s.max() < 2.0 * 0.5 / (1 - np.exp(-2)) + 1e-6
    q = apply(eta, MicroscopeModel(detector=Detector(gain=3.0, bits=4))).image
    assert q.min() >= 0 and q.max() == 1.0  # clipped at full scale
    assert len(np.unique(q)) <= 16 and np.allclose(q * 15, np.round(q * 15), atol=1e-5)
    lo = apply(eta, MicroscopeModel(detector=Detector(line_offset_std=0.05), seed=2)).image - eta
    assert np.allclose(lo, lo[:, :, :1], atol=1e-6)  # one offset per scan line
    assert lo[:, :, 0].std() == pytest.approx(0.05, rel=0.25)


def test_curtains_are_vertical_stripes_changing_slowly():
    eta = np.full((24, 40, 96), 0.3)
    m = MicroscopeModel(curtaining=Curtaining(amplitude=0.03, correlation_slices=40, wander_px=0.1), seed=4)
    r = apply(eta, m)
    d = r.image - eta
    assert np.allclose(d, d[:, :1, :], atol=1e-6)  # constant along y within a slice
    assert np.allclose(d[:, 0, :], r.stripes, atol=1e-6)
    assert np.sqrt((r.stripes ** 2).mean()) == pytest.approx(0.03, rel=1e-6)
    cc = [np.corrcoef(r.stripes[k], r.stripes[k + 1])[0, 1] for k in range(23)]
    assert min(cc) > 0.8  # slow change from slice to slice
    assert np.corrcoef(r.stripes[0], r.stripes[-1])[0, 1] < max(cc)


def test_shading_drift_blur_and_labels():
    eta = np.full((3, 50, 60), 0.4)
    r = apply(eta, MicroscopeModel(shading=Shading(depth=0.3, tilt=0.2)))
    assert np.allclose(r.image, 0.4 * shading_field(MicroscopeModel(shading=Shading(depth=0.3, tilt=0.2)), 50, 60)[None],
                       atol=1e-6)
    col = r.image[0].mean(1)
    assert col[-1] / col[0] == pytest.approx(0.7, rel=1e-3)  # darker towards the bottom by `depth`

    lab, img = phantom((10, 64, 64), 5)
    m = MicroscopeModel(drift=Drift(xy_step_px=1.0, contrast_rms=0.1, brightness_rms=0.02, blur_px=0.5,
                                    focus_rms_px=0.3), seed=6)
    r = apply(img, m, labels=lab)
    sh = np.array(r.record["realised"]["shifts_px"])
    assert np.allclose(sh[0], 0) and np.abs(sh[-1]).max() > 0.5
    # the labels moved with the image: thresholding the image gives them back (up to the blur at the edges)
    thr = (0.5 * (ETA_EPOXY + ETA_GOLD) * np.array(r.record["realised"]["contrast"])
           + np.array(r.record["realised"]["brightness"]))[:, None, None]
    agree = ((r.image > thr) == (r.labels > 0)).mean()
    unmoved = ((r.image > thr) == (lab > 0)).mean()
    assert agree > 0.97 and agree > unmoved
    assert np.all(np.array(r.record["realised"]["blur_px"]) >= 0.5)


def test_charging_brightens_epoxy_lines():
    lab, eta = phantom((2, 64, 64), 7)
    m = MicroscopeModel(charging=Charging(strength=0.2, line_fraction=0.5, length_px=10), seed=3)
    d = apply(eta, m, labels=lab).image - eta
    assert d.min() >= -1e-6 and d.max() > 0.05
    struck = (d > 1e-6).any(2)
    assert 0.3 < struck.mean() < 0.7  # about line_fraction of the scan lines
    assert d[lab == 1].mean() < d[lab == 0].mean()  # charge builds up over epoxy


def test_charging_records_the_realised_struck_fraction():
    # the truth for the struck-fraction estimator: lines are struck at random, so the realised share scatters
    # around line_fraction (by 2.8 % relative over the benchmark's 3072 lines)
    eta = np.full((3, 40, 32), 0.1)  # all epoxy (labels 0): every struck line is brightened
    m = MicroscopeModel(charging=Charging(strength=0.2, line_fraction=0.3, length_px=10), seed=5)
    r = apply(eta, m, labels=np.zeros(eta.shape, np.uint8))
    assert r.record["realised"]["struck_line_fraction"] == pytest.approx(((r.image - eta) > 1e-6).any(2).mean(), abs=1e-5)
    assert "struck_line_fraction" not in apply(eta, MicroscopeModel(seed=5)).record["realised"]


def test_jittered_z_and_sampling():
    assert np.allclose(jittered_z(10, 0.0), np.arange(10))
    z = jittered_z(400, 0.2, seed=1)
    assert np.diff(z).mean() == pytest.approx(1.0, rel=0.05)
    assert np.diff(z).std() == pytest.approx(0.2, rel=0.15)
    vol = np.arange(6, dtype=float)[:, None, None] * np.ones((6, 3, 3))
    assert np.allclose(sample_at_z(vol, [0.0, 1.25, 4.5])[:, 0, 0], [0.0, 1.25, 4.5])
    assert np.allclose(sample_at_z(vol, [1.4, 2.6], order=0)[:, 0, 0], [1, 3])
    lab, _ = phantom((40, 16, 16), 2)
    cut, zz = jitter_structure(lab, 0.3, seed=4)
    assert cut.shape == (len(zz), 16, 16) and set(np.unique(cut)) <= {0, 1}
    assert np.array_equal(jitter_structure(lab, 0.0)[0], lab)
    assert zz[0] == 0 and np.array_equal(cut[0], lab[0])  # the first cut is the first slice
    assert np.ptp(np.diff(zz)) > 0.3  # the cuts are not evenly spaced
    assert abs(cut.mean() - lab[: int(zz[-1]) + 1].mean()) < 0.05
    with pytest.raises(FibsynthError) as e:
        sample_at_z(vol, [6.5])
    assert e.value.param == "z"
    with pytest.raises(FibsynthError) as e:
        jittered_z(5, 2.0)
    assert e.value.param == "thickness_jitter"


def test_sample_scales_with_strength_and_errors():
    ideal = MicroscopeModel.sample(1, strength=0.0)
    assert ideal.detector.electrons_per_pixel is None and ideal.curtaining.amplitude == 0
    assert ideal.shading.depth == 0 and ideal.drift.xy_step_px == 0 and ideal.detector.bits is None
    strong = [MicroscopeModel.sample(s, strength=2.0) for s in range(20)]
    weak = [MicroscopeModel.sample(s, strength=0.5) for s in range(20)]
    assert np.mean([m.curtaining.amplitude for m in strong]) > np.mean([m.curtaining.amplitude for m in weak])
    _, eta = phantom((3, 32, 32), 1)
    for m in strong[:5]:
        out = apply(eta, m).image
        assert out.shape == eta.shape and np.isfinite(out).all()
    with pytest.raises(FibsynthError) as e:
        MicroscopeModel.sample(0, strength=3)
    assert e.value.param == "strength"
    with pytest.raises(FibsynthError) as e:
        apply(np.zeros((2, 3, 4, 5)))
    assert e.value.param == "stack"
    with pytest.raises(FibsynthError) as e:
        apply(eta, labels=np.zeros((3, 8, 8)))
    assert e.value.param == "labels"

