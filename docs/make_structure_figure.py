"""Figures for docs/structure.md (run: .venv/bin/python docs/make_structure_figure.py).

* structure_slices.png: orthogonal slices (xy, xz, yz) of a single-level and a hierarchical structure.
* structure_calibration.png: the calibration c(phi) = d / lambda (table in fibsynth.structure.calibration)
  and the measured ligament diameter / requested for generated structures (fibsynth local thickness).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fibsynth.metrics.thickness import mean_ligament_diameter  # noqa: E402
from fibsynth.structure import hierarchical, leveled_wave  # noqa: E402
from fibsynth.structure.calibration import CALIBRATION_SETUP, LIGAMENT_FACTOR_TABLE  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures"


def slices() -> None:
    n = 160
    lwm = leveled_wave((n, n, n), 5.0, 0.3, 50.0, seed=1)
    hnpg = hierarchical((n, n, n), 3.0, 110.0, 15.0, 0.5, 0.4, seed=1)
    fig, axes = plt.subplots(2, 3, figsize=(10, 7))
    rows = [
        (lwm, "LWM", 5.0),
        (hnpg, "HNPG", 3.0),
    ]
    for r, (vol, short, vox) in enumerate(rows):
        c = n // 2
        ext = n * vox
        for k, (img, name, xl, yl) in enumerate(
            [(vol[c], "xy (z = mid)", "x (nm)", "y (nm)"), (vol[:, c, :], "xz (y = mid)", "x (nm)", "z (nm)"),
             (vol[:, :, c], "yz (x = mid)", "y (nm)", "z (nm)")]
        ):
            ax = axes[r, k]
            ax.imshow(img, cmap="gray", origin="lower", extent=(0, ext, 0, ext), interpolation="nearest")
            ax.set_title(f"{short}: {name}", fontsize=9)
            ax.set_xlabel(xl, fontsize=8)
            ax.set_ylabel(yl, fontsize=8)
            ax.tick_params(labelsize=7)
        print(f"{short}: solid fraction {vol.mean():.4f}")
    fig.suptitle(
        "white = solid gold. Top, LWM: phi = 0.30, d = 50 nm, 5 nm voxels, 160^3.\n"
        "Bottom, HNPG: upper D1 = 110 nm, F1 = 0.5 AND lower D2 = 15 nm, F2 = 0.4, 3 nm voxels, 160^3 (total 0.20)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(OUT / "structure_slices.png", dpi=110)
    plt.close(fig)


def calibration() -> None:
    phis = np.array(sorted(LIGAMENT_FACTOR_TABLE))
    cs = np.array([LIGAMENT_FACTOR_TABLE[p] for p in phis])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(phis, cs, "o-")
    a1.set_xlabel("solid fraction phi")
    a1.set_ylabel("c = d / lambda")
    a1.set_title(
        f"calibration ({CALIBRATION_SETUP['volume'][0]}^3, lambda = {CALIBRATION_SETUP['wavelength_voxels']:.0f} vox, "
        f"{len(CALIBRATION_SETUP['seeds'])} seeds)",
        fontsize=9,
    )
    a1.grid(alpha=0.3)
    for phi, mk in zip((0.2, 0.3, 0.4, 0.5), "osd^"):
        ds = [6, 8, 10, 12, 16]
        ratio = []
        for d in ds:
            size = int(min(128, max(64, 8 * d)))
            s = leveled_wave((size,) * 3, 1.0, phi, float(d), seed=20)
            ratio.append(mean_ligament_diameter(s, (1.0, 1.0, 1.0)) / d)
        a2.plot(ds, ratio, mk + "-", label=f"phi = {phi}")
        print(f"phi = {phi}: measured/requested {np.round(ratio, 3).tolist()} for d = {ds} voxels")
    a2.axhspan(0.9, 1.1, color="g", alpha=0.1, label="+-10 %")
    a2.axhline(1.0, color="k", lw=0.8)
    a2.set_xlabel("requested ligament diameter (voxels)")
    a2.set_ylabel("measured / requested")
    a2.set_title("accuracy (seed 20, volumes 64^3-128^3)", fontsize=9)
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(OUT / "structure_calibration.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    slices()
    calibration()
