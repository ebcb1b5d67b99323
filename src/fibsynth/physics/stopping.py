"""Continuous slowing-down: the Joy-Luo stopping power and ranges.

Joy & Luo, Scanning 11 (1989) 176: a low-energy modification of Bethe's stopping power that stays finite
and positive down to a few tens of eV,

    dE/ds = -78500 rho Z / (A E) ln(1.166 (E + k J) / J)      keV/cm, E in keV, rho in g/cm^3,
    k = 0.731 + 0.0688 log10(Z),  J = 9.76 Z + 58.5 Z^-0.19 eV.

Compounds follow Bragg additivity: the mass stopping power is the mass-fraction-weighted sum of the
elements' mass stopping powers. Functions return keV/nm (positive numbers).
"""

from __future__ import annotations

import numpy as np

from fibsynth.physics.materials import Material, atomic_weight, mean_ionization_kev

KEV_PER_CM_TO_KEV_PER_NM = 1e-7


def joy_luo_mass_stopping(z: int, e_kev):
    """Element mass stopping power in keV cm^2/g (per unit density)."""
    e = np.asarray(e_kev, dtype=float)
    j = mean_ionization_kev(z)
    k = 0.731 + 0.0688 * np.log10(z)
    return 78500.0 * z / (atomic_weight(z) * e) * np.log(1.166 * (e + k * j) / j)


def stopping_power(material: Material, e_kev):
    """Joy-Luo stopping power of ``material`` in keV/nm (Bragg additivity for compounds)."""
    e = np.asarray(e_kev, dtype=float)
    s = np.zeros_like(e)
    for w, z in zip(material.mass_fractions, material.z):
        s = s + w * joy_luo_mass_stopping(z, e)
    return material.density * s * KEV_PER_CM_TO_KEV_PER_NM


def csda_range_nm(material: Material, e_kev: float, e_min_kev: float = 0.05, n: int = 4000) -> float:
    """CSDA path length from ``e_kev`` down to ``e_min_kev`` (nm), by quadrature of 1/S in log energy."""
    ln = np.linspace(np.log(e_min_kev), np.log(e_kev), n)
    e = np.exp(ln)
    return float(np.trapezoid(e / stopping_power(material, e), ln))


def kanaya_okayama_range_nm(material: Material, e_kev: float) -> float:
    """Kanaya-Okayama range R = 0.0276 A E^1.67 / (Z^0.889 rho) um, with mass-weighted Z and A for compounds."""
    z = material.mean_z
    a = material.mean_a
    return 0.0276 * a * e_kev**1.67 / (z**0.889 * material.density) * 1e3
