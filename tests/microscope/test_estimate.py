"""Estimators: the forward model's parameters come back from the stacks it made (within 20 %)."""

from __future__ import annotations

import numpy as np
import pytest
from microscope_phantom import ETA_EPOXY, ETA_GOLD, phantom

from fibsynth.errors import FibsynthError
from fibsynth.microscope import (
    Curtaining,
    Detector,
    Drift,
    MicroscopeModel,
    Shading,
    apply,
    fit_model,
    noise_sigma,
    poisson_gaussian,
    shading_profile,
    stripe_profile_power,
)


def test_noise_sigma_and_poisson_gaussian_fit():
    rng = np.random.default_rng(0)
    assert noise_sigma(rng.normal(0.3, 0.05, (2, 128, 128))) == pytest.approx(0.05, rel=0.05)
    _, eta = phantom((8, 96, 96), 21)
    det = Detector(electrons_per_pixel=400, efficiency=0.5, gain=0.8, dark_offset=0.05, read_noise=0.02)
    out = apply(eta, MicroscopeModel(detector=det, curtaining=Curtaining(amplitude=0.02), seed=3)).image
    pg = poisson_gaussian(out)
    a = 0.8 / (400 * 0.5)
    assert pg["a"] == pytest.approx(a, rel=0.2)
    # b = read**2 - a * dark_offset: the read noise comes back given the black level
    assert np.sqrt(pg["b"] + pg["a"] * 0.05) == pytest.approx(0.02, rel=0.2)


def test_stripe_power_is_unbiased_by_structure_and_noise():
    _, eta = phantom((16, 192, 192), 22)
    noisy = apply(eta, MicroscopeModel(detector=Detector(electrons_per_pixel=300), seed=4)).image
    r = apply(eta, MicroscopeModel(detector=Detector(electrons_per_pixel=300), curtaining=Curtaining(amplitude=0.04),
                                   seed=4))
    true = np.sqrt((r.stripes ** 2).mean())
    assert np.sqrt(max(stripe_profile_power(r.image).mean(), 0)) == pytest.approx(true, rel=0.2)
    # without curtains the estimate is a small fraction of that stripe level
    assert stripe_profile_power(noisy).mean() < 0.1 * true ** 2


def test_shading_profile_recovers_depth_tilt_and_black_level():
    _, eta = phantom((8, 128, 128), 23)
    m = MicroscopeModel(detector=Detector(dark_offset=0.1), shading=Shading(depth=0.35, power=2.0, tilt=-0.25), seed=5)
    sh = shading_profile(apply(eta, m).image)
    assert sh["depth"] == pytest.approx(0.35, rel=0.2)
    assert sh["tilt"] == pytest.approx(-0.25, rel=0.2)
    assert sh["offset"] == pytest.approx(0.1, abs=0.03)
    with pytest.raises(FibsynthError) as e:
        shading_profile(np.zeros((2, 32, 32)))
    assert e.value.param == "stack"


def test_fit_model_recovers_the_forward_model_within_20_percent():
    _, eta = phantom((16, 192, 192), 0)
    true = MicroscopeModel(
        detector=Detector(electrons_per_pixel=400, efficiency=0.5, gain=0.8, dark_offset=0.05, read_noise=0.02),
        curtaining=Curtaining(amplitude=0.04), shading=Shading(depth=0.3, tilt=0.25),
        drift=Drift(contrast_rms=0.1, brightness_rms=0.03, xy_step_px=0.8, correlation_slices=4), seed=100)
    r = apply(eta, true)
    fit, rec = fit_model(r.image, eta_levels=(ETA_EPOXY, ETA_GOLD))
    real = r.record["realised"]
    c, b = np.array(real["contrast"]), np.array(real["brightness"])
    step = np.sqrt((np.diff(np.array(real["shifts_px"]), axis=0) ** 2).mean() / 2)
    pairs = {
        "detected electrons/px": (fit.detector.electrons_per_pixel, 400 * 0.5),
        "gain": (fit.detector.gain, 0.8),
        "read noise": (fit.detector.read_noise, 0.02),
        "curtain amplitude": (fit.curtaining.amplitude, np.sqrt((r.stripes ** 2).mean())),
        "shadow depth": (fit.shading.depth, 0.3),
        "tilt": (fit.shading.tilt, 0.25),
        "contrast drift": (fit.drift.contrast_rms, (c / c.mean()).std()),
        "brightness drift": (fit.drift.brightness_rms, b.std()),
        "xy step": (fit.drift.xy_step_px, step),
    }
    off = {k: round(est / tru - 1, 3) for k, (est, tru) in pairs.items() if abs(est / tru - 1) > 0.2}
    assert not off, off
    assert fit.detector.dark_offset == pytest.approx(0.05, abs=0.02)
    # the fitted model is a valid forward model: applied to the simulation it gives a stack of the same noise
    again = apply(eta, fit)
    assert poisson_gaussian(again.image)["a"] == pytest.approx(rec["noise"]["a"], rel=0.2)
