#!/usr/bin/env python3
"""Figures of docs/fastsim.md (runs the Monte Carlo on one 64 x 64 slice per energy; about a minute on 2 cores).

    .venv/bin/python docs/make_fastsim_figures.py

* docs/figures/fastsim_vs_mc.png: slice 0 of a leveled-wave structure (5 nm voxels) at 1, 2 and 4 keV: the face
  (binary), the Monte Carlo image (100 electrons/pixel, 38 degrees) and the shine-through projection, both
  normalised as I' = (I - eta_pore) / (eta_gold - eta_pore) with each method's own levels (see
  benchmarks/bench_fastsim.py), on the same colour scale; the correlation is printed in each title.
* docs/figures/fastsim_eta_curves.png: the shipped network's eta(E, Z, depth) against the Monte Carlo calibration
  table (sMC-BS) for several substrates; held-out curves (never trained on) drawn with open symbols.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_fastsim import fidelity  # noqa: E402

from fibsynth.fastsim.calibration import read_table  # noqa: E402
from fibsynth.fastsim.network import DEFAULT_TABLE, load_model  # noqa: E402
from fibsynth.structure import leveled_wave  # noqa: E402

FIG = REPO / "docs" / "figures"


def vs_mc() -> None:
    energies = (1.0, 2.0, 4.0)
    f = fidelity(energies, size=64, slices=1, electrons_per_pixel=100, seed=1, progress=False)
    st = f["structure"]
    face = leveled_wave(tuple(st["shape"]), voxel_size=st["voxel_nm"], solid_fraction=0.3,
                        ligament_nm=st["ligament_nm"], seed=st["seed"])[0]
    fig, axes = plt.subplots(len(energies), 3, figsize=(8.4, 2.9 * len(energies)))
    for row, e in zip(axes, energies):
        r = f["energies"][e]
        row[0].imshow(face, cmap="gray", interpolation="nearest")
        row[0].set_title(f"face (slice 0), gold = white", fontsize=8)
        row[1].imshow(r["_mc_norm"][0], cmap="gray", vmin=-0.2, vmax=1.1, interpolation="nearest")
        row[1].set_title(f"Monte Carlo {e:g} keV, 100 e/px", fontsize=8)
        row[2].imshow(r["_proj"][0], cmap="gray", vmin=-0.2, vmax=1.1, interpolation="nearest")
        cc = np.corrcoef(r["_mc"][0].ravel(), r["_proj"][0].ravel())[0, 1]
        row[2].set_title(f"projection {e:g} keV, K={r['slices_behind']} (r = {cc:.3f})", fontsize=8)
        print(f"{e:g} keV slice 0: corr {cc:.3f}, MC {r['seconds_mc']:.1f} s, projection {r['seconds_projection']:.3f} s")
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("64 x 64 px, 5 nm pixels, beam 38 deg tilted in y (down the image); same gray scale "
                 "(I - eta_pore)/(eta_gold - eta_pore)", fontsize=8)
    fig.tight_layout()
    fig.savefig(FIG / "fastsim_vs_mc.png", dpi=110)
    plt.close(fig)


def eta_curves() -> None:
    t = read_table(DEFAULT_TABLE)
    model = load_model()
    held = set(model.info.get("held_out_curves", []))
    subs = ["C", "Si", "Cu", "Ag", "W", "Au"]
    es = sorted(set(t["energy_kev"].tolist()))
    fig, axes = plt.subplots(1, len(es), figsize=(2.6 * len(es), 3.2), sharey=True)
    cols = plt.cm.viridis(np.linspace(0, 0.9, len(subs)))
    d = np.linspace(0, 190, 200)
    for ax, e in zip(axes, es):
        for s, c in zip(subs, cols):
            m = (t["energy_kev"] == e) & (t["substrate"] == s)
            if not m.any():
                continue
            z = t["Z"][m][0]
            key = f"{e:g}:{s}"
            ax.errorbar(t["thickness_nm"][m], t["eta"][m], 2 * t["eta_std"][m], fmt="o", ms=3,
                        mfc="none" if key in held else c, color=c, lw=0.6, label=s + (" (held out)" if key in held else ""))
            ax.plot(d, model.predict(e, z, d), "-", color=c, lw=1)
        ax.set_title(f"{e:g} keV", fontsize=9)
        ax.set_xlabel("epoxy thickness (nm)")
        ax.legend(fontsize=6)
    axes[0].set_ylabel("backscatter coefficient eta")
    fig.suptitle("sMC-BS (points, 2 sigma) and the shipped network (lines)", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIG / "fastsim_eta_curves.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    FIG.mkdir(parents=True, exist_ok=True)
    eta_curves()
    vs_mc()
    print("wrote", FIG / "fastsim_vs_mc.png", "and", FIG / "fastsim_eta_curves.png")
