"""The measured ligament-factor table c(phi) = mean ligament diameter / wavelength of leveled-wave structures.

Measured by ``python -m fibsynth.structure.calibration`` (see that module for the method); read at run time by
:mod:`fibsynth.structure.leveled_wave`. Between entries ``c`` is interpolated linearly.
"""

from __future__ import annotations

import numpy as np

# ---- measured table (printed by python -m fibsynth.structure.calibration) -----------------------------
# solid fraction -> c = mean ligament diameter / wavelength
# Measured with: python -m fibsynth.structure.calibration  (defaults below; 231 s on 2 shared cores)
CALIBRATION_SETUP = {
    "wavelength_voxels": 24.0,
    "volume": [128, 128, 128],
    "voxel_nm": 1.0,
    "waves": 1000,
    "seeds": [0, 1, 2],
    "local_thickness": "fibsynth.metrics.thickness.mean_ligament_diameter (Hildebrand-Ruegsegger, voxel-centre EDT)",
    "note": "mean over 3 seeds; the +- comments are the seed-to-seed standard deviations",
}
LIGAMENT_FACTOR_TABLE: dict[float, float] = {
    0.05: 0.3741,  # +- 0.0033
    0.10: 0.4182,  # +- 0.0040
    0.15: 0.4526,  # +- 0.0054
    0.20: 0.4839,  # +- 0.0052
    0.25: 0.5129,  # +- 0.0047
    0.30: 0.5401,  # +- 0.0046
    0.35: 0.5677,  # +- 0.0044
    0.40: 0.5956,  # +- 0.0048
    0.45: 0.6245,  # +- 0.0050
    0.50: 0.6546,  # +- 0.0054
    0.55: 0.6865,  # +- 0.0055
    0.60: 0.7204,  # +- 0.0062
    0.65: 0.7580,  # +- 0.0075
    0.70: 0.7998,  # +- 0.0080
    0.75: 0.8489,  # +- 0.0081
    0.80: 0.9066,  # +- 0.0070
    0.85: 0.9840,  # +- 0.0094
    0.90: 1.1178,  # +- 0.0035
    0.95: 1.4161,  # +- 0.0126
}
# ---- end of measured table ---------------------------------------------------------------------------


def ligament_factor(solid_fraction: float) -> float:
    """``c(phi) = d / lambda`` interpolated linearly in the calibration table (clamped at its ends,
    0.05 and 0.95; outside that range the ligament size is not calibrated)."""
    phis = np.array(sorted(LIGAMENT_FACTOR_TABLE))
    cs = np.array([LIGAMENT_FACTOR_TABLE[p] for p in phis])
    return float(np.interp(solid_fraction, phis, cs))


def calibrated_range() -> tuple[float, float]:
    phis = sorted(LIGAMENT_FACTOR_TABLE)
    return (phis[0], phis[-1]) if phis else (0.0, 1.0)
