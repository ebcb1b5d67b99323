#!/usr/bin/env python3
"""Make the Monte Carlo validation figures of docs/montecarlo.md (runs the engine; a few minutes on 2 cores).

    .venv/bin/python docs/make_mc_figures.py            # writes docs/figures/mc_validation.png, mc_shinethrough.png

Reference values (Mott-based codes, Hunger-Kuechler) are read from tests/physics/mc_reference.py, the single
place that transcribes /work/shared/reference/backscatter.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "physics"))
from mc_reference import ENERGIES, MOTT_CODES, RUTHERFORD_AU, hunger_kuechler  # noqa: E402

from fibsynth.physics.materials import get_material  # noqa: E402
from fibsynth.physics.montecarlo.engine import Physics, bulk_eta, film_eta  # noqa: E402
from fibsynth.physics.montecarlo.stack import StackSettings, simulate_slice  # noqa: E402
from fibsynth.physics.stopping import kanaya_okayama_range_nm  # noqa: E402

FIG = REPO / "docs" / "figures"


def validation(n: int = 100000) -> dict:
    out: dict = {"bulk": {}, "film": {}}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.3))
    es = np.array(ENERGIES)
    efine = np.geomspace(1, 20, 50)
    for mat, z, col in (("Au", 79, "C3"), ("C:2.26", 6, "C0")):
        res = [bulk_eta(mat, e, n, seed=1) for e in es]
        eta = np.array([r.eta for r in res])
        std = np.array([r.eta_std for r in res])
        out["bulk"][mat] = {"energy_kev": es.tolist(), "eta": eta.tolist(), "eta_std": std.tolist()}
        ax.errorbar(es, eta, 3 * std, fmt="o-", color=col, label=f"{mat.split(':')[0]}: fibsynth, Mott PWA (3$\\sigma$)")
        rb = [bulk_eta(mat, e, n, seed=4, physics=Physics(elastic="browning")) for e in es]
        out["bulk"][mat + "_browning"] = {"eta": [r.eta for r in rb], "eta_std": [r.eta_std for r in rb]}
        ax.plot(es, [r.eta for r in rb], "d--", ms=4, color=col, alpha=0.6,
                label=f"{mat.split(':')[0]}: fibsynth, Browning fit")
        ro = [bulk_eta(mat, e, n, seed=5, physics=Physics(inelastic_deflection=False))
              for e in es]
        out["bulk"][mat + "_elastic_only"] = {"eta": [r.eta for r in ro], "eta_std": [r.eta_std for r in ro]}
        ax.plot(es, [r.eta for r in ro], "v:", ms=4, color=col, alpha=0.6,
                label=f"{mat.split(':')[0]}: fibsynth, Mott PWA, no binary collisions")
        for code, mk in (("casino", "s"), ("penepma", "^")):
            ax.plot(es, MOTT_CODES[mat][code], mk, mfc="none", color=col, label=f"{mat.split(':')[0]}: {code.upper()}")
        lo = np.minimum(*MOTT_CODES[mat].values()) - 0.03
        hi = np.maximum(*MOTT_CODES[mat].values()) + 0.03
        ax.fill_between(es, lo, hi, color=col, alpha=0.12, lw=0)
        ax.plot(efine, [hunger_kuechler(z, e) for e in efine], ":", color=col, label=f"{mat.split(':')[0]}: Hunger-Kuechler")
    # the reference codes of the trap row are elastic-only
    ru = [bulk_eta("Au", e, n, seed=2, physics=Physics(elastic="rutherford", inelastic_deflection=False))
          for e in es]
    out["bulk"]["Au_rutherford"] = {"eta": [r.eta for r in ru], "eta_std": [r.eta_std for r in ru]}
    ax.plot(es, [r.eta for r in ru], "x--", color="k", label="Au: fibsynth, screened Rutherford")
    ax.plot(es, RUTHERFORD_AU, "+", color="k", ms=10, label="Au: screened Rutherford refs")
    ax.set_xscale("log")
    ax.set_xlabel("beam energy (keV)")
    ax.set_ylabel("backscatter coefficient $\\eta$")
    ax.set_title("bulk targets (band: Mott codes $\\pm$0.03)")
    ax.legend(fontsize=6.5, ncol=2)
    c = get_material("C:2.26")
    fr = np.array([0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.6])
    for e, col in ((2.0, "C0"), (5.0, "C1"), (10.0, "C2")):
        r_ko = kanaya_okayama_range_nm(c, e)
        rs = [film_eta(c, "Au", f * r_ko, e, 8000, seed=3, stream=j) for j, f in enumerate(fr)]
        eta = np.array([r.eta for r in rs])
        std = np.array([r.eta_std for r in rs])
        out["film"][str(e)] = {"t_over_rko": fr.tolist(), "r_ko_nm": r_ko, "eta": eta.tolist(), "eta_std": std.tolist()}
        bx.errorbar(fr, eta, 3 * std, fmt="o-", ms=3, color=col, label=f"{e:g} keV (R$_{{KO}}$ = {r_ko:.0f} nm)")
    bx.set_xlabel("carbon film thickness / Kanaya-Okayama range in carbon")
    bx.set_ylabel("$\\eta$")
    bx.set_title("C (2.26 g/cm$^3$) film on Au")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIG / "mc_validation.png", dpi=130)
    plt.close(fig)
    return out


def shinethrough(n_pix: int = 400) -> dict:
    rng = np.random.default_rng(5)
    noise = ndimage.gaussian_filter(rng.standard_normal((40, 64, 64)), sigma=(3.0, 3.0, 3.0), mode="wrap")
    vol = (noise > np.quantile(noise, 0.7)).astype(np.uint8)  # 30 % gold, ligaments ~10 voxels
    vox = (5.0, 5.0, 5.0)
    k = 20
    out = {}
    fig, axs = plt.subplots(1, 3, figsize=(12, 4.2))
    axs[0].imshow(vol[k], cmap="gray", interpolation="nearest")
    axs[0].set_title(f"structure slice {k} (white = gold)")
    for a, (e, ax) in enumerate(zip((2.0, 5.0), axs[1:])):
        s = StackSettings(energy_kev=e, electrons_per_pixel=n_pix, incidence_deg=38.0, seed=1)
        res = simulate_slice(vol, vox, k, s)
        img = res["detected"] / n_pix
        ax.imshow(img, cmap="gray", interpolation="nearest")
        ax.set_title(f"simulated BSE, {e:g} keV, 38 deg, {n_pix} e/px")
        face = vol[k] == 1
        behind = (~face) & (vol[k + 1 : k + 4].max(axis=0) == 1)
        deep = (~face) & (vol[k + 1 : k + 8].max(axis=0) == 0)
        out[str(e)] = {"gold": float(img[face].mean()), "epoxy_gold_1_3_behind": float(img[behind].mean()),
                       "epoxy_deep": float(img[deep].mean())}
    for ax in axs:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("shine-through: pores (epoxy) with gold 1-3 slices behind appear grey (5 nm voxels)")
    fig.tight_layout()
    fig.savefig(FIG / "mc_shinethrough.png", dpi=130)
    plt.close(fig)
    return out


def main() -> int:
    FIG.mkdir(parents=True, exist_ok=True)
    out = {"validation": validation(), "shinethrough": shinethrough()}
    (FIG / "mc_figures.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out["shinethrough"], indent=1))
    for mat, d in out["validation"]["bulk"].items():
        print(mat, " ".join(f"{v:.4f}" for v in d["eta"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
