"""Sampling-ready tables of Dirac partial-wave (Mott) elastic cross sections (see ``physics/mott.py``).

For each element Z and each energy E_g of a log grid (``E_EV``: 64 points, 50 eV - 40 keV):

* ``sigma_el[z, g]``, ``sigma_1[z, g]``, ``sigma_2[z, g]`` (cm^2, float64): total and first/second transport
  cross sections from the DCS integral;
* ``mu_icdf[z, g, i]`` (float32): the inverse cumulative distribution of mu = (1 - cos theta)/2 at the
  probabilities ``PROB[i] = 1 - (1 - i/(N-1))^2``, i = 0..N-1 (N = 512; the grid is dense near P = 1, where
  the inverse CDF of a forward-peaked DCS rises steeply).

Sampling (the grid map is inverted analytically, no search): with xi uniform in [0, 1),
``i = min(floor((1 - sqrt(1 - xi)) (N - 1)), N - 2)``, ``t = (xi - PROB[i]) / (PROB[i+1] - PROB[i])``,
``mu = (1 - t) mu_icdf[i] + t mu_icdf[i+1]`` (the table is linear in probability between grid points),
``cos theta = 1 - 2 mu``.
Between energies pick the neighbouring grid energy g or g+1 with probabilities 1 - w, w (w = fractional
position in ln E): this samples the ln-E-interpolated DCS exactly (as PENELOPE does).
Linear interpolation of the inverse CDF reproduces sigma_1/sigma_el and sigma_2/sigma_el of the DCS to
< 0.2 % (measured, ``table_moment_errors``).

The shipped file ``physics/data/mott_tables.npz`` holds the elements of ``SHIPPED_Z``; ``load_mott_tables``
computes other elements on demand (~10-30 s each) and caches them under ``~/.cache/fibsynth/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fibsynth.physics import mott

E_MIN_EV = 50.0
E_MAX_EV = 40000.0
N_E = 64
N_PROB = 512
E_EV = np.exp(np.linspace(np.log(E_MIN_EV), np.log(E_MAX_EV), N_E))
PROB = 1.0 - (1.0 - np.linspace(0.0, 1.0, N_PROB)) ** 2
SHIPPED_Z = (1, 6, 7, 8, 13, 14, 17, 29, 47, 78, 79)
DATA_FILE = Path(__file__).parent / "data" / "mott_tables.npz"
SOLVER_PARAMS = dict(exchange=True, h=0.02, pts_per_wavelength=40.0, tail_tol=1e-8, r_min=1e-6)
FORMAT_VERSION = 1


def parameters() -> dict:
    return dict(
        format_version=FORMAT_VERSION,
        e_min_ev=E_MIN_EV,
        e_max_ev=E_MAX_EV,
        n_e=N_E,
        n_prob=N_PROB,
        prob_grid="1 - (1 - i/(N-1))^2",
        solver=SOLVER_PARAMS,
        potential="DHFS analytic screening (Salvat et al. PRA 36 (1987) 467), point nucleus, "
        "Furness-McCarthy exchange; no polarization, no absorption",
        mu_grid="mott.default_mu_grid() (0, 700 log points 1e-12..0.05, 700 uniform 0.05..1), trapezoid",
    )


def _param_hash() -> str:
    return hashlib.sha1(json.dumps(parameters(), sort_keys=True).encode()).hexdigest()[:12]


def inverse_cdf(mu: np.ndarray, dcs: np.ndarray, prob: np.ndarray = PROB) -> np.ndarray:
    """Inverse CDF of mu at the probabilities ``prob`` (CDF by trapezoid on the DCS grid, linear inverse)."""
    c = np.concatenate([[0.0], np.cumsum(0.5 * (dcs[1:] + dcs[:-1]) * np.diff(mu))])
    c /= c[-1]
    return np.interp(prob, c, mu)


def icdf_moments(m: np.ndarray, prob: np.ndarray = PROB) -> tuple[float, float]:
    """Exact <mu> and <mu^2> of the distribution whose inverse CDF is piecewise linear through (prob, m)."""
    m = np.asarray(m, dtype=float)
    dp = np.diff(prob)
    a, b = m[:-1], m[1:]
    return float(np.sum(dp * (a + b) / 2.0)), float(np.sum(dp * (a * a + a * b + b * b) / 3.0))


def table_moment_errors(m: np.ndarray, sigma_el: float, sigma_1: float, sigma_2: float) -> tuple[float, float]:
    """Relative errors of sigma_1/sigma_el and sigma_2/sigma_el reproduced by an inverse-CDF row."""
    e1, e2 = icdf_moments(m)
    return 2.0 * e1 / (sigma_1 / sigma_el) - 1.0, 6.0 * (e1 - e2) / (sigma_2 / sigma_el) - 1.0


def compute_element(z: int, energies: np.ndarray = E_EV) -> dict:
    n = len(energies)
    out = dict(
        sigma_el=np.zeros(n), sigma_1=np.zeros(n), sigma_2=np.zeros(n), sigma_el_phase=np.zeros(n),
        mu_icdf=np.zeros((n, N_PROB), dtype=np.float32), lmax=np.zeros(n, dtype=np.int32),
    )
    for g, e in enumerate(energies):
        r = mott.mott_cross_sections(int(z), float(e), **SOLVER_PARAMS)
        out["sigma_el"][g] = r.sigma_el
        out["sigma_1"][g] = r.sigma_1
        out["sigma_2"][g] = r.sigma_2
        out["sigma_el_phase"][g] = r.sigma_el_phase
        out["mu_icdf"][g] = inverse_cdf(r.mu, r.dcs).astype(np.float32)
        out["lmax"][g] = r.phases.lmax
    out["mu_icdf"][:, 0] = 0.0
    out["mu_icdf"][:, -1] = np.maximum(out["mu_icdf"][:, -1], out["mu_icdf"][:, -2])
    return out


def build_mott_tables(z_list, path: Path | str | None = None, progress=None) -> dict:
    """Compute the tables for the elements of ``z_list``; write them to ``path`` (npz) if given."""
    z_list = [int(z) for z in z_list]
    rows = []
    for z in z_list:
        rows.append(compute_element(z))
        if progress is not None:
            progress(z)
    data = dict(
        z=np.array(z_list, dtype=np.int32),
        e_ev=E_EV,
        prob=PROB,
        sigma_el=np.array([r["sigma_el"] for r in rows]),
        sigma_1=np.array([r["sigma_1"] for r in rows]),
        sigma_2=np.array([r["sigma_2"] for r in rows]),
        sigma_el_phase=np.array([r["sigma_el_phase"] for r in rows]),
        lmax=np.array([r["lmax"] for r in rows]),
        mu_icdf=np.array([r["mu_icdf"] for r in rows], dtype=np.float32),
        parameters=np.array(json.dumps(parameters(), sort_keys=True)),
    )
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **data)
    return data


@dataclass
class MottTables:
    z: np.ndarray  # (nz,)
    e_ev: np.ndarray  # (ne,) log grid
    prob: np.ndarray  # (np,)
    sigma_el: np.ndarray  # (nz, ne) cm^2
    sigma_1: np.ndarray  # (nz, ne) cm^2
    sigma_2: np.ndarray  # (nz, ne) cm^2
    mu_icdf: np.ndarray  # (nz, ne, np) float32
    parameters: dict

    def sigma_el_nm2(self) -> np.ndarray:
        return self.sigma_el * 1e14

    def sample_mu(self, iz: int, e_ev: float, rng: np.random.Generator, n: int) -> np.ndarray:
        """Reference (numpy) sampler of mu for element row ``iz`` at energy e_ev (the kernel's recipe)."""
        x = (np.log(e_ev) - np.log(self.e_ev[0])) / (np.log(self.e_ev[1]) - np.log(self.e_ev[0]))
        x = min(max(x, 0.0), len(self.e_ev) - 1.0 - 1e-12)
        g0 = int(np.floor(x))
        w = x - g0
        g = np.where(rng.random(n) < w, g0 + 1, g0)
        xi = rng.random(n)
        npr = len(self.prob)
        s = (1.0 - np.sqrt(1.0 - xi)) * (npr - 1)
        i = np.minimum(np.floor(s).astype(np.int64), npr - 2)
        t = (xi - self.prob[i]) / (self.prob[i + 1] - self.prob[i])
        tab = self.mu_icdf[iz].astype(float)
        return (1.0 - t) * tab[g, i] + t * tab[g, i + 1]


def _cache_dir() -> Path:
    return Path(os.environ.get("FIBSYNTH_CACHE", Path.home() / ".cache" / "fibsynth")) / "mott"


def _from_npz(d) -> dict:
    return {k: d[k] for k in d.files}


def load_mott_tables(z_list, compute_missing: bool = True, cache_dir: Path | str | None = None) -> MottTables:
    """Tables for the elements of ``z_list`` (in that order): from the shipped file, else from the user cache,
    else computed now (and cached) when ``compute_missing``."""
    want = [int(z) for z in z_list]
    params = parameters()
    found: dict[int, dict] = {}
    if DATA_FILE.exists():
        with np.load(DATA_FILE) as d:
            shipped = _from_npz(d)
        if json.loads(str(shipped["parameters"])) == params:
            for j, z in enumerate(shipped["z"]):
                found[int(z)] = {k: shipped[k][j] for k in ("sigma_el", "sigma_1", "sigma_2", "mu_icdf")}
    cdir = Path(cache_dir) if cache_dir is not None else _cache_dir()
    for z in want:
        if z in found:
            continue
        f = cdir / f"mott_z{z:03d}_{_param_hash()}.npz"
        if f.exists():
            with np.load(f) as d:
                dd = _from_npz(d)
            found[z] = {k: dd[k][0] for k in ("sigma_el", "sigma_1", "sigma_2", "mu_icdf")}
            continue
        if not compute_missing:
            raise KeyError(f"no Mott table for Z = {z} (shipped: {sorted(found)})")
        dd = build_mott_tables([z], path=f)
        found[z] = {k: dd[k][0] for k in ("sigma_el", "sigma_1", "sigma_2", "mu_icdf")}
    return MottTables(
        z=np.array(want, dtype=np.int32),
        e_ev=E_EV.copy(),
        prob=PROB.copy(),
        sigma_el=np.array([found[z]["sigma_el"] for z in want]),
        sigma_1=np.array([found[z]["sigma_1"] for z in want]),
        sigma_2=np.array([found[z]["sigma_2"] for z in want]),
        mu_icdf=np.array([found[z]["mu_icdf"] for z in want], dtype=np.float32),
        parameters=params,
    )
