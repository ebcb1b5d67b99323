"""Materials for the electron Monte Carlo: elements, compounds, a small library.

A material is a list of elements (atomic number ``Z``, atomic weight ``A`` in g/mol, number of atoms per
formula unit) and a mass density (g/cm^3). It is given on the command line as

* a library name: ``epoxy``, ``gold``, ``graphite`` (see :data:`LIBRARY`);
* an element symbol, at the element's natural density (``Au``, ``Si``, ``C``);
* ``FORMULA:DENSITY`` with the density in g/cm^3 (``C:1.2``, ``C18H20O3:1.16``, ``Au:19.3``).

Element data (Z = 1..92 except At and Fr, whose bulk densities are not known reliably): standard atomic
weights (IUPAC, abridged; mass number of the longest-lived isotope for Tc, Pm, Po, Rn, Ra, Ac) and densities
at room temperature (gases at 0 C and 1 atm, bromine as the liquid), as tabulated in the CRC Handbook and
NIST's ESTAR material table. Carbon's natural density is taken as ideal graphite, 2.26 g/cm^3.

The mean ionization energy J (used by the Joy-Luo stopping power) follows Berger & Seltzer's fit
J = 9.76 Z + 58.5 Z^-0.19 eV, as in Joy's Monte Carlo codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fibsynth.errors import FibsynthError

AVOGADRO = 6.02214076e23

# symbol, standard atomic weight (g/mol), density (g/cm^3); index = Z - 1. None: not known reliably.
_ELEMENTS: list[tuple[str, float, float | None]] = [
    ("H", 1.008, 8.375e-5), ("He", 4.0026, 1.663e-4), ("Li", 6.94, 0.534), ("Be", 9.0122, 1.848),
    ("B", 10.81, 2.37), ("C", 12.011, 2.26), ("N", 14.007, 1.165e-3), ("O", 15.999, 1.332e-3),
    ("F", 18.998, 1.580e-3), ("Ne", 20.180, 8.385e-4), ("Na", 22.990, 0.971), ("Mg", 24.305, 1.738),
    ("Al", 26.982, 2.699), ("Si", 28.085, 2.33), ("P", 30.974, 1.823), ("S", 32.06, 2.07),
    ("Cl", 35.45, 2.995e-3), ("Ar", 39.948, 1.662e-3), ("K", 39.098, 0.862), ("Ca", 40.078, 1.55),
    ("Sc", 44.956, 2.989), ("Ti", 47.867, 4.506), ("V", 50.942, 6.11), ("Cr", 51.996, 7.19),
    ("Mn", 54.938, 7.21), ("Fe", 55.845, 7.874), ("Co", 58.933, 8.90), ("Ni", 58.693, 8.908),
    ("Cu", 63.546, 8.96), ("Zn", 65.38, 7.133), ("Ga", 69.723, 5.904), ("Ge", 72.630, 5.323),
    ("As", 74.922, 5.727), ("Se", 78.971, 4.81), ("Br", 79.904, 3.103), ("Kr", 83.798, 3.478e-3),
    ("Rb", 85.468, 1.532), ("Sr", 87.62, 2.64), ("Y", 88.906, 4.469), ("Zr", 91.224, 6.506),
    ("Nb", 92.906, 8.57), ("Mo", 95.95, 10.22), ("Tc", 98.0, 11.50), ("Ru", 101.07, 12.41),
    ("Rh", 102.91, 12.41), ("Pd", 106.42, 12.02), ("Ag", 107.87, 10.50), ("Cd", 112.41, 8.65),
    ("In", 114.82, 7.31), ("Sn", 118.71, 7.31), ("Sb", 121.76, 6.691), ("Te", 127.60, 6.24),
    ("I", 126.90, 4.93), ("Xe", 131.29, 5.485e-3), ("Cs", 132.91, 1.873), ("Ba", 137.33, 3.51),
    ("La", 138.91, 6.145), ("Ce", 140.12, 6.77), ("Pr", 140.91, 6.773), ("Nd", 144.24, 7.007),
    ("Pm", 145.0, 7.26), ("Sm", 150.36, 7.52), ("Eu", 151.96, 5.243), ("Gd", 157.25, 7.895),
    ("Tb", 158.93, 8.229), ("Dy", 162.50, 8.55), ("Ho", 164.93, 8.795), ("Er", 167.26, 9.066),
    ("Tm", 168.93, 9.321), ("Yb", 173.05, 6.965), ("Lu", 174.97, 9.84), ("Hf", 178.49, 13.31),
    ("Ta", 180.95, 16.654), ("W", 183.84, 19.30), ("Re", 186.21, 21.02), ("Os", 190.23, 22.59),
    ("Ir", 192.22, 22.56), ("Pt", 195.08, 21.45), ("Au", 196.97, 19.32), ("Hg", 200.59, 13.546),
    ("Tl", 204.38, 11.85), ("Pb", 207.2, 11.35), ("Bi", 208.98, 9.747), ("Po", 209.0, 9.32),
    ("At", 210.0, None), ("Rn", 222.0, 9.066e-3), ("Fr", 223.0, None), ("Ra", 226.0, 5.0),
    ("Ac", 227.0, 10.07), ("Th", 232.04, 11.72), ("Pa", 231.04, 15.37), ("U", 238.03, 18.95),
]

SYMBOLS: dict[str, int] = {sym: i + 1 for i, (sym, _, _) in enumerate(_ELEMENTS)}
MAX_ELEMENTS_PER_MATERIAL = 8


def atomic_weight(z: int) -> float:
    return _ELEMENTS[z - 1][1]


def natural_density(z: int) -> float | None:
    return _ELEMENTS[z - 1][2]


def symbol(z: int) -> str:
    return _ELEMENTS[z - 1][0]


def mean_ionization_kev(z: float | np.ndarray) -> float | np.ndarray:
    """Mean ionization energy J in keV (Berger & Seltzer fit, as used with the Joy-Luo stopping power)."""
    z = np.asarray(z, dtype=float)
    return (9.76 * z + 58.5 * z**-0.19) * 1e-3


@dataclass(frozen=True)
class Material:
    """A homogeneous target: elements ``z`` with ``count`` atoms per formula unit, density in g/cm^3."""

    name: str
    z: tuple[int, ...]
    count: tuple[float, ...]
    density: float

    @property
    def a(self) -> np.ndarray:
        return np.array([atomic_weight(z) for z in self.z])

    @property
    def atom_fractions(self) -> np.ndarray:
        c = np.asarray(self.count, dtype=float)
        return c / c.sum()

    @property
    def mass_fractions(self) -> np.ndarray:
        m = np.asarray(self.count, dtype=float) * self.a
        return m / m.sum()

    @property
    def number_densities_nm3(self) -> np.ndarray:
        """Atoms per nm^3 of each element."""
        per_cm3 = self.density * AVOGADRO * self.mass_fractions / self.a
        return per_cm3 * 1e-21

    @property
    def mean_z(self) -> float:
        """Mass-fraction-weighted mean atomic number (for orderings and range estimates only)."""
        return float(np.sum(self.mass_fractions * np.asarray(self.z)))

    @property
    def mean_a(self) -> float:
        return float(np.sum(self.mass_fractions * self.a))

    @property
    def is_vacuum(self) -> bool:
        """True for :data:`VACUUM` (no atoms): electrons cross it in straight lines without losing energy."""
        return len(self.z) == 0

    def describe(self) -> str:
        if self.is_vacuum:
            return VACUUM
        parts = "".join(f"{symbol(z)}{_fmt(c)}" for z, c in zip(self.z, self.count))
        return f"{parts}:{self.density:g}"


def _fmt(c: float) -> str:
    return "" if c == 1 else (str(int(c)) if float(c).is_integer() else f"{c:g}")


# Epoxy: cured DGEBA (diglycidyl ether of bisphenol A, C21H24O4) with the stoichiometric amount of the amine
# hardener DETA (diethylenetriamine, C4H13N3; 5 active H per molecule, 2 epoxide groups per DGEBA):
# 5 DGEBA + 2 DETA = C113H146N6O20, at 1.20 g/cm^3 (typical of cured embedding resins, 1.1-1.25).
LIBRARY: dict[str, str] = {
    "epoxy": "C113H146N6O20:1.20",
    "gold": "Au:19.32",
    "graphite": "C:2.26",
    "silicon": "Si:2.33",
    "platinum": "Pt:21.45",
    "silver": "Ag:10.50",
    "copper": "Cu:8.96",
    "aluminium": "Al:2.699",
}

# Empty space: open (non-infiltrated) pores, or nothing beyond a stack or under a film. Accepted only where the
# Monte Carlo can transport through it (``get_material(..., allow_vacuum=True)``: stack pores and backings, layers
# and substrates of layer runs); the kernel flies straight through it (``montecarlo/kernel.py``).
VACUUM = "vacuum"
VACUUM_MATERIAL = Material(name=VACUUM, z=(), count=(), density=0.0)


def is_vacuum(spec: "str | Material") -> bool:
    """Whether a material string (or :class:`Material`) is :data:`VACUUM`."""
    if isinstance(spec, Material):
        return spec.is_vacuum
    return str(spec).strip().lower() == VACUUM


_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*)")


def parse_formula(formula: str, param: str = "material") -> tuple[tuple[int, ...], tuple[float, ...]]:
    """``C18H20O3`` -> ((6, 1, 8), (18, 20, 3)); repeated elements are merged. Errors name ``param``."""
    param = param_name(param)
    pos = 0
    counts: dict[int, float] = {}
    for m in _TOKEN.finditer(formula):
        if m.start() != pos:
            break
        sym, num = m.group(1), m.group(2)
        if sym not in SYMBOLS:
            raise FibsynthError(f"unknown element {sym!r} in {formula!r}", param=param)
        try:
            c = float(num) if num else 1.0
        except ValueError:
            raise FibsynthError(f"bad count {num!r} in {formula!r}", param=param) from None
        if not c > 0:
            raise FibsynthError(f"counts must be > 0 in {formula!r}", param=param)
        counts[SYMBOLS[sym]] = counts.get(SYMBOLS[sym], 0.0) + c
        pos = m.end()
    if pos != len(formula) or not counts:
        raise FibsynthError(
            f"cannot parse {formula!r}; expected a library name ({', '.join(LIBRARY)}), an element "
            "symbol, or FORMULA:DENSITY in g/cm^3 such as C18H20O3:1.16", param=param
        )
    if len(counts) > MAX_ELEMENTS_PER_MATERIAL:
        raise FibsynthError(f"at most {MAX_ELEMENTS_PER_MATERIAL} elements per material ({formula!r})", param=param)
    zs = tuple(sorted(counts))
    return zs, tuple(counts[z] for z in zs)


def param_name(name: str) -> str:
    """A Python parameter name; callers of the old API passed a flag (``"--film"``), mapped here to ``film``."""
    return name[2:].replace("-", "_") if name.startswith("--") else name


def get_material(spec: str | Material, param: str = "material", *, allow_vacuum: bool = False) -> Material:
    """Resolve a material string (library name, element symbol or ``FORMULA:DENSITY``); errors name the
    Python parameter ``param`` (the CLI maps it to its flag). ``vacuum`` (:data:`VACUUM_MATERIAL`) only with
    ``allow_vacuum`` (where the caller can handle empty space)."""
    param = param_name(param)
    if is_vacuum(spec):
        if allow_vacuum:
            return VACUUM_MATERIAL
        raise FibsynthError("vacuum has no atoms: it is accepted only for open pores, backings and film "
                            "substrates of the Monte Carlo", param=param)
    if isinstance(spec, Material):
        return spec
    text = str(spec).strip()
    if not text:
        raise FibsynthError("empty material", param=param)
    name = text
    if text.lower() in LIBRARY:
        name = text.lower()
        text = LIBRARY[name]
    if ":" in text:
        formula, _, dens = text.partition(":")
        try:
            density = float(dens)
        except ValueError:
            raise FibsynthError(f"density {dens!r} in {spec!r} is not a number (g/cm^3)", param=param) from None
        if not (0 < density <= 30):
            raise FibsynthError(f"density must be in (0, 30] g/cm^3 (got {dens} in {spec!r})", param=param)
        zs, counts = parse_formula(formula.strip(), param)
    else:
        zs, counts = parse_formula(text, param)
        if len(zs) != 1:
            raise FibsynthError(f"compound {text!r} needs a density: write {text}:DENSITY (g/cm^3)", param=param)
        density = natural_density(zs[0])
        if density is None:
            raise FibsynthError(f"no reliable natural density for {text}; give {text}:DENSITY", param=param)
    return Material(name=name, z=zs, count=counts, density=float(density))
