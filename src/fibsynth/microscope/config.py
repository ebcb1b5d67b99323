"""Typed settings of the microscope model: one small pydantic model per effect, composed in :class:`MicroscopeModel`.

Units: the input stack is a simulated backscatter yield ``eta`` (z, y, x), typically in [0, 1]. The detector turns it
into an output in *full-scale units*: 0 is the black level, 1 the white level of the digitiser (so a 2**bits integer
image is ``round(out * (2**bits - 1))``). Every effect is off (or neutral) at its defaults except the detector,
whose defaults describe a plain noise-free linear detector; ``MicroscopeModel.sample`` draws a randomised model for
training augmentation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from fibsynth.config import StrictModel

ELEMENTARY_CHARGE_C = 1.602176634e-19


class Detector(StrictModel):
    """Backscatter detector and digitiser.

    Detected electrons per pixel are Poisson with mean ``electrons_per_pixel * efficiency * eta`` (shot noise);
    the output is ``dark_offset + gain * eta_measured + N(0, read_noise)`` where ``eta_measured`` is the detected
    count divided by ``electrons_per_pixel * efficiency`` (so the noise-free output of ``eta`` is
    ``dark_offset + gain * eta``). Its variance is the Poisson-Gaussian ``a * (mean - dark_offset) + b`` with
    ``a = gain / (electrons_per_pixel * efficiency)`` and ``b = read_noise**2``.
    """

    beam_current_pa: float | None = Field(None, gt=0, le=1e6, description="probe current in pA; with dwell_us sets the dose")
    dwell_us: float = Field(1.0, gt=0, le=1e6, description="pixel dwell time in microseconds")
    electrons_per_pixel: float | None = Field(
        None, gt=0, le=1e9,
        description="primary electrons per pixel (dose); default: beam_current_pa * dwell_us / e, or no shot noise "
        "when neither is given")
    efficiency: float = Field(1.0, gt=0, le=1, description="fraction of backscattered electrons counted")
    gain: float = Field(1.0, gt=0, le=1e3, description="output units per unit of eta")
    dark_offset: float = Field(0.0, ge=-10, le=10, description="black level in output units")
    read_noise: float = Field(0.0, ge=0, le=10, description="Gaussian amplifier noise, std in output units")
    response: Literal["linear", "gamma", "saturating"] = "linear"
    gamma: float = Field(1.0, gt=0.05, le=20, description="out**gamma for response='gamma'")
    saturation: float = Field(1.0, gt=0, le=100,
                              description="out -> s*(1-exp(-out/s))/(1-exp(-1/s)) for response='saturating'")
    bits: int | None = Field(None, ge=1, le=16, description="digitiser depth; output clipped to [0, 1] and quantised")
    line_offset_std: float = Field(0.0, ge=0, le=1, description="per-scan-line additive offset, std in output units")
    line_jitter_px: float = Field(0.0, ge=0, le=10, description="per-scan-line x displacement, std in pixels")

    def dose(self) -> float | None:
        """Primary electrons per pixel, or None for a noise-free (infinite-dose) detector."""
        if self.electrons_per_pixel is not None:
            return float(self.electrons_per_pixel)
        if self.beam_current_pa is not None:
            return self.beam_current_pa * 1e-12 * self.dwell_us * 1e-6 / ELEMENTARY_CHARGE_C
        return None


class Curtaining(StrictModel):
    """Vertical stripes from FIB milling (curtains): constant along y within a slice (the ion beam mills from the
    top of the face down), at random x positions, of random signed strength and width, evolving slowly over the
    slices (AR(1) amplitudes with correlation length ``correlation_slices``; positions wander by ``wander_px``
    per slice). ``amplitude`` is the rms of the stripe profile in eta units."""

    amplitude: float = Field(0.0, ge=0, le=1, description="rms of the stripe profile (eta units); 0 = off")
    stripes_per_100px: float = Field(8.0, gt=0, le=100)
    width_px: float = Field(3.0, gt=0, le=200, description="mean stripe width (FWHM-like), pixels")
    correlation_slices: float = Field(20.0, gt=0, le=1e6, description="slices over which a stripe's strength changes")
    wander_px: float = Field(0.2, ge=0, le=20, description="rms x displacement of a stripe per slice")


class Shading(StrictModel):
    """Multiplicative shading of the face: the trench walls' shadow, ``1 - depth * (y/(H-1))**power`` (darker towards
    the bottom), and a left-right tilt ``1 + tilt * (x/(W-1) - 1/2)``."""

    depth: float = Field(0.0, ge=0, lt=1, description="relative darkening at the bottom row")
    power: float = Field(2.0, gt=0, le=10)
    tilt: float = Field(0.0, ge=-1.9, le=1.9, description="relative brightness difference right minus left")


class Drift(StrictModel):
    """Slow changes over the stack: random walks (per-slice step std, made to vary slowly)."""

    contrast_rms: float = Field(0.0, ge=0, le=1, description="rms relative change of beam current (contrast) over the stack")
    brightness_rms: float = Field(0.0, ge=0, le=1, description="rms additive change of black level, output units")
    xy_step_px: float = Field(0.0, ge=0, le=50, description="std of the slice-to-slice xy shift, pixels (cumulative)")
    blur_px: float = Field(0.0, ge=0, le=20, description="probe blur sigma (pixels) at best focus")
    focus_rms_px: float = Field(0.0, ge=0, le=20, description="rms extra blur sigma from focus drift, pixels")
    correlation_slices: float = Field(30.0, gt=0, le=1e6, description="slices over which brightness/focus drift change")


class Charging(StrictModel):
    """Charging streaks in the dark, insulating phase (epoxy): charge builds up while the beam scans along x over
    epoxy and brightens the following pixels of that line; a fraction of the lines are struck."""

    strength: float = Field(0.0, ge=0, le=2, description="brightening of a fully charged pixel (eta units); 0 = off")
    length_px: float = Field(15.0, gt=0, le=1e4, description="charge build-up / decay length along the scan line")
    line_fraction: float = Field(0.3, ge=0, le=1, description="fraction of scan lines that show streaks")
    threshold: float | None = Field(None, description="eta below which a pixel is epoxy; default midway of the 1-99 % range")


class Fiducial(StrictModel):
    """A static reference band at the top of the field: the protective cap (Pt/C deposited over the volume before
    milling) with alignment marks milled into it, which every slice cuts at the same place. It moves with the stage
    drift like the rest of the image (and takes the curtains, shading, blur and noise like the rest) but does not
    change from slice to slice, so that registering the stack on it measures the drift alone (structure below it
    has an apparent motion of its own: slanted features look like a shift).

    Rows ``top_px .. top_px + height_px`` of every slice are replaced by the cap: yield ``gray``, marks of yield
    ``mark_gray`` (milled grooves: dark) and width ``mark_width_px`` -- one line through the band's middle row at
    each of ``mark_angles_deg`` (from the x axis; the default (45, -45) is an X), repeated every
    ``mark_spacing_px`` along x from a random phase -- and a grain texture of rms ``grain_rms`` (correlation
    ``grain_px``) that is new in every slice (each slice is a fresh cross-section of the deposit). Rows above the
    cap (``top_px`` > 0) are the plain surface beyond it, yield ``above_gray``. The marks' phase and the grain are
    drawn from their own generator (from the model's seed), so that the rest of the model draws the same noise,
    drift and curtains with and without the band. Off (``height_px = 0``) by default.

    Wear (off by default): over a long run the grooves fill with redeposited material and their edges round off;
    ``wear_contrast`` is the fraction of the marks' contrast lost by the last slice and ``wear_blur_px`` the
    Gaussian blur of the marks reached there, both growing linearly with the slice index from none at slice 0.
    The marks then differ between slices far apart, which is what registering on them has to tolerate."""

    height_px: int = Field(0, ge=0, le=4096, description="rows of the cap band with the marks; 0 = off")
    top_px: int = Field(0, ge=0, le=4096, description="rows above the band (plain surface, yield above_gray)")
    gray: float = Field(0.3, ge=0, le=2, description="backscatter yield of the cap")
    above_gray: float = Field(0.05, ge=0, le=2, description="yield of the rows above the band")
    mark_gray: float = Field(0.05, ge=0, le=2, description="yield inside the milled marks")
    mark_width_px: float = Field(2.0, gt=0, le=100, description="width of a mark's line, px")
    mark_angles_deg: tuple[float, ...] = Field((45.0, -45.0), min_length=1, max_length=8,
                                               description="angle of each line of a mark from the x axis, degrees")
    mark_spacing_px: float = Field(48.0, ge=4, le=1e5, description="distance between marks along x, px")
    grain_rms: float = Field(0.02, ge=0, le=1, description="rms of the cap's grain (new every slice), yield units")
    grain_px: float = Field(1.0, ge=0, le=50, description="correlation length (Gaussian sigma) of the grain, px")
    wear_contrast: float = Field(0.0, ge=0, le=1, description="fraction of the marks' contrast lost by the last "
                                 "slice (linear in the slice index; redeposition filling the grooves); 0 = none")
    wear_blur_px: float = Field(0.0, ge=0, le=50, description="Gaussian blur of the marks reached at the last slice "
                                "(linear in the slice index; edges rounded by redeposition), px; 0 = none")


class MicroscopeModel(StrictModel):
    """All effects of the forward model; ``seed`` makes an application reproducible."""

    detector: Detector = Field(default_factory=Detector)
    curtaining: Curtaining = Field(default_factory=Curtaining)
    shading: Shading = Field(default_factory=Shading)
    drift: Drift = Field(default_factory=Drift)
    charging: Charging = Field(default_factory=Charging)
    fiducial: Fiducial = Field(default_factory=Fiducial)
    seed: int = Field(0, ge=0, lt=2**63)

    @classmethod
    def full_reference(cls, seed: int = 0) -> "MicroscopeModel":
        """A fixed microscope with every effect that :func:`fibsynth.microscope.fit_model` estimates, at moderate
        values (shot noise at 200 detected electrons per pixel, gain 0.8, read noise, line offsets and jitter,
        curtains, shadow and tilt, beam-current, black-level, focus and xy drift); no charging, linear response.
        The estimators' benchmark (``benchmarks/bench_microscope.py``, its ``estimate_model(seed)`` is this with
        ``seed + 100``) and the estimator tests both use it, so that they check the same microscope."""
        return cls(
            detector=Detector(electrons_per_pixel=400, efficiency=0.5, gain=0.8, dark_offset=0.05, read_noise=0.02,
                              line_offset_std=0.01, line_jitter_px=0.3),
            curtaining=Curtaining(amplitude=0.04), shading=Shading(depth=0.3, tilt=0.15),
            drift=Drift(contrast_rms=0.1, brightness_rms=0.03, xy_step_px=0.8, correlation_slices=4, blur_px=0.8,
                        focus_rms_px=0.4),
            seed=seed)

    @classmethod
    def sample(cls, rng: np.random.Generator | int | None = None, strength: float = 1.0) -> "MicroscopeModel":
        """A random microscope for training augmentation; ``strength`` in [0, 2] scales every artifact (0: ideal
        linear detector, 1: a typical FIB-SEM, 2: a bad day). The seed of the returned model is drawn too."""
        from fibsynth.errors import FibsynthError

        if not 0 <= strength <= 2:
            raise FibsynthError(f"must be in [0, 2] (got {strength})", param="strength")
        rng = np.random.default_rng(rng)
        s = float(strength)

        def u(lo: float, hi: float) -> float:
            return float(rng.uniform(lo, hi))

        dose = float(np.exp(rng.uniform(np.log(50), np.log(2000)))) if s > 0 else None
        det = Detector(
            electrons_per_pixel=dose,
            efficiency=u(0.3, 0.9),
            gain=u(0.7, 1.2),
            dark_offset=u(0.0, 0.1) * s,
            read_noise=u(0.0, 0.02) * s,
            response=str(rng.choice(["linear", "gamma", "saturating"])) if s > 0 else "linear",
            gamma=float(np.exp(rng.normal(0, 0.25 * s))),
            saturation=u(0.5, 3.0),
            bits=int(rng.choice([8, 12, 16])) if s > 0 else None,
            line_offset_std=u(0, 0.01) * s,
            line_jitter_px=u(0, 0.3) * s,
        )
        cur = Curtaining(amplitude=min(1.0, u(0, 0.04) * s), stripes_per_100px=u(2, 15), width_px=u(1, 8),
                         correlation_slices=u(5, 60), wander_px=u(0, 0.5))
        sh = Shading(depth=min(0.9, u(0, 0.3) * s), power=u(1, 3), tilt=max(-1.9, min(1.9, u(-0.2, 0.2) * s)))
        dr = Drift(contrast_rms=min(1.0, u(0, 0.05) * s), brightness_rms=min(1.0, u(0, 0.03) * s),
                   xy_step_px=u(0, 0.5) * s, blur_px=u(0.3, 1.2) * s, focus_rms_px=u(0, 0.3) * s,
                   correlation_slices=u(10, 60))
        ch = Charging(strength=min(2.0, u(0, 0.15) * s) if rng.random() < 0.5 else 0.0, length_px=u(5, 40),
                      line_fraction=u(0.05, 0.5))
        return cls(detector=det, curtaining=cur, shading=sh, drift=dr, charging=ch,
                   seed=int(rng.integers(0, 2**62)))


class CorrectConfig(StrictModel):
    """Which corrections :func:`fibsynth.microscope.correct` applies to a real stack, in this order:
    align, destripe, shading, drift, denoise."""

    align: bool = False
    upsample: int = Field(20, ge=1, le=1000, description="registration precision 1/upsample px")
    max_shift_px: float | None = Field(None, gt=0, description="reject slice-to-slice shifts larger than this")
    align_method: Literal["chain", "neighbours", "template"] = Field(
        "chain", description="chain (each slice onto the previous one), neighbours (also onto the 2-3 before it, "
        "robust least squares: averages the registration noise) or template (onto the median of the aligned "
        "neighbours, AMST)")
    align_region: tuple[int, int, int, int] | None = Field(
        None, description="register on this rectangle only (y0, y1, x0, x1; pixels, half-open): a static fiducial "
        "band (marks milled into the protective cap); the shifts move the whole slices")
    align_search_px: float | None = Field(
        None, ge=1, le=100000, description="largest shift per axis a registration looks for (px); default unlimited on "
        "the whole image, a third of the region's shorter side with align_region")
    destripe: bool = False
    destripe_method: Literal["auto", "wavelet", "phase"] = Field(
        "auto", description="wavelet (Muench et al. filter), phase (column profile of the residual of a two-phase "
        "level model) or auto: phase when a phase layer crosses the face and no levels are given, else wavelet")
    destripe_levels: int | None = Field(None, ge=1, le=10, description="wavelet levels of the Muench et al. filter; "
                                        "default ceil(log2(min(ny, nx))) - 1 (see docs/microscope.md)")
    destripe_sigma: float = Field(1.0, gt=0, le=100, description="Gaussian damping width in the Fourier domain")
    shading: bool = False
    shading_method: Literal["model", "polynomial", "gaussian"] = "model"
    shading_sigma_px: float | None = Field(None, gt=0, description="smoothing for shading_method='gaussian'; default H/4")
    read_once_bytes: int | None = Field(
        None, ge=0, description="shading_method='model' on a lazy stack (dask, Zarr) as the first step: hold it in "
        "memory (its own dtype) when it takes at most this many bytes, else read it on each of the measurement's 8 "
        "passes; default forward.READ_ONCE_BYTES (2 GiB), 0 never")
    drift: bool = False
    denoise: Literal["none", "gaussian", "bilateral", "nl_means", "median"] = "none"
    denoise_strength: float = Field(1.0, gt=0, le=20, description="sigma (px) for gaussian/median; multiple of the "
                                    "estimated noise for bilateral/nl_means")
