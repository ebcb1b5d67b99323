"""Figure docs/figures/mott_validation.png (+ mott_validation.json): Dirac partial-wave (Mott) cross sections.

Left: DCS of Au at 1, 2, 10 keV: PWA (fibsynth.physics.mott) vs Browning et al.'s fit and Joy's screened
Rutherford (the engine's two current models, fibsynth.physics.elastic). Right: sigma_el and sigma_1 vs E for
Au and C from the shipped tables vs ELSEPA (PENELOPE 2008 pdeel files, read when the optional .venv-bench
install is present; otherwise the ELSEPA points are omitted).

    python docs/make_mott_figure.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fibsynth.physics import elastic, mott  # noqa: E402
from fibsynth.physics.mott_tables import load_mott_tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PDEEL = ROOT / ".venv-bench/lib/python3.11/site-packages/pymontecarlo_penepma/penepma/pendbase/pdfiles"


def model_dcs(model, z, e_kev, mu):
    """dsigma/dOmega (cm^2/sr) of the engine's Browning / screened-Rutherford models on the mu grid."""
    sig = float(elastic.total_cross_section_nm2(model, z, e_kev)) * 1e-14
    p, c = elastic.angular_parameters(model, z, e_kev)
    a = float(c) / e_kev
    pdf = float(p) * a * (1 + a) / (a + mu) ** 2 + (1 - float(p)) * 1.0  # dP/dmu
    return sig * pdf / (4 * np.pi)


def main() -> None:
    out = {}
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 5))
    theta = np.radians(np.linspace(0.2, 180, 600))
    mu = (1 - np.cos(theta)) / 2
    for e, col in zip((1.0, 2.0, 10.0), ("C0", "C1", "C2")):
        r = mott.mott_cross_sections(79, e * 1000, mu=mu)
        ax0.semilogy(np.degrees(theta), r.dcs, col, label=f"PWA {e:g} keV")
        ax0.semilogy(np.degrees(theta), model_dcs("mott", 79, e, mu), col + "--", lw=1, label=f"Browning {e:g} keV")
        ax0.semilogy(np.degrees(theta), model_dcs("rutherford", 79, e, mu), col + ":", lw=1, label=f"scr. Rutherford {e:g} keV")
        full = mott.mott_cross_sections(79, e * 1000)
        out[f"Au_{e:g}keV"] = dict(sigma_el_pwa=full.sigma_el, sigma_1_pwa=full.sigma_1, sigma_2_pwa=full.sigma_2,
                                   sigma_el_browning=float(elastic.browning_total_nm2(79, e)) * 1e-14)
    ax0.set_xlabel("theta (deg)")
    ax0.set_ylabel("dsigma/dOmega (cm^2/sr)")
    ax0.set_title("Au: Dirac PWA vs the engine's current models")
    ax0.legend(fontsize=7, ncol=3)
    t = load_mott_tables([79, 6], compute_missing=False)
    for j, (z, name, col) in enumerate([(79, "Au", "C3"), (6, "C", "C0")]):
        ax1.loglog(t.e_ev, t.sigma_el[j], col, label=f"{name} sigma_el PWA")
        ax1.loglog(t.e_ev, t.sigma_1[j], col + "--", label=f"{name} sigma_1 PWA")
        ax1.loglog(t.e_ev, elastic.browning_total_nm2(z, t.e_ev / 1000) * 1e-14, col + ":", lw=1, label=f"{name} sigma_el Browning")
        f = PDEEL / f"pdeel{z:02d}.p08"
        if f.exists():
            a = np.loadtxt(f, skiprows=1)
            a = a[(a[:, 0] >= 50) & (a[:, 0] <= 40000)]
            ax1.loglog(a[:, 0], a[:, 1], col + "o", ms=3, mfc="none", label=f"{name} sigma_el ELSEPA")
            ax1.loglog(a[:, 0], a[:, 2], col + "s", ms=3, mfc="none", label=f"{name} sigma_1 ELSEPA")
            le = np.log(a[:, 0])
            rel0 = np.exp(np.interp(le, np.log(t.e_ev), np.log(t.sigma_el[j]))) / a[:, 1] - 1
            rel1 = np.exp(np.interp(le, np.log(t.e_ev), np.log(t.sigma_1[j]))) / a[:, 2] - 1
            rel2 = np.exp(np.interp(le, np.log(t.e_ev), np.log(t.sigma_2[j]))) / a[:, 3] - 1
            out[f"{name}_vs_elsepa"] = dict(e_ev=a[:, 0].tolist(), rel_sigma_el=rel0.round(4).tolist(),
                                           rel_sigma_1=rel1.round(4).tolist(), rel_sigma_2=rel2.round(4).tolist())
    ax1.set_xlabel("E (eV)")
    ax1.set_ylabel("cross section (cm^2)")
    ax1.set_title("sigma_el, sigma_1: PWA tables vs ELSEPA (PENELOPE 2008)")
    ax1.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(ROOT / "docs/figures/mott_validation.png", dpi=110)
    (ROOT / "docs/figures/mott_validation.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
