"""Published measurements of the total secondary-electron yield delta(E) of C, Al, Si, Cu and Au (issue 17, item 3:
the Monte Carlo's SE yields are compared with them in ``benchmarks/se_yield.py``, ``tests/physics/
test_mc_secondary.py`` and docs/montecarlo.md, "Secondary electrons").

Al, Si, Cu, Au: the measured data sets of D. C. Joy, "A database on electron-solid interactions", revision 01-01
(2001), section 1(a) "Secondary electron yield data" (described in D. C. Joy, Scanning 17 (1995) 270,
doi:10.1002/sca.4950170501; the compilation was distributed as http://web.utk.edu/~srcutk/database.doc, archived at
https://web.archive.org/web/2010id_/http://web.utk.edu/~srcutk/database.doc). The numbers were read from the
transcription of that file in the public repository 2AMLogic/lindhard (``validation/data/se_yield/*.json``, made by
its ``validation/data/digitize/joy_se_yield_ingest.py``: the tables' (E, delta) pairs as printed, nothing fitted);
the Word file itself was not opened here. Only points at 0.5-5 keV (and the few just below, for the peak) are kept;
every set of the four elements that has such a point is listed, with Joy's reference number. The compilation states
neither the angle of incidence nor the surface state of any set (most are "as received" surfaces; contamination
changes the level of delta, which is why the sets scatter by a factor 2-4 at 1 keV), and counts as SE the electrons
below 50 eV ("in some early work 0 to 70 or even 0 to 100 eV").

Carbon (graphite): the seven experimental sets compiled in the USTC SEY database,
http://micro.ustc.edu.cn/database/SEY/expdata/C.html (Mehnaz, Yang, Da and Ding), kept as the spread (min, max) at
the energies where at least two sets have a value (0.155 at 0.5 keV in set 4 left out: a transcription error next
to 0.900-1.136 in the same set).

These are measurements, not fits: no model parameter was adjusted to them (``secondary.SCALES`` come from the CRC
handbook's delta_m and E_m only).
"""

from __future__ import annotations

import math
from typing import NamedTuple

JOY_2001 = ("D. C. Joy, A database on electron-solid interactions, revision 01-01 (2001), section 1(a); "
            "Scanning 17 (1995) 270")
USTC_C = "USTC SEY database, http://micro.ustc.edu.cn/database/SEY/expdata/C.html (Mehnaz, Yang, Da, Ding)"


class MeasuredSet(NamedTuple):
    """One original measurement set: Joy's reference number, the reference as printed by Joy, (E keV, delta)."""

    ref: int
    citation: str
    points: tuple[tuple[float, float], ...]


_REIMER = "L. Reimer and C. Tollkamp, Scanning 3 (1980) 35"
_MONCRIEFF = "D. A. Moncrieff and P. R. Barker, Scanning 1 (1976/78) 195"
_BONGELER = "R. Boengeler, U. Golla, M. Kaessens, L. Reimer et al., Scanning 15 (1993) 1"
_SHIMIZU = "R. Shimizu, J. Appl. Phys. 45 (1974) 2107"
_KANTER = "Kanter, Phys. Rev. 121 (1961) (printed by Joy as 'Kanter M, p. 1677')"
_PHILIBERT = "J. Philibert and E. Weinryb, Proc. 3rd Conf. X-ray Optics and Microanalysis (1963) 163"
_BRUINING = "H. Bruining and J. H. de Boer, Physica 5 (1938) 17"
_KANAYA72 = "K. Kanaya and H. Kawakatsu, J. Phys. D 5 (1972) 1727"
_KANAYA84 = "K. Kanaya and S. Ono, in Electron Beam Interactions with Solids, ed. D. Kyser (SEM Inc., 1984) 69"
_WITTRY = "D. B. Wittry, Proc. 4th Conf. X-ray Optics and Microanalysis (Hermann, Paris, 1966) 168"
_WHETTEN = "N. R. Whetten, Methods of Experimental Physics IV (Academic Press, 1962)"
_BRONSTEIN = "I. M. Bronstein and B. S. Fraiman, Vtorichnaya Elektronnaya Emissiya (Nauka, Moscow, 1969) 340"
_ROTHWELL = "T. E. Rothwell and P. E. Russell, Microbeam Analysis 1988 (San Francisco Press) 149"
_SUSZCYNSKY = "D. M. Suszcynsky, J. E. Borovsky and C. K. Goertz, J. Geophys. Res. 97 (1992) 2611"
_KOSHIKAWA = "T. Koshikawa and R. Shimizu, J. Phys. D 6 (1973) 1369"
_SEPTIER = "A. Septier and M. Belgaroui, IEEE Trans. Electr. Insul. EI-20 (1985) 725"
_DIONNE73 = "G. F. Dionne, J. Appl. Phys. 44 (1973) 5361"
_DIONNE75 = "G. F. Dionne, J. Appl. Phys. 46 (1975) 3347"
_JOY96 = "D. C. Joy and C. S. Joy, SEMATECH report TT 96063130A-TR (1996), amorphous Si"

