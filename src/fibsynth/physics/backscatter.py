"""Analytic backscatter: Hunger-Kuechler eta(Z, E) and the Kanaya-Okayama electron range.

Hunger & Kuechler, phys. stat. sol. (a) 56 (1979) K45, fitted to measurements at 4-40 keV (E in keV)::

    eta(Z, E) = C(Z) * E**m(Z)
    m(Z) = 0.1382 - 0.9211 / sqrt(Z)
    C(Z) = 0.1904 - 0.2236 ln Z + 0.1292 (ln Z)**2 - 0.01491 (ln Z)**3

This is the published product form. The paper this project implements typesets its Eq. 1 as
``E**(m(Z) * C(Z))``, which gives eta ~ 1 for every element; that is a typesetting slip and is not used.
Below 4 keV the formula is an extrapolation (see ``docs/fastsim.md``).

Compounds (``compound=``):

* ``"castaing"`` (default): eta = sum_i w_i eta(Z_i, E), mass fractions w_i -- Castaing's rule (Castaing 1951;
  Heinrich, 4th ICXOM 1966), the usual mixing rule for backscatter coefficients of compounds and alloys.
* ``"mean_z"``: eta(Zbar, E) with the mass-fraction-weighted mean atomic number Zbar = sum_i w_i Z_i.

Both agree for elements. For epoxy (C, H, N, O) they differ: hydrogen has eta(1, E) < 0 from the fit (m(1) and C(1)
are outside the fitted range, Z >= 4 or so), so with ``"castaing"`` each element's eta is clipped at 0 first.
"""

from __future__ import annotations

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.physics.materials import Material, get_material
from fibsynth.physics.stopping import kanaya_okayama_range_nm as _ko_range

COMPOUND_RULES = ("castaing", "mean_z")


def hk_m(z):
    """Exponent m(Z) of Hunger-Kuechler."""
    z = np.asarray(z, dtype=float)
    return 0.1382 - 0.9211 / np.sqrt(z)


def hk_c(z):
    """Prefactor C(Z) of Hunger-Kuechler."""
    lz = np.log(np.asarray(z, dtype=float))
    return 0.1904 - 0.2236 * lz + 0.1292 * lz**2 - 0.01491 * lz**3


def hunger_kuechler_z(z, e_kev):
    """eta(Z, E) = C(Z) E^m(Z) for (possibly non-integer) atomic number(s) ``z`` and energy(ies) ``e_kev``.

    Broadcasts; returns a float for scalar inputs.
    """
    z = np.asarray(z, dtype=float)
    e = np.asarray(e_kev, dtype=float)
    if np.any(z < 1) or np.any(z > 100):
        raise FibsynthError(f"Hunger-Kuechler: Z must be in [1, 100] (got {z})")
    if np.any(e <= 0):
        raise FibsynthError(f"Hunger-Kuechler: energy must be > 0 keV (got {e})")
    out = hk_c(z) * e ** hk_m(z)
    return float(out) if out.ndim == 0 else out


def hunger_kuechler(material: str | Material, e_kev, compound: str = "castaing"):
    """Bulk backscatter coefficient of ``material`` (element or compound) at ``e_kev`` (see module docstring)."""
    if compound not in COMPOUND_RULES:
        raise FibsynthError(f"compound rule must be one of {', '.join(COMPOUND_RULES)} (got {compound!r})")
    mat = get_material(material)
    if len(mat.z) == 1:
        return hunger_kuechler_z(mat.z[0], e_kev)
    if compound == "mean_z":
        return hunger_kuechler_z(mat.mean_z, e_kev)
    e = np.asarray(e_kev, dtype=float)
    out = np.zeros_like(e)
    for w, z in zip(mat.mass_fractions, mat.z):
        out = out + w * np.maximum(hunger_kuechler_z(z, e), 0.0)
    return float(out) if out.ndim == 0 else out


def kanaya_okayama_range_nm(material: str | Material, e_kev) -> float | np.ndarray:
    """Kanaya-Okayama range R = 0.0276 A E^1.67 / (Z^0.889 rho) um, returned in nm; mass-weighted Z and A for
    compounds (wraps :func:`fibsynth.physics.stopping.kanaya_okayama_range_nm`)."""
    mat = get_material(material)
    e = np.asarray(e_kev, dtype=float)
    if np.any(e <= 0):
        raise FibsynthError(f"Kanaya-Okayama: energy must be > 0 keV (got {e_kev})")
    out = _ko_range(mat, e)
    return float(out) if np.ndim(out) == 0 else np.asarray(out)


def effective_z(material: str | Material) -> float:
    """Atomic number used as the network input for a material: Z for an element, the mass-fraction-weighted
    mean Z for a compound (the same convention as :attr:`Material.mean_z`)."""
    mat = get_material(material)
    return float(mat.z[0]) if len(mat.z) == 1 else mat.mean_z
