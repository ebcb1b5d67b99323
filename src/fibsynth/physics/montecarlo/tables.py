"""Per-material lookup tables for the transport kernel (built once in numpy, read by numba).

Energy tables live on one grid uniform in ln E (keV) from :data:`E_GRID_MIN` to :data:`E_GRID_MAX`
(:data:`N_GRID` points; grid coordinate ``u = (ln E - ln E_GRID_MIN) * inv_dln``):

* ``lam_inv[m, g]``  inverse elastic mean free path sum_i n_i sigma_i(E) (1/nm),
* ``rng[m, g]``      CSDA path length from the grid's lowest energy up to E (nm) with the Joy-Luo stopping
  power (Bragg additivity); the kernel tracks the residual range and turns it back into a grid coordinate by
  inverting this piecewise-linear table, which solves the CSDA equation exactly (no step-size error),
* ``rinvd[m, g]``    1 / (rng[m, g+1] - rng[m, g]) (the inversion without a division),
* ``cum[m, j, g]``   cumulative probability that a collision hits element j (n_j sigma_j / sum),
* ``nel[m]``         number of elements of material m; ``rcut[m]`` residual range at the cut-off energy.

A vacuum material (``materials.VACUUM_MATERIAL``, open pores) has ``nel[m] = 0`` and all-zero rows: no
collisions, no energy loss; the kernel recognises it by ``nel[m] == 0`` and flies straight through it (the zero
range row adds nothing to ``kernel.max_range``).

Angular distribution (tabulated inverse CDF, the same sampling rule for every model). For element j of
material m and angular-grid energy a (its own log grid: ``n_ang`` points, ``ua = u * ang_scale + ang_off``),
``muq[m, j, a, k]`` holds, at ``t_k = k / (N_PROB - 1)``, the odds ratio

    q = [mu / (1 - mu)] / [v / (1 - v)],   v = 1 - (1 - t)^4,   mu = F^-1(v),   mu = (1 - cos theta) / 2,

with F the cumulative distribution of mu. Sampling with xi uniform in (0, 1]: ``t = 1 - xi^(1/4)`` (two square
roots; the quartic map puts grid points densely near v = 1, the large-angle tail), ``v = 1 - xi``, q linear in
t between grid points, ``mu = q v / (xi + q v)``. The odds-ratio form is exact for screened Rutherford
(q = a / (1 + a) for every v) and for isotropic scattering (q = 1), so the forward peak costs no grid points.
Between angular-grid energies the kernel samples grid point a or a + 1 with probabilities 1 - w, w (w the
fractional position in ln E), as PENELOPE does: exact on the grid, the ln-E-interpolated mixture in between.
Accuracy of the tables (against the analytic <mu>, <mu^2>): see ``tests/physics/test_mc_tables.py``.

Inelastic collisions (``inelastic=True``, the default): a hybrid model (hard binary collisions + restricted
continuous slowing down, as in Murata's and Shimizu's hybrid Monte Carlo models of electron-probe
microanalysis). Collisions with atomic electrons deflect the primary too; for low Z this adds ~1/Z to the
transport cross section, which an elastic-only model misses (why single-scattering codes with Mott cross sections
underestimate carbon's backscatter coefficient). Each element j gets a second channel, index ``n_elements + j``:

* cross section and angles: screened Rutherford for the Z atomic electrons, i.e. the atom's sigma_R(Z, E) with
  Z^2 replaced by Z (the Z(Z+1) rule of EGS4/EGSnrc), Joy's screening kept, restricted to theta <= 90 degrees
  (mu <= 1/2): a free electron at rest cannot turn the primary further;
* energy: the collision is binary, so the primary keeps E cos^2(theta) (non-relativistic kinematics; the knock-on
  electron is absorbed on the spot, secondary electrons are out of scope);
* the range table then uses the restricted stopping power S_JL - S_bin, with S_bin = sum_i n_i Z_i
  integral of E sin^2(theta) dsigma (:func:`binary_stopping`), so the mean energy loss per unit path is still
  Joy-Luo's and the binary collisions add straggling and deflection. S_bin is about half of S_JL (Bethe's
  close-collision half) for every Z at 1-20 keV; it is capped at :data:`BINARY_STOPPING_CAP` of S_JL (the cap
  acts only far below 1 keV).

Channels are ordinary table rows (``cum``, ``muq``; ``nel`` counts them; ``eloss[m, j] = 1`` marks the binary
ones), so the numba kernel and the torch path share them. ``inelastic=False`` gives the elastic-only model with
plain Joy-Luo CSDA.

``prut[m, j, g]`` (probability of the screened-Rutherford branch) and ``acoef[m, j]`` (screening a = c / E)
describe the analytic Browning / screened-Rutherford models and are kept for the analytic validation mode of
the kernel and for the torch backend (``backend_torch.py``); for ``mott-pwa`` they are NaN (no analytic form).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from fibsynth.physics import elastic
from fibsynth.physics.materials import MAX_ELEMENTS_PER_MATERIAL, Material
from fibsynth.physics.stopping import stopping_power

E_GRID_MIN = 0.015  # keV; Joy-Luo stays positive here for every Z (its log argument is > 1 above ~9 eV for H)
E_GRID_MAX = 40.0
N_GRID = 1024
N_PROB = 257  # points of the angular inverse-CDF grid (uniform in t = 1 - (1 - v)^(1/4))
BINARY_STOPPING_CAP = 0.8  # binary collisions carry at most this fraction of the Joy-Luo stopping power
N_ANG = 128  # angular-grid energies of the analytic models (uniform in ln E over the table range)

ANGULAR_MODES = ("table", "analytic")


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
    rinvd: np.ndarray = None
    muq: np.ndarray = None
    ang_scale: float = 1.0
    ang_off: float = 0.0
    ang_e_kev: np.ndarray = None  # energies of the angular grid
    eloss: np.ndarray = None  # eloss[m, j] = 1: channel j is a binary collision (the primary keeps E cos^2 theta)
    analytic: int = 0  # 1: kernel samples the analytic Browning / Rutherford rule (validation mode)
    model: str = "mott"

    def as_tuple(self) -> tuple:
        """The kernel's table arguments (see ``kernel.transport_one``), in the kernel's layout
        (:func:`kernel_layout`; built once per ``Tables`` and kept)."""
        kt = self.__dict__.get("_kernel_tuple")
        if kt is None:
            kt = kernel_layout(self)
            self.__dict__["_kernel_tuple"] = kt
        return kt


def channel_order(cum: np.ndarray, nel: np.ndarray) -> np.ndarray:
    """Per material, the scattering channels in order of decreasing probability (mean over the energy grid):
    ``order[m, k]`` is the table channel that the kernel sees as channel k. The kernel picks a channel by a
    linear search through the cumulative probabilities, so the most probable first means fewer look-ups (epoxy at
    2 keV: 2.0 instead of 2.9 per collision; same distribution, another mapping of the random number)."""
    nm, nch, _ = cum.shape
    order = np.tile(np.arange(nch), (nm, 1))
    for m in range(nm):
        ne = int(nel[m])
        if ne > 1:
            p = np.diff(np.concatenate([np.zeros((1, cum.shape[2])), cum[m, :ne]], axis=0), axis=0)
            order[m, :ne] = np.argsort(-p.mean(axis=1), kind="stable")
    return order


def kernel_layout(t: "Tables") -> tuple:
    """The tables as ``kernel.transport_one`` reads them (the ``Tables`` fields keep the documented layout):

    * ``lam[m, g]`` = 1 / ``lam_inv[m, g]``, the elastic mean free path (nm): a free path is a multiplication
      (0 for vacuum rows, which the kernel never samples);
    * channels reordered by :func:`channel_order` in ``cum``, ``muq``, ``prut``, ``acoef``, ``eloss``;
    * ``cum`` energy-major, ``cumg[m, g, k]`` (every channel of one grid energy on one cache line or two);
    * ``muq`` in float32 (odds ratios to 6e-8 relative: 2.1 MB -> 1.05 MB for gold + epoxy, the table the
      angular sampling reads at a random point per collision; the interpolation itself stays in float64).

    Same distributions as the ``Tables`` fields up to float32 rounding of q and 1 / lam_inv interpolated instead
    of lam_inv (relative differences ~1e-5 at the 1024-point grid): statistically identical, not bit-identical
    (tests/physics/test_mc_speed.py)."""
    order = channel_order(t.cum, t.nel)
    nm, nch, ng = t.cum.shape
    cum = np.ones_like(t.cum)
    for m in range(nm):
        ne = int(t.nel[m])
        if ne >= 1:
            p = np.diff(np.concatenate([np.zeros((1, ng)), t.cum[m, :ne]], axis=0), axis=0)
            c = np.cumsum(p[order[m, :ne]], axis=0)
            c[-1] = 1.0
            cum[m, :ne] = c
    rows = np.arange(nm)[:, None]
    nmq = t.muq.shape[1]
    muq = np.ascontiguousarray(t.muq[rows, order[:, :nmq]], dtype=np.float32)
    prut = np.ascontiguousarray(t.prut[rows, order])
    acoef = np.ascontiguousarray(t.acoef[rows, order])
    eloss = np.ascontiguousarray(t.eloss[rows, order]) if t.eloss is not None else np.zeros((nm, nch))
    with np.errstate(divide="ignore"):
        lam = np.where(t.lam_inv > 0, 1.0 / np.where(t.lam_inv > 0, t.lam_inv, 1.0), 0.0)
    # only the channels some material has (slots beyond max(nel) are never read): 16 -> e.g. 8 for epoxy, half
    # the bytes per grid energy
    kmax = max(1, int(np.max(t.nel))) if len(t.nel) else 1
    cumg = np.ascontiguousarray(cum[:, :kmax].transpose(0, 2, 1))
    return (t.ln_e0, t.inv_dln, lam, t.rng, t.rinvd, t.rcut, t.nel, cumg, t.analytic, t.ang_scale, t.ang_off,
            muq, prut, acoef, eloss)


def energy_grid() -> np.ndarray:
    return np.exp(np.linspace(np.log(E_GRID_MIN), np.log(E_GRID_MAX), N_GRID))


def prob_grid(n: int = N_PROB) -> tuple[np.ndarray, np.ndarray]:
    """(t, v): the uniform grid t_k = k / (n - 1) and the probabilities v_k = 1 - (1 - t_k)^4."""
    t = np.linspace(0.0, 1.0, n)
    return t, 1.0 - (1.0 - t) ** 4


def odds_ratio_row(v: np.ndarray, mu: np.ndarray, dmu_dv0: float, dv_dmu1: float) -> np.ndarray:
    """q_k = odds(mu_k) / odds(v_k) with the limits at v = 0 (dmu/dv) and v = 1 (dF/dmu at mu = 1)."""
    q = np.empty_like(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        q[1:-1] = mu[1:-1] * (1.0 - v[1:-1]) / ((1.0 - mu[1:-1]) * v[1:-1])
    q[0] = dmu_dv0
    q[-1] = dv_dmu1
    return q


def analytic_muq(model: str, z: float, e_kev: np.ndarray, n: int = N_PROB) -> np.ndarray:
    """Odds-ratio rows (len(e_kev), n) of an analytic model (exact inverse CDF at the grid probabilities)."""
    _, v = prob_grid(n)
    out = np.empty((len(e_kev), n))
    for a, e in enumerate(e_kev):
        p, scr = elastic.mixture_parameters(model, z, e)
        mu = elastic.mixture_inverse_cdf(v, p, scr)
        # F(mu) = p (1 + s) mu / (s + mu) + (1 - p) mu: F'(0) = p (1 + s) / s + 1 - p, F'(1) = p s / (1 + s) + 1 - p
        out[a] = odds_ratio_row(v, mu, 1.0 / (p * (1.0 + scr) / scr + 1.0 - p), p * scr / (1.0 + scr) + 1.0 - p)
    return out


def icdf_to_muq(prob: np.ndarray, mu_icdf: np.ndarray, n: int = N_PROB) -> np.ndarray:
    """Resample inverse-CDF rows given on an arbitrary increasing probability grid ``prob`` (mu linear in
    probability between its points) to odds-ratio rows on this module's grid."""
    _, v = prob_grid(n)
    rows = np.atleast_2d(np.asarray(mu_icdf, dtype=float))
    out = np.empty((rows.shape[0], n))
    for a, row in enumerate(rows):
        mu = np.interp(v, prob, row)
        # end slopes of the piecewise-linear inverse CDF
        d0 = (row[1] - row[0]) / (prob[1] - prob[0])
        d1 = (prob[-1] - prob[-2]) / max(row[-1] - row[-2], 1e-300)
        q = odds_ratio_row(v, mu, d0, d1 if row[-1] >= 1.0 else np.nan)
        if not row[-1] >= 1.0:
            # the row ends below mu = 1 (no probability beyond): odds(mu) / odds(v) -> 0 at v -> 1
            q[-1] = 0.0
        out[a] = q
    return out