#: Joy's database, section 1(a): every set of the element with a point at 0.4-5 keV (points below 0.4 keV dropped)
JOY_SE_YIELD: dict[str, tuple[MeasuredSet, ...]] = {
    "Al": (
        MeasuredSet(2, _REIMER, ((1.0, 1.58), (3.0, 1.00), (5.0, 0.501))),
        MeasuredSet(3, _MONCRIEFF, ((2.5, 0.658), (5.0, 0.416))),
        MeasuredSet(4, _BONGELER, ((0.513, 3.179), (0.8, 2.44), (1.0, 2.10), (1.2, 1.93), (1.4, 1.69), (1.6, 1.613),
                                   (1.8, 1.39), (2.0, 1.32), (2.5, 1.06), (3.0, 0.959), (3.5, 0.854), (4.0, 0.752),
                                   (5.0, 0.679))),
        MeasuredSet(5, _SHIMIZU, ((1.0, 1.666), (2.0, 0.8823), (3.0, 0.6196), (4.0, 0.5059), (5.0, 0.439))),
        MeasuredSet(14, _KANTER, ((2.0, 1.0), (3.0, 0.73), (4.0, 0.60), (5.0, 0.53))),
        MeasuredSet(7, _PHILIBERT, ((5.0, 0.252),)),
        MeasuredSet(21, _BRUINING, ((0.4, 2.17), (0.5, 2.10), (0.6, 1.98))),
        MeasuredSet(68, _WITTRY, ((5.0, 0.419),)),
        MeasuredSet(106, _BRONSTEIN, ((0.41, 0.64), (0.6, 0.58), (0.808, 0.5), (1.0, 0.45), (2.0, 0.304),
                                      (3.0, 0.228), (4.0, 0.18))),
    ),
    "Si": (
        MeasuredSet(2, _REIMER, ((1.0, 1.594), (3.0, 0.769), (5.0, 0.49))),
        MeasuredSet(10, _DIONNE73, ((0.55, 0.98), (0.77, 0.95), (1.10, 0.89), (1.32, 0.84), (1.65, 0.79))),
        MeasuredSet(25, _DIONNE75, ((0.4, 1.167), (0.5, 1.117), (0.6, 1.083), (0.7, 1.04), (0.8, 1.00), (0.9, 0.98),
                                    (1.0, 0.937))),
        MeasuredSet(68, _WITTRY, ((5.0, 0.326), (5.0, 0.246))),
        MeasuredSet(69, _ROTHWELL, ((0.5, 0.87), (0.6, 0.72), (0.7, 0.68), (0.8, 0.66), (0.9, 0.66), (1.0, 0.6),
                                    (1.1, 0.54), (1.2, 0.56), (1.3, 0.56), (1.4, 0.52), (1.5, 0.51), (1.6, 0.4),
                                    (1.7, 0.52), (1.8, 0.28), (1.9, 0.35), (2.0, 0.43), (2.2, 0.48), (2.4, 0.31),
                                    (2.6, 0.38), (2.8, 0.29), (3.0, 0.31), (3.2, 0.29), (3.4, 0.28), (3.6, 0.28),
                                    (3.8, 0.25), (4.0, 0.25), (4.5, 0.26), (5.0, 0.24))),
        MeasuredSet(70, _WHETTEN, ((0.5, 1.0),)),
        MeasuredSet(106, _BRONSTEIN, ((0.4, 0.735), (0.6, 0.607), (0.8, 0.523), (1.0, 0.44), (2.0, 0.273),
                                      (3.0, 0.194), (4.0, 0.15))),
        MeasuredSet(86, _JOY96, ((0.5, 1.42), (0.7, 1.22), (1.0, 0.98), (1.5, 0.79), (2.0, 0.64), (3.0, 0.53),
                                 (4.0, 0.44), (5.0, 0.367))),
    ),
    "Cu": (
        MeasuredSet(2, _REIMER, ((1.0, 1.59), (5.0, 0.69))),
        MeasuredSet(3, _MONCRIEFF, ((2.5, 0.75), (5.0, 0.478))),
        MeasuredSet(4, _BONGELER, ((0.5, 2.11), (0.8, 1.869), (1.0, 1.723), (1.2, 1.469), (1.4, 1.44), (1.6, 1.37),
                                   (1.8, 1.194), (2.0, 1.117), (2.5, 1.04), (3.0, 0.893), (3.5, 0.813), (4.0, 0.752),
                                   (5.0, 0.641))),
        MeasuredSet(5, _SHIMIZU, ((0.5, 1.009), (1.0, 0.8922), (1.5, 0.7255), (2.0, 0.5882), (3.0, 0.4216),
                                  (4.0, 0.3255), (5.0, 0.2745))),
        MeasuredSet(21, _BRUINING, ((0.4, 1.23), (0.6, 1.26), (0.8, 1.276), (1.0, 1.23))),
        MeasuredSet(23, _KOSHIKAWA, ((0.5, 1.41), (1.0, 1.328), (2.0, 0.992), (3.0, 0.813), (4.0, 0.724),
                                     (5.0, 0.649))),
        MeasuredSet(26, _KANAYA72, ((0.55, 1.4),)),
        MeasuredSet(68, _WITTRY, ((5.0, 0.39), (5.0, 0.291))),
        MeasuredSet(70, _WHETTEN, ((0.6, 1.3), (1.5, 1.0))),
        MeasuredSet(81, _SEPTIER, ((0.4, 1.492), (0.5, 1.404), (0.7, 1.277), (1.0, 1.097), (1.5, 0.925),
                                   (2.0, 0.859))),
        MeasuredSet(106, _BRONSTEIN, ((0.4, 0.933), (0.6, 1.024), (0.8, 1.034), (1.02, 0.993), (1.5, 0.881),
                                      (2.02, 0.771), (2.5, 0.702), (3.0, 0.61), (4.0, 0.498))),
    ),
    "Au": (
        MeasuredSet(2, _REIMER, ((1.0, 1.65), (3.0, 1.07), (5.0, 0.793))),
        MeasuredSet(3, _MONCRIEFF, ((2.5, 1.0), (5.0, 0.72))),
        MeasuredSet(4, _BONGELER, ((0.5, 1.55), (0.8, 1.20), (1.0, 1.12), (1.2, 1.104), (1.4, 1.01), (1.6, 0.934),
                                   (1.8, 0.85), (2.0, 0.709), (2.5, 0.68), (3.0, 0.59), (3.5, 0.546), (4.0, 0.498),
                                   (5.0, 0.437))),
        MeasuredSet(9, _KANAYA84, ((0.78, 0.80),)),
        MeasuredSet(26, _KANAYA72, ((0.8, 1.70),)),
        MeasuredSet(68, _WITTRY, ((5.0, 0.55), (5.0, 0.313))),
        MeasuredSet(69, _ROTHWELL, ((0.4, 1.45), (0.52, 1.42), (0.7, 1.54), (0.8, 1.51), (0.9, 1.46), (1.0, 1.46),
                                    (1.5, 1.10), (2.0, 1.05), (2.5, 0.94), (3.0, 0.90), (3.5, 0.8))),
        MeasuredSet(70, _WHETTEN, ((0.8, 1.40),)),
        MeasuredSet(106, _BRONSTEIN, ((0.4, 1.352), (0.6, 1.218), (0.8, 1.395), (1.0, 1.369), (2.0, 1.212),
                                      (3.0, 1.043), (4.0, 0.912))),
        MeasuredSet(115, _SUSZCYNSKY, ((1.87, 0.809), (2.2, 0.729), (2.6, 0.65), (3.06, 0.59), (3.81, 0.52),
                                       (4.7, 0.46))),
    ),
}

