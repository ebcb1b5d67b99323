"""Elastic scattering cross sections for electrons in the 0.1-30 keV range.

Models (``MODELS``). ``mott`` (default) means :data:`MOTT_DEFAULT` (``mott-pwa``). ``mott-pwa``: Dirac
partial-wave Mott cross sections tabulated by ``fibsynth.physics.mott_tables`` (sigma_el(E) and the inverse CDF of
mu per element), used through ``montecarlo/tables.py``. Two analytic models, both with an angular rule ``cos(theta) = 1 - 2 a R / (1 + a - R)`` (R uniform in
[0, 1)), which inverts the screened-Rutherford angular distribution with screening parameter ``a``:

``browning``: the empirical fit to tabulated Mott (partial-wave) cross sections by
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

``mott-pwa``: Dirac partial-wave (Mott) cross sections, tabulated by ``fibsynth.physics.mott_tables``
    (sigma_el(E) and the inverse CDF of mu per element); used through ``montecarlo.tables`` only.

Every model is sampled by the transport kernel from a tabulated inverse CDF of mu = (1 - cos theta)/2
(``montecarlo/tables.py``); the analytic rules here build those tables (:func:`mixture_inverse_cdf`) and are
the reference they are tested against (:func:`mixture_moments`).

All functions take Z (int or array) and E in keV and return cross sections in nm^2.
"""

from __future__ import annotations

import numpy as np

CM2_TO_NM2 = 1e14
MODELS = ("mott", "browning", "rutherford", "mott-pwa")
# What ``mott`` means: the partial-wave tables, which put bulk eta inside the Mott-code band at every energy
# (docs/montecarlo.md); Browning's empirical fit stays available as ``browning``.
MOTT_DEFAULT = "mott-pwa"


def canonical_model(model: str) -> str:
    """``mott`` -> the default Mott-quality model; validate the name."""
    if model not in MODELS:
        raise ValueError(f"elastic model must be one of {MODELS} (got {model!r})")
    return MOTT_DEFAULT if model == "mott" else model


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
    model = canonical_model(model)
    if model == "browning":
        return browning_total_nm2(z, e_kev)
    if model == "rutherford":
        return rutherford_total_nm2(z, e_kev)
    raise ValueError(f"unknown elastic model {model!r}")


def angular_parameters(model: str, z, e_kev):
    """(probability of the screened branch, screening coefficient c with a = c / E) for ``model``."""
    e = np.asarray(e_kev, dtype=float)
    model = canonical_model(model)
    if model == "browning":
        return browning_rutherford_fraction(z, e), 7.0e-3 + 0.0 * np.asarray(z, dtype=float)
    if model == "rutherford":
        return np.ones(np.broadcast(np.asarray(z), e).shape), 3.4e-3 * np.asarray(z, dtype=float) ** 0.67
    raise ValueError(f"unknown elastic model {model!r}")


def sample_cos_theta(model: str, z: float, e_kev: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """Reference (numpy) sampler of cos(theta), for tests against the numba kernel's sampler (``mott-pwa``:
    the partial-wave table's own recipe, ``MottTables.sample_mu``)."""
    if canonical_model(model) == "mott-pwa":
        from fibsynth.physics.mott_tables import load_mott_tables

        return 1.0 - 2.0 * load_mott_tables([int(z)]).sample_mu(0, 1000.0 * float(e_kev), rng, n)
    p, c = angular_parameters(model, z, e_kev)
    a = float(c) / e_kev
    r1 = rng.random(n)
    r2 = rng.random(n)
    screened = 1.0 - 2.0 * a * r2 / (1.0 + a - r2)
    iso = 1.0 - 2.0 * r2
    return np.where(r1 < p, screened, iso)


def mixture_parameters(model: str, z: float, e_kev: float) -> tuple[float, float]:
    """(p, s): the angular distribution of ``model`` is p * screened Rutherford(s) + (1 - p) * isotropic in
    mu = (1 - cos theta)/2, with s the screening parameter (``a`` above)."""
    p, c = angular_parameters(model, z, e_kev)
    return float(p), float(c) / float(e_kev)


def mixture_inverse_cdf(v, p: float, s: float):
    """Exact inverse of F(mu) = p (1 + s) mu / (s + mu) + (1 - p) mu at probabilities v (numerically stable
    roots of (1 - p) mu^2 + (s + p - v) mu - s v = 0; p = 1 gives mu = s v / (1 + s - v))."""
    v = np.asarray(v, dtype=float)
    b = s + p - v
    q = 1.0 - p
    d = np.sqrt(b * b + 4.0 * q * s * v)
    with np.errstate(divide="ignore", invalid="ignore"):
        small = 2.0 * s * v / (b + d)  # stable for b > 0
        large = (d - b) / (2.0 * q) if q > 0 else small  # stable for b <= 0
    return np.clip(np.where(b > 0, small, large), 0.0, 1.0)


def mixture_moments(p: float, s: float) -> tuple[float, float]:
    """Exact <mu> and <mu^2> of the mixture (screened Rutherford: <mu> = s[(1 + s) ln(1 + 1/s) - 1],
    <mu^2> = s (1 + s) [1 - 2 s ln(1 + 1/s) + s / (1 + s)]; isotropic: 1/2, 1/3)."""
    lg = np.log1p(1.0 / s)
    m1 = s * ((1.0 + s) * lg - 1.0)
    m2 = s * (1.0 + s) * (1.0 - 2.0 * s * lg + s / (1.0 + s))
    return p * m1 + (1.0 - p) / 2.0, p * m2 + (1.0 - p) / 3.0
