"""Reference values for the Monte Carlo tests (from /work/shared/reference/backscatter.md; used only here)."""

from __future__ import annotations

import math

ENERGIES = (1.0, 2.0, 4.0, 10.0, 20.0)
# Mott-based codes: CASINO 2 (Czyzewski tables) and PENEPMA (PENELOPE 2008), bulk BSE coefficients.
MOTT_CODES = {
    "Au": {"casino": (0.407, 0.426, 0.441, 0.446, 0.459), "penepma": (0.356, 0.399, 0.428, 0.456, 0.475)},
    "C:2.26": {"casino": (0.076, 0.057, 0.050, 0.038, 0.035), "penepma": (0.101, 0.088, 0.072, 0.063, 0.059)},
}
# screened Rutherford + Joy-Luo (CASINO 2 and an independent code agree)
RUTHERFORD_AU = (0.64, 0.61, 0.58, 0.55, 0.54)


def hunger_kuechler(z: float, e_kev: float) -> float:
    """Hunger & Kuechler, phys. stat. sol. (a) 56 (1979) K45: eta = C(Z) E^m(Z)."""
    m = 0.1382 - 0.9211 / math.sqrt(z)
    lz = math.log(z)
    c = 0.1904 - 0.2236 * lz + 0.1292 * lz**2 - 0.01491 * lz**3
    return c * e_kev**m


def band(material: str, i: int, widen: float = 0.03) -> tuple[float, float]:
    vals = [v[i] for v in MOTT_CODES[material].values()]
    return min(vals) - widen, max(vals) + widen


def overlaps(eta: float, std: float, lo: float, hi: float, k: float = 3.0) -> bool:
    return eta + k * std >= lo and eta - k * std <= hi