#: graphite, USTC SEY database: measured spread (min, max) at E (keV), see the module docstring
CARBON_SPREAD = {0.5: (0.669, 1.02), 1.0: (0.467, 0.990), 2.0: (0.308, 0.527), 3.0: (0.209, 0.400),
                 5.0: (0.164, 0.315)}

#: carbon: the USTC SEY database's experimental sets [1]-[6] one by one (se17; the page numbers its sets [1]-[7]
#: and gives no citation with them in the copy read; ``ref`` is that number), points at 0.4-5 keV as printed
#: there. Set [4]'s 0.155 at 0.5 keV is left out (a transcription error next to 0.900-1.136 in the same set); set
#: [7] (0.015-0.48 keV in the copy read) has no point in the compared range. The maxima below 0.4 keV, for the
#: record: [1] 0.850 at 0.30 keV, [2] 0.707 at 0.35, [4] 1.136 at 0.80 (1.000 at 0.35), [6] 1.100 at 0.30.
#: At the compared energies the min-max of these sets is :data:`CARBON_SPREAD` (tested).
USTC_C_SETS: tuple[MeasuredSet, ...] = (
    MeasuredSet(1, USTC_C + " [1]", ((0.4, 0.824), (0.6, 0.745), (0.8, 0.656), (1.0, 0.543), (2.0, 0.308),
                                     (3.0, 0.209))),
    MeasuredSet(2, USTC_C + " [2]", ((0.4, 0.701), (0.45, 0.685), (0.5, 0.669), (0.55, 0.642), (0.6, 0.617),
                                     (0.65, 0.603), (0.7, 0.584), (0.75, 0.561), (0.8, 0.539), (0.85, 0.531),
                                     (0.9, 0.506), (0.95, 0.494), (1.0, 0.467), (1.2, 0.446), (1.4, 0.418),
                                     (1.5, 0.380), (1.8, 0.354), (2.0, 0.329), (2.5, 0.296), (3.0, 0.270),
                                     (3.5, 0.247), (4.0, 0.228), (4.5, 0.216), (5.0, 0.207))),
    MeasuredSet(3, USTC_C + " [3]", ((2.5, 0.334), (5.0, 0.211))),
    MeasuredSet(4, USTC_C + " [4]", ((0.8, 1.136), (1.0, 0.990), (1.2, 0.869), (1.4, 0.709), (1.6, 0.655),
                                     (1.8, 0.595), (2.0, 0.527), (2.5, 0.442), (3.0, 0.400), (3.5, 0.316),
                                     (4.0, 0.316), (5.0, 0.315))),
    MeasuredSet(5, USTC_C + " [5]", ((5.0, 0.177), (5.0, 0.164))),
    MeasuredSet(6, USTC_C + " [6]", ((0.4, 0.980), (0.5, 1.020), (0.6, 0.970), (0.7, 0.950), (0.8, 0.950),
                                     (0.9, 0.900), (1.0, 0.720), (1.5, 0.390), (2.0, 0.360), (3.0, 0.330),
                                     (4.0, 0.250))),
)

