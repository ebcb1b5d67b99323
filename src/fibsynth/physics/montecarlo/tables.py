"""Per-material lookup tables for the transport kernel (built once in numpy, read by numba).

All tables live on one grid uniform in ln E (keV) from :data:`E_GRID_MIN` to :data:`E_GRID_MAX`:

* ``lam_inv[m, g]``  inverse elastic mean free path sum_i n_i sigma_i(E) (1/nm),
* ``rng[m, g]``      CSDA path length from the grid's lowest energy up to E (nm) with the Joy-Luo stopping
  power (Bragg additivity); the kernel turns path length into energy loss by differencing this table, which
  solves the CSDA equation exactly (no step-size error),
* ``cum[m, j, g]``   cumulative probability that a collision hits element j (n_j sigma_j / sum),
* ``prut[m, j, g]``  probability of the screened-Rutherford branch of the angular distribution,
* ``acoef[m, j]``    screening coefficient c of element j (screening parameter a = c / E),
* ``nel[m]``         number of elements of material m; ``rcut[m]`` residual range at the cut-off energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fibsynth.physics import elastic
from fibsynth.physics.materials import MAX_ELEMENTS_PER_MATERIAL, Material
from fibsynth.physics.stopping import stopping_power

E_GRID_MIN = 0.015  # keV; Joy-Luo stays positive here for every Z (its log argument is > 1 above ~9 eV for H)
E_GRID_MAX = 40.0
N_GRID = 1024


@dataclass
class Tables:
    ln_e0: float
    inv_dln: float
    lam_inv: np.ndarray
    rng: np.ndarray
    rcut: np.ndarray
    nel: np.ndarray
    cum: np.ndarray
    prut: np.ndarray
    acoef: np.ndarray

    def as_tuple(self) -> tuple:
        return (self.ln_e0, self.inv_dln, self.lam_inv, self.rng, self.rcut, self.nel, self.cum, self.prut, self.acoef)


def energy_grid() -> np.ndarray:
    return np.exp(np.linspace(np.log(E_GRID_MIN), np.log(E_GRID_MAX), N_GRID))


def build_tables(materials: list[Material], model: str = "mott", cutoff_kev: float = 0.05) -> Tables:
    if model not in elastic.MODELS:
        raise ValueError(f"elastic model must be one of {elastic.MODELS}")
    if not (E_GRID_MIN < cutoff_kev < E_GRID_MAX):
        raise ValueError("cut-off energy outside the table grid")
    nm = len(materials)
    e = energy_grid()
    ln = np.log(e)
    lam_inv = np.zeros((nm, N_GRID))
    rng = np.zeros((nm, N_GRID))
    rcut = np.zeros(nm)
    nel = np.zeros(nm, dtype=np.int64)
    cum = np.ones((nm, MAX_ELEMENTS_PER_MATERIAL, N_GRID))
    prut = np.ones((nm, MAX_ELEMENTS_PER_MATERIAL, N_GRID))
    acoef = np.zeros((nm, MAX_ELEMENTS_PER_MATERIAL))
    for m, mat in enumerate(materials):
        n_i = mat.number_densities_nm3
        part = np.array([n * elastic.total_cross_section_nm2(model, z, e) for n, z in zip(n_i, mat.z)])
        tot = part.sum(axis=0)
        lam_inv[m] = tot
        nel[m] = len(mat.z)
        cum[m, : len(mat.z)] = np.cumsum(part, axis=0) / tot
        cum[m, len(mat.z) - 1] = 1.0
        for j, z in enumerate(mat.z):
            p, c = elastic.angular_parameters(model, z, e)
            prut[m, j] = p
            acoef[m, j] = float(np.atleast_1d(c)[0])
        # CSDA range: integral of dE / S = integral of E / S d(ln E), trapezoid on the grid
        integrand = e / stopping_power(mat, e)
        rng[m, 1:] = np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(ln))
        rcut[m] = np.interp(np.log(cutoff_kev), ln, rng[m])
    return Tables(
        ln_e0=float(ln[0]),
        inv_dln=float(1.0 / (ln[1] - ln[0])),
        lam_inv=lam_inv,
        rng=rng,
        rcut=rcut,
        nel=nel,
        cum=cum,
        prut=prut,
        acoef=acoef,
    )