MU_BINARY_MAX = 0.5 * (1.0 - np.sqrt(0.5))  # 45 degrees: the faster of the two outgoing electrons keeps >= E/2


def _moller_factor(eps):
    """Møller / Rutherford ratio for energy transfer fraction eps = W / E <= 1/2 (non-relativistic, exchange
    included): 1 - eps / (1 - eps) + eps^2 / (1 - eps)^2."""
    r = eps / (1.0 - eps)
    return 1.0 - r + r * r


def _binary_density(z: float, e_kev, mu: np.ndarray):
    """(sigma in nm^2 per atom, density of mu normalised to 1 on [0, MU_BINARY_MAX]) of the binary channel, for
    each energy of ``e_kev`` (arrays of shape (n_e,) and (n_e, len(mu)); a float and a row for a scalar energy)."""
    e = np.atleast_1d(np.asarray(e_kev, dtype=float))
    s = elastic.rutherford_screening(z, e)[:, None]
    sig_unit = elastic.rutherford_total_nm2(z, e) / float(z) ** 2  # untruncated, unit charge
    f = s * (1.0 + s) / (s + mu[None, :]) ** 2 * _moller_factor(4.0 * mu * (1.0 - mu))[None, :]
    norm = np.trapezoid(f, mu, axis=1)
    sig, dens = float(z) * sig_unit * norm, f / norm[:, None]
    if np.ndim(e_kev) == 0:
        return float(sig[0]), dens[0]
    return sig, dens