#: the energies of the comparison (keV): those of the issue's range 0.5-5 keV at which every element has data
COMPARE_ENERGIES = (0.5, 1.0, 2.0, 3.0, 5.0)

_ALIASES = {"graphite": "C", "C": "C", "Al": "Al", "Si": "Si", "Cu": "Cu", "Au": "Au"}


def measured_sets(element: str) -> tuple[MeasuredSet, ...]:
    """The measured sets of ``element``: Joy's database (Al, Si, Cu, Au) or the USTC carbon sets (C, graphite)."""
    el = _ALIASES.get(element, element)
    return USTC_C_SETS if el == "C" else JOY_SE_YIELD[el]


def set_value(s: MeasuredSet, energy_kev: float, rel_tol: float = 0.05, max_gap: float = 2.0) -> list[float]:
    """The values of set ``s`` at ``energy_kev``: its points within ``rel_tol`` of that energy (as
    :func:`measured_points`); where it has none, but points on both sides no more than a factor ``max_gap`` apart
    in energy, the log-log interpolation between the nearest two (a set measured at 0.41 and 0.6 keV has a value
    at 0.5 keV); else none."""
    near = [d for e, d in s.points if abs(e - energy_kev) <= rel_tol * energy_kev]
    if near:
        return near
    below = [(e, d) for e, d in s.points if e < energy_kev]
    above = [(e, d) for e, d in s.points if e > energy_kev]
    if not below or not above:
        return []
    (e1, d1), (e2, d2) = max(below), min(above)
    if e2 / e1 > max_gap:
        return []
    t = math.log(energy_kev / e1) / math.log(e2 / e1)
    return [math.exp((1.0 - t) * math.log(d1) + t * math.log(d2))]


