"""Elastic scattering cross sections for electrons in the 0.1-30 keV range.

Two models, both with an analytic angular sampling rule ``cos(theta) = 1 - 2 a R / (1 + a - R)`` (R uniform in
[0, 1)), which inverts the screened-Rutherford angular distribution with screening parameter ``a``:

``mott`` (default): the empirical fit to tabulated Mott (partial-wave) cross sections by
    R. Browning, T. Z. Li, B. Chui, J. Ye, R. F. W. Pease, Z. Czyzewski, D. C. Joy,
    "Universal elastic scattering cross sections for electrons in the range 1-100 keV",
    J. Appl. Phys. 76 (1994) 2016-2022, as used in Joy's and NIST's (MONSEL / DTSA-II EPQ library,
    ``BrowningEmpiricalCrossSection``) Monte Carlo codes.
    Total cross section (cm^2, E in keV)::

        sigma = 3.0e-18 Z^1.7 / (E + 0.005 Z^1.7 E^0.5 + 0.0007 Z^2 / E^0.5)

    Angular distribution: a mixture of a screened-Rutherford part (screening ``a = 7.0e-3 / E``) and an
    isotropic part. With ``R_r = 300 E^(1 - Z/2000) / Z + Z^3 / (3e5 E)`` the Rutherford-like branch is taken
    with probability ``R_r / (1 + R_r)``, otherwise ``cos(theta) = 1 - 2R``. The ``E^(1 - Z/2000)`` exponent
    follows Browning et al. 1994 as transcribed by H. Demers (``Models/Browning.py``, function
    ``ratio_browning1994``); NIST's EPQ implementation uses ``300 E / Z`` (the difference is < 4 % in R_r
    for gold at 1-20 keV).

``rutherford``: Joy's textbook screened Rutherford model (D. C. Joy, *Monte Carlo Modeling for Electron
    Microscopy and Microanalysis*, OUP 1995, ch. 3), relativistically corrected::

        a = 3.4e-3 Z^0.67 / E
        sigma = 5.21e-21 (Z^2 / E^2) (4 pi / (a (1 + a))) ((E + 511) / (E + 1022))^2   cm^2

    It overestimates gold's backscatter coefficient by ~45 % at 1-4 keV (see docs/montecarlo.md); it is kept
    for comparison (``--elastic rutherford``).

All functions take Z (int or array) and E in keV and return cross sections in nm^2.
"""

from __future__ import annotations

import numpy as np

CM2_TO_NM2 = 1e14
MODELS = ("mott", "rutherford")


def browning_total_nm2(z, e_kev):
    z = np.asarray(z, dtype=float)
    e = np.asarray(e_kev, dtype=float)
    z17 = z**1.7
    re = np.sqrt(e)
    return 3.0e-18 * z17 / (e + 0.005 * z17 * re + 0.0007 * z * z / re) * CM2_TO_NM2


def browning_rutherford_fraction(z, e_kev):
    """Probability that a Browning collision samples the screened-Rutherford branch (else isotropic)."""
    z = np.asarray(z, dtype=float)
    e = np.asarray(e_kev, dtype=float)
    r = 300.0 * e ** (1.0 - z / 2000.0) / z + z**3 / (3.0e5 * e)
    return r / (1.0 + r)


def browning_screening(z, e_kev):
    return 7.0e-3 / np.asarray(e_kev, dtype=float) + 0.0 * np.asarray(z, dtype=float)


def rutherford_screening(z, e_kev):
    return 3.4e-3 * np.asarray(z, dtype=float) ** 0.67 / np.asarray(e_kev, dtype=float)


def rutherford_total_nm2(z, e_kev):
    z = np.asarray(z, dtype=float)
    e = np.asarray(e_kev, dtype=float)
    a = rutherford_screening(z, e)
    rel = ((e + 511.0) / (e + 1022.0)) ** 2
    return 5.21e-21 * (z * z / (e * e)) * (4.0 * np.pi / (a * (1.0 + a))) * rel * CM2_TO_NM2


def total_cross_section_nm2(model: str, z, e_kev):
    if model == "mott":
        return browning_total_nm2(z, e_kev)
    if model == "rutherford":
        return rutherford_total_nm2(z, e_kev)
    raise ValueError(f"unknown elastic model {model!r}")


def angular_parameters(model: str, z, e_kev):
    """(probability of the screened branch, screening coefficient c with a = c / E) for ``model``."""
    e = np.asarray(e_kev, dtype=float)
    if model == "mott":
        return browning_rutherford_fraction(z, e), 7.0e-3 + 0.0 * np.asarray(z, dtype=float)
    if model == "rutherford":
        return np.ones(np.broadcast(np.asarray(z), e).shape), 3.4e-3 * np.asarray(z, dtype=float) ** 0.67
    raise ValueError(f"unknown elastic model {model!r}")


def sample_cos_theta(model: str, z: float, e_kev: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """Reference (numpy) sampler of cos(theta), for tests against the numba kernel's sampler."""
    p, c = angular_parameters(model, z, e_kev)
    a = float(c) / e_kev
    r1 = rng.random(n)
    r2 = rng.random(n)
    screened = 1.0 - 2.0 * a * r2 / (1.0 + a - r2)
    iso = 1.0 - 2.0 * r2
    return np.where(r1 < p, screened, iso)
