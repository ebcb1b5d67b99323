"""The microscope stage: the artifacts of a real FIB-SEM in simulated stacks (forward), their correction in real
stacks (inverse), and estimators that match the forward model to a real microscope.

Arrays in, arrays out (z, y, x); settings are small pydantic models. See docs/microscope.md.
"""

from fibsynth.microscope.config import (
    Charging,
    CorrectConfig,
    Curtaining,
    Detector,
    Drift,
    Fiducial,
    MicroscopeModel,
    Shading,
)
from fibsynth.microscope.estimate import (
    blur_series,
    curtain_profile_power,
    drift_series,
    fit_model,
    noise_sigma,
    phase_levels,
    poisson_gaussian,
    response_gamma,
    scan_line_artifacts,
    shading_profile,
    stripe_profile_power,
)
from fibsynth.microscope.measure import charging_streaks
from fibsynth.microscope.fiducial import FiducialBand, find_fiducial_region
from fibsynth.microscope.forward import (
    MicroscopeResult,
    apply,
    fiducial_band,
    jitter_structure,
    jittered_z,
    sample_at_z,
    shading_field,
    simple_degrade,
    stripe_profiles,
)
from fibsynth.microscope.inverse import (
    SliceChain,
    align,
    as_full_scale,
    check_region,
    parse_region,
    correct,
    correct_drift,
    correct_shading,
    denoise,
    destripe,
    destripe_method,
    destripe_phase_slice,
    destripe_slice,
    phase_stripe_profile,
    register_slices,
    runs_along_y,
    shading_background,
    shift_slices,
)
from fibsynth.microscope.panel import before_after_figure, before_after_png

__all__ = [
    "Charging", "CorrectConfig", "Curtaining", "Detector", "Drift", "Fiducial", "MicroscopeModel", "MicroscopeResult", "Shading",
    "FiducialBand", "find_fiducial_region",
    "align", "apply", "fiducial_band", "as_full_scale", "blur_series", "charging_streaks", "curtain_profile_power", "response_gamma", "runs_along_y",
    "scan_line_artifacts", "before_after_figure", "before_after_png", "correct", "correct_drift",
    "correct_shading", "denoise", "destripe", "destripe_phase_slice", "destripe_slice", "drift_series", "fit_model", "jitter_structure", "jittered_z",
    "noise_sigma", "phase_levels", "phase_stripe_profile", "poisson_gaussian", "register_slices", "sample_at_z", "shading_background",
    "shading_field", "shading_profile", "shift_slices", "simple_degrade", "stripe_profile_power", "stripe_profiles",
    "SliceChain", "check_region", "parse_region", "destripe_method",
]