def interpolated_spread(element: str, energy_kev: float, rel_tol: float = 0.05,
                        max_gap: float = 2.0) -> tuple[float, float, int] | None:
    """(min, max, number of sets) over every set's value at ``energy_kev`` (:func:`set_value`: its points within
    ``rel_tol``, or else its log-log interpolation between neighbours at most ``max_gap`` apart), or None when
    fewer than two sets have one. Contains :func:`measured_spread`'s range (the same points plus the interpolated
    values of the sets that have no point within ``rel_tol``); a second reading of "the measured spread at E",
    se17 (docs/montecarlo.md)."""
    vals = [(s.ref, v) for s in measured_sets(element) for v in set_value(s, energy_kev, rel_tol, max_gap)]
    if len({r for r, _ in vals}) < 2:
        return None
    ds = [v for _, v in vals]
    return min(ds), max(ds), len({r for r, _ in vals})


def measured_points(element: str, energy_kev: float, rel_tol: float = 0.05) -> list[tuple[int, float, float]]:
    """Joy's measured points of ``element`` (Al, Si, Cu, Au) within ``rel_tol`` of ``energy_kev``:
    (reference number, E, delta)."""
    sets = JOY_SE_YIELD[_ALIASES.get(element, element)]
    return [(s.ref, e, d) for s in sets for e, d in s.points if abs(e - energy_kev) <= rel_tol * energy_kev]


def measured_spread(element: str, energy_kev: float, rel_tol: float = 0.05) -> tuple[float, float, int] | None:
    """(min, max, number of sets) of the measured yields at ``energy_kev`` (points within ``rel_tol``; carbon:
    the USTC spread at the listed energies), or None when fewer than two sets have a value there."""
    el = _ALIASES.get(element, element)
    if el == "C":
        for e, (lo, hi) in CARBON_SPREAD.items():
            if abs(e - energy_kev) <= rel_tol * energy_kev:
                return lo, hi, 2  # at least two sets by construction
        return None
    pts = measured_points(el, energy_kev, rel_tol)
    if len({r for r, _, _ in pts}) < 2:
        return None
    ds = [d for _, _, d in pts]
    return min(ds), max(ds), len({r for r, _, _ in pts})
