"""Estimators for a real stack: noise (Poisson-Gaussian), curtain-stripe power, shading, drift; and
:func:`fit_model`, which turns them into a :class:`~fibsynth.microscope.config.MicroscopeModel` for simulated stacks.

All quantities are measured in the stack's own units (use :func:`fibsynth.microscope.as_full_scale` for integer
stacks). To express them in backscatter-yield units, give the yields of the two phases (``eta_levels``): the
estimators then find the two phases' gray levels and map them onto those yields (gain and black level).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.microscope.config import Charging, Curtaining, Detector, Drift, MicroscopeModel, Shading
from fibsynth.microscope.forward import _stack

from fibsynth.microscope.measure import (  # noqa: F401  (re-exported: the single estimators)
    blur_series, charging_streaks, drift_series, noise_sigma, phase_levels, poisson_gaussian, response_gamma, scan_line_artifacts,
    shading_profile, stripe_profile_power,
)

# |log gamma| above which fit_model linearises the stack before the other measurements (a linear detector's
# estimate scatters by about +-0.06 around 1, docs/microscope.md)
GAMMA_TOLERANCE = 0.1
# wavelet levels of the destriping before the shading fit: curtains up to ~16 px wide, not the broad tilt
SHADING_DESTRIPE_LEVELS = 4
# mean and std of |N(0, 1)|: the forward model's focus drift is blur_px + focus_rms_px * |AR(1) series|
_ABS_MEAN, _ABS_STD = float(np.sqrt(2 / np.pi)), float(np.sqrt(1 - 2 / np.pi))


def curtain_profile_power(stack: Any, *, blur_px: Any = None, max_gain: float = 10.0) -> dict[str, Any]:
    """Curtain variance of each slice of a two-phase stack from the column profile that the phase destriper
    measures (:func:`fibsynth.microscope.inverse.phase_stripe_profile`: median over the rows of the residual of a
    two-phase level model), so that the structure's own column-mean profile, which is what a stripe is to
    :func:`stripe_profile_power`, does not enter. Curtains are relief of the face and the probe blurs them like the
    structure: with ``blur_px`` (a number or one per slice, Gaussian sigma in px) the profile's power spectrum is
    divided by the blur's (gain capped at ``max_gain``), giving the variance of the curtains before the blur. The
    noise of the column medians (``pi/2 sigma^2 / rows``, sigma from :func:`noise_sigma`) is subtracted.
    Returns ``{"var_per_slice", "rms", "deconvolved"}`` in the stack's units."""
    from fibsynth.microscope.inverse import destripe_phase_slice  # inverse imports measure: kept out of there

    x = _stack(stack, "stack")
    nz, ny, nx = x.shape
    profs = np.array([destripe_phase_slice(s)[1] for s in x])
    k = np.fft.rfftfreq(nx) * 2.0 * np.pi
    weight = np.full(k.size, 2.0)
    weight[0] = 0.0  # the profiles have zero mean
    if nx % 2 == 0:
        weight[-1] = 1.0
    gain = np.ones((nz, k.size))
    if blur_px is not None:
        b = np.broadcast_to(np.asarray(blur_px, np.float64), (nz,))
        gain = np.minimum(np.exp((k[None, :] * b[:, None]) ** 2), max_gain)
    power = np.abs(np.fft.rfft(profs, axis=1)) ** 2
    var = (power * gain * weight).sum(1) / nx ** 2
    noise = np.pi / 2.0 * noise_sigma(x) ** 2 / ny  # white noise of a median over ~ny rows, per column
    var = var - noise * (gain * weight).sum(1) / nx
    return {"var_per_slice": var, "rms": float(np.sqrt(max(var.mean(), 0.0))), "deconvolved": blur_px is not None}