def _binary_mu_grid(n: int = 6000) -> np.ndarray:
    return np.concatenate([[0.0], np.geomspace(1e-12, MU_BINARY_MAX, n - 1)])


@functools.lru_cache(maxsize=256)
def _binary_channel_cached(z: int, e_key: tuple, n: int) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(e_key, dtype=float)
    mu = _binary_mu_grid()
    _, v = prob_grid(n)
    sigma, f = _binary_density(z, e, mu)
    rows = np.empty((len(e), n))
    for a in range(len(e)):
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (f[a, 1:] + f[a, :-1]) * np.diff(mu))])
        cdf /= cdf[-1]
        mq = np.interp(v, cdf, mu)
        mq[-1] = MU_BINARY_MAX
        rows[a] = odds_ratio_row(v, mq, 1.0 / f[a, 0], 0.0)
    sigma.setflags(write=False)
    rows.setflags(write=False)
    return sigma, rows


def inelastic_deflection(z: float, e_kev: np.ndarray, n: int = N_PROB) -> tuple[np.ndarray, np.ndarray]:
    """Cross section (nm^2 per atom) and odds-ratio rows of the binary-collision channel of element ``z``.

    The Z atomic electrons as free electrons at rest: screened Rutherford per unit charge (Joy's relativistically
    corrected sigma_R(Z, E) / Z^2 and screening a = 3.4e-3 Z^0.67 / E, ``elastic.rutherford_*``) times the
    Møller exchange factor in W / E = sin^2(theta), for the faster outgoing electron (theta <= 45 degrees,
    W <= E / 2). Returns (sigma(e_kev), muq rows (len(e_kev), n)) on this module's probability grid (cached per
    element and energy grid; read-only arrays)."""
    return _binary_channel_cached(int(z), tuple(float(x) for x in np.atleast_1d(e_kev)), int(n))


