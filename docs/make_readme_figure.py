#!/usr/bin/env python3
"""The README's structure figure: orthogonal slices of a generated leveled-wave structure with anisotropic
voxels (5 nm pixels, 10 nm slices) and its directional two-point correlation and lineal path functions.

    .venv/bin/python docs/make_readme_figure.py      # writes docs/figures/readme_structure.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fibsynth.config import VoxelSize  # noqa: E402
from fibsynth.metrics import isotropy_report, mean_ligament_diameter  # noqa: E402
from fibsynth.structure import leveled_wave  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures" / "readme_structure.png"


def main() -> None:
    voxel = VoxelSize(x=5.0, y=5.0, z=10.0)
    shape = (96, 192, 192)  # 960 nm in every direction
    solid = leveled_wave(shape, voxel, solid_fraction=0.3, ligament_nm=50.0, seed=7)
    d3 = mean_ligament_diameter(solid, voxel.zyx())
    rep = isotropy_report(solid, voxel.zyx(), return_functions=True)
    nz, ny, nx = shape
    fig = plt.figure(figsize=(13, 7.2))
    gs = fig.add_gridspec(2, 3, height_ratios=[1, 0.85])
    views = (
        ("xy (slice z = %d)" % (nz // 2), solid[nz // 2], (0, nx * voxel.x, ny * voxel.y, 0), "x (nm)", "y (nm)"),
        ("xz (y = %d)" % (ny // 2), solid[:, ny // 2], (0, nx * voxel.x, nz * voxel.z, 0), "x (nm)", "z (nm)"),
        ("yz (x = %d)" % (nx // 2), solid[:, :, nx // 2], (0, ny * voxel.y, nz * voxel.z, 0), "y (nm)", "z (nm)"),
    )
    for i, (name, img, ext, xl, yl) in enumerate(views):
        ax = fig.add_subplot(gs[0, i])
        ax.imshow(img, cmap="gray", extent=ext, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    colors = {"x": "tab:blue", "y": "tab:orange", "z": "tab:green"}
    for j, (key, label, err) in enumerate((("tpcf", "two-point correlation $S_2(r)$", "e_tpcf"),
                                            ("lpf", "lineal path $L(r)$", "e_lpf"))):
        ax = fig.add_subplot(gs[1, j])
        for a in "xyz":
            lags, f = rep["functions"][key][a]
            ax.plot(lags, f, "-" if a != "z" else "o-", ms=3, color=colors[a], label=f"along {a}")
        if key == "tpcf":
            ax.axhline(rep["solid_fraction"] ** 2, ls=":", color="0.5", label=r"$\phi^2$")
        ax.set_xlim(0, rep["lag_max_nm"] * 1.2)
        ax.set_xlabel("lag r (nm)")
        ax.set_ylabel(label)
        ax.set_title(f"{err} = {rep[err]:.3f}", fontsize=10)
        ax.legend(fontsize=8)
    ax = fig.add_subplot(gs[1, 2])
    ax.axis("off")
    txt = (
        "leveled-wave structure, seed 7\n"
        f"voxel 5 x 5 x 10 nm (x, y, z), {nx}x{ny}x{nz}\n\n"
        f"solid fraction: asked 0.30, got {rep['solid_fraction']:.3f}\n"
        f"ligament diameter (3D local thickness):\n   asked 50 nm, got {d3:.1f} nm\n"
        f"planar diameters: D_xy {rep['D_xy_nm']:.1f}, D_xz {rep['D_xz_nm']:.1f},\n   D_yz {rep['D_yz_nm']:.1f} nm\n"
        f"e_TPCF {rep['e_tpcf']:.3f}   e_LPF {rep['e_lpf']:.3f}   e_D {rep['e_diameter']:.3f}"
    )
    ax.text(0.0, 0.95, txt, va="top", family="monospace", fontsize=9.5)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=100)
    print(txt)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