def fit_model(stack: Any, *, eta_levels: tuple[float, float] | None = None, align: bool = True,
              reference: Any = None, estimate_response: bool = False, estimate_charging: bool = False,
              seed: int = 0) -> tuple[MicroscopeModel, dict[str, Any]]:
    """A forward model matched to a real stack, and the measurements it came from.

    ``eta_levels`` = (epoxy, gold) backscatter yields of the simulation to match (e.g. from the fast path's eta
    curves at the user's energy); the stack's mean phase levels define gain and black level. Without it the stack's
    units are taken as yield units (gain 1, black level 0). Estimated: a power-law detector response (gamma, from the
    noise curve; always measured and recorded, used only with ``estimate_response=True``, which linearises the stack
    before the rest when gamma is not ~1 and ``response_gamma`` finds it identifiable: on stacks whose gray levels
    sit in two narrow clusters it is not, docs/microscope.md), detector dose (from the Poisson slope)
    and read noise, scan-line offsets and jitter, probe blur and focus drift (relative to ``reference``, an ideal
    image stack of the simulation to match, when given; else the total edge blur), stripe amplitude, trench-shadow
    depth and tilt, contrast / brightness drift and the xy step of the slice drift (by registration when
    ``align``). Charging streaks (:func:`charging_streaks`) are always measured and recorded (``"charging"``); the
    model gets them only with ``estimate_charging=True`` and when flagged present (on the benchmark the struck
    fraction's sd over seeds stays under 20 % down to a strength of ~0.045 yield units, the default being 0.1;
    the presence flag is the tighter limit there: 3 of 10 detected at 0.05, 7 of 10 at 0.06; docs/microscope.md).
    When charging is flagged present, its share is subtracted from the line offsets and
    from the blur's gradient energies (struck and unstruck lines alternate at random and read as both). Not
    estimated: a saturating response."""
    from fibsynth.microscope.inverse import destripe, register_slices, shift_slices

    x = _stack(stack, "stack")
    rec: dict[str, Any] = {}
    # detector response first: every later measurement assumes a linear detector
    gamma = 1.0
    try:
        rg = response_gamma(x)
        rec["response"] = rg
        if estimate_response and rg["identifiable"] and abs(np.log(rg["gamma"])) > GAMMA_TOLERANCE:
            gamma = rg["gamma"]
            x = np.clip(x, 0, None) ** (1.0 / gamma)
    except FibsynthError as exc:  # e.g. no shot noise: the response is left linear
        rec["response"] = {"not_measured": exc.message}
    rec["response"]["linearised_with"] = gamma
    # noise on the stack as it is (interpolation during alignment would smooth it)
    pg = poisson_gaussian(x)
    rec["noise"] = {**pg, "sigma_wavelet": noise_sigma(x)}
    # charging, scan lines and blur on the stack as it is too: they are per scan line, and the alignment's
    # sub-pixel y shifts mix neighbouring lines (charging measured after the alignment read s 11-14 % and f 7-9 %
    # low on the benchmark's charged stacks). Struck and unstruck lines alternate at random, which reads as line
    # offsets and as fine y detail (line offsets 2.3x high, blur 28 % low with the true offsets): both subtract the
    # charging's share when it is flagged present
    try:
        ch = charging_streaks(x)
    except FibsynthError as exc:  # e.g. too few lines cross the dark phase
        ch = {"present": False, "not_measured": exc.message}
    rec["charging"] = ch
    lines = scan_line_artifacts(x, charging=ch, noise=pg)
    rec["scan_lines"] = lines
    bl = blur_series(x, reference=reference, line_offset_std=lines["offset_std"], charging=ch)
    blur = np.asarray(bl["blur_px"], dtype=np.float64)
    # a slice whose edges do not stand out of the noise (no structure in it, e.g. all epoxy) has no blur (NaN):
    # the blur and its drift come from the other slices, and such a slice's curtains are deconvolved by their mean
    measured = np.isfinite(blur)
    rec["blur"] = {**bl, "unmeasured_slices": np.flatnonzero(~measured).tolist()}
    if measured.any():
        focus = float(blur[measured].std() / _ABS_STD) if measured.sum() > 1 else 0.0
        blur = np.where(measured, blur, blur[measured].mean())
        rec["blur"].update(mean_px=float(blur.mean()), std_px=float(blur[measured].std()))
    else:
        focus, blur = 0.0, np.zeros_like(blur)
        rec["blur"].update(mean_px=None, std_px=None,
                           not_measured="no slice has edges that stand out of the noise: no blur in the model")
    # slice drift first: the other measurements are made on the aligned stack
    xy_step = 0.0
    if align and x.shape[0] > 1:
        shifts = register_slices(x)
        steps = np.diff(shifts, axis=0)
        xy_step = float(np.sqrt((steps ** 2).mean() / 2))
        rec["shifts_px"] = np.round(shifts, 3).tolist()
        x = shift_slices(x, shifts)
    ds = drift_series(x)
    dark, bright = float(np.mean(ds["dark"])), float(np.mean(ds["bright"]))
    if eta_levels is not None:
        e0, e1 = (float(v) for v in eta_levels)
        if not e1 > e0:
            raise FibsynthError(f"expected (epoxy, gold) with gold > epoxy (got {eta_levels})", param="eta_levels")
        gain = (bright - dark) / (e1 - e0)
        offset = dark - gain * e0
    else:
        gain, offset = 1.0, 0.0
    if not gain > 0:
        raise FibsynthError("the bright phase is not brighter than the dark one", param="stack")
    # shading on a copy without drift (each slice's phase levels mapped to 0 and 1) and without curtains (destriped:
    # strong stripes tip the phase classification of a band); shading is multiplicative, so both leave it unchanged
    span = (np.asarray(ds["bright"]) - np.asarray(ds["dark"]))[:, None, None]
    # narrow levels only: the coarse ones take a part of the tilt (a ramp along x, constant along y) for a stripe
    flat = destripe((x - np.asarray(ds["dark"])[:, None, None]) / span + 1.0, levels=SHADING_DESTRIPE_LEVELS)
    try:
        sh = shading_profile(flat)
        sh["offset"] = None if sh["offset"] is None else float((sh["offset"] - 1.0) * span.mean() + dark)
    except FibsynthError as exc:  # e.g. one phase confined to a few columns: no shading measured
        sh = {"depth": 0.0, "power": 2.0, "tilt": 0.0, "offset": None, "not_measured": exc.message}
    rec["shading"] = sh
    # the phase levels were measured under the shading: the detector's gain is that of the unshaded face
    mean_shade = 1.0 - max(sh["depth"], 0.0) / (sh["power"] + 1.0)
    gain_face = gain / mean_shade if eta_levels is not None else gain
    a, b = pg["a"], pg["b"]
    dose = gain_face / a if a > 1e-12 else None
    read = float(np.sqrt(max(b + a * offset, 0.0)))
    stripe_var = stripe_profile_power(x)
    rec["stripe_rms_rows"] = float(np.sqrt(max(stripe_var.mean(), 0.0)))
    rec["stripe_var_per_slice_rows"] = stripe_var.round(8).tolist()
    # curtains from the phase destriper's column profiles, the probe blur divided out (the row-covariance estimate
    # above sees the structure's own column profile: +-12 % between seeds on 16 x 192 x 192, docs/microscope.md)
    cp = curtain_profile_power(x, blur_px=blur)
    stripe_rms = cp["rms"]
    rec["stripe_rms"] = stripe_rms
    rec["stripe_var_per_slice"] = np.asarray(cp["var_per_slice"]).round(8).tolist()
    charging = Charging()
    if estimate_charging and ch["present"] and ch["strength"] > 0:
        # stack units -> yield units, like the curtains: the gain measured under the shading
        charging = Charging(strength=float(min(ch["strength"] / gain, 2.0)),
                            line_fraction=float(ch["line_fraction"]), length_px=float(ch["length_px"]))
    contrast = np.asarray(ds["contrast"])
    black = np.asarray(ds["dark"]) - contrast * (dark - offset) - offset  # black-level drift (output units)
    rec["drift"] = {"contrast": contrast.round(5).tolist(), "brightness": (black - black.mean()).round(6).tolist()}
    det = Detector(electrons_per_pixel=None if dose is None else float(np.clip(dose, 1e-6, 1e9)), efficiency=1.0,
                   gain=float(np.clip(gain_face, 1e-6, 1e3)), dark_offset=float(np.clip(offset, -10, 10)),
                   read_noise=float(min(read, 10.0)), response="gamma" if gamma != 1.0 else "linear",
                   gamma=float(np.clip(gamma, 0.06, 20)), line_offset_std=float(min(lines["offset_std"], 1.0)),
                   line_jitter_px=float(min(lines["jitter_px"], 10.0)))
    model = MicroscopeModel(
        detector=det,
        # stripes are added to eta before the shading: divide by the gain measured under the shading
        curtaining=Curtaining(amplitude=float(min(stripe_rms / gain, 1.0))),
        shading=Shading(depth=float(np.clip(sh["depth"], 0, 0.99)), power=sh["power"],
                        tilt=float(np.clip(sh["tilt"], -1.9, 1.9))),
        drift=Drift(contrast_rms=float(min(contrast.std(), 1.0)), brightness_rms=float(min(black.std(), 1.0)),
                    xy_step_px=float(min(xy_step, 50.0)),
                    blur_px=float(np.clip(blur.mean() - _ABS_MEAN * focus, 0.0, 20.0)),
                    focus_rms_px=float(min(focus, 20.0))),
        charging=charging,
        seed=seed,
    )
    return model, rec