@functools.lru_cache(maxsize=256)
def _binary_stopping_per_atom(z: int, e_key: tuple) -> np.ndarray:
    e = np.asarray(e_key, dtype=float)
    mu = _binary_mu_grid()
    sig, f = _binary_density(z, e, mu)
    out = sig * e * np.trapezoid(4.0 * mu * (1.0 - mu) * f, mu, axis=1)
    out.setflags(write=False)
    return out


def binary_stopping(material: Material, e_kev: np.ndarray) -> np.ndarray:
    """Stopping power (keV/nm) of the binary-collision channels: sum_i n_i sigma_i <W>, W = E 4 mu (1 - mu)."""
    key = tuple(float(x) for x in np.atleast_1d(np.asarray(e_kev, dtype=float)))
    out = np.zeros(len(key))
    for n, z in zip(material.number_densities_nm3, material.z):
        out += n * _binary_stopping_per_atom(int(z), key)
    return out.reshape(np.shape(e_kev))


def _mott_pwa(z_list):
    """sigma_el (cm^2) and inverse-CDF tables from the partial-wave module (format of ``mott_tables``)."""
    from fibsynth.physics.mott_tables import load_mott_tables

    return load_mott_tables(list(z_list))


def build_tables(materials: list[Material], model: str = "mott", cutoff_kev: float = 0.05,
                 angular: str = "table", inelastic: bool = True) -> Tables:
    model = elastic.canonical_model(model)
    if inelastic and angular == "analytic":
        raise ValueError("the inelastic-deflection channel is tabulated: use angular='table' or inelastic=False")
    if angular not in ANGULAR_MODES:
        raise ValueError(f"angular sampling must be one of {ANGULAR_MODES}")
    if angular == "analytic" and model == "mott-pwa":
        raise ValueError("mott-pwa has no analytic angular sampling rule (use angular='table')")
    if not (E_GRID_MIN < cutoff_kev < E_GRID_MAX):
        raise ValueError("cut-off energy outside the table grid")
    nm = len(materials)
    e = energy_grid()
    ln = np.log(e)
    inv_dln = float(1.0 / (ln[1] - ln[0]))
    lam_inv = np.zeros((nm, N_GRID))
    rng = np.zeros((nm, N_GRID))
    rcut = np.zeros(nm)
    nel = np.zeros(nm, dtype=np.int64)
    nch = 2 if inelastic else 1  # scattering channels per element
    cum = np.ones((nm, nch * MAX_ELEMENTS_PER_MATERIAL, N_GRID))
    prut = np.ones((nm, nch * MAX_ELEMENTS_PER_MATERIAL, N_GRID))
    acoef = np.zeros((nm, nch * MAX_ELEMENTS_PER_MATERIAL))
    maxel = nch * max([len(m.z) for m in materials] + [1])
    pwa = None
    if model == "mott-pwa":
        zs = sorted({int(z) for m in materials for z in m.z}) or [79]  # (79: any element, if all are vacuum)
        tab = _mott_pwa(zs)
        pwa = {z: k for k, z in enumerate(tab.z)}
        ang_e = tab.e_ev / 1000.0
    else:
        ang_e = np.exp(np.linspace(np.log(E_GRID_MIN), np.log(E_GRID_MAX), N_ANG))
    ln_a = np.log(ang_e)
    inv_dlna = 1.0 / (ln_a[1] - ln_a[0])
    muq = np.ones((nm, maxel, len(ang_e), N_PROB))
    for m, mat in enumerate(materials):
        if mat.is_vacuum:
            continue  # vacuum: nel = 0, zero tables (the kernel flies straight through it; see _vacuum_rows)
        n_i = mat.number_densities_nm3
        if pwa is None:
            part = np.array([n * elastic.total_cross_section_nm2(model, z, e) for n, z in zip(n_i, mat.z)])
        else:
            # ln sigma linear in ln E between the partial-wave energies, held constant outside them
            part = np.array([n * np.exp(np.interp(ln, ln_a, np.log(tab.sigma_el[pwa[int(z)]] * elastic.CM2_TO_NM2)))
                             for n, z in zip(n_i, mat.z)])
        nz_m = len(mat.z)
        if inelastic:
            inel = [inelastic_deflection(z, ang_e) for z in mat.z]
            part = np.concatenate([part, [n * np.exp(np.interp(ln, ln_a, np.log(sig))) for n, (sig, _)
                                          in zip(n_i, inel)]])
            for j, (_, rows) in enumerate(inel):
                muq[m, nz_m + j] = rows
                prut[m, nz_m + j] = np.nan
                acoef[m, nz_m + j] = np.nan
        tot = part.sum(axis=0)
        lam_inv[m] = tot
        nel[m] = len(part)
        cum[m, : len(part)] = np.cumsum(part, axis=0) / tot
        cum[m, len(part) - 1] = 1.0
        for j, z in enumerate(mat.z):
            if pwa is None:
                p, c = elastic.angular_parameters(model, z, e)
                prut[m, j] = p
                acoef[m, j] = float(np.atleast_1d(c)[0])
                muq[m, j] = analytic_muq(model, z, ang_e)
            else:
                prut[m, j] = np.nan
                acoef[m, j] = np.nan
                muq[m, j] = icdf_to_muq(tab.prob, tab.mu_icdf[pwa[int(z)]])
        # CSDA range: integral of dE / S = integral of E / S d(ln E), trapezoid on the grid
        stop = stopping_power(mat, e)
        if inelastic:
            stop = stop - np.minimum(binary_stopping(mat, e), BINARY_STOPPING_CAP * stop)
        integrand = e / stop
        rng[m, 1:] = np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(ln))
        rcut[m] = np.interp(np.log(cutoff_kev), ln, rng[m])
    eloss = np.zeros((nm, cum.shape[1]))
    if inelastic:
        for m, mat in enumerate(materials):
            eloss[m, len(mat.z): 2 * len(mat.z)] = 1.0
    rinvd = np.zeros((nm, N_GRID))
    solid = [m for m, mat in enumerate(materials) if not mat.is_vacuum]
    rinvd[solid, :-1] = 1.0 / np.diff(rng[solid], axis=1)
    return Tables(
        ln_e0=float(ln[0]),
        inv_dln=inv_dln,
        lam_inv=lam_inv,
        rng=rng,
        rcut=rcut,
        nel=nel,
        cum=cum,
        prut=prut,
        acoef=acoef,
        rinvd=rinvd,
        muq=np.ascontiguousarray(muq),
        ang_scale=float(inv_dlna / inv_dln),
        ang_off=float((ln[0] - ln_a[0]) * inv_dlna),
        ang_e_kev=ang_e,
        analytic=1 if angular == "analytic" else 0,
        model=model,
        eloss=eloss,
    )
