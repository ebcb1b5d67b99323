"""The demo's report step (experiment step kind ``demo_report``): measures the structure, draws the figures from
the steps' products (structure, Monte Carlo slices, projection, translated stack, segmentation, Otsu) and writes
``report.html`` and ``summary.json``. It reads step folders through :mod:`fibsynth.experiment.store` and is run by
:mod:`fibsynth.experiment.steps`; :mod:`fibsynth.demo` runs the experiment and re-exports it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fibsynth import __version__
from fibsynth.config import VoxelSize


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _orthoslices_figure(solid: np.ndarray, voxel: VoxelSize, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nz, ny, nx = solid.shape
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    views = (
        ("xy plane (z = %d)" % (nz // 2), solid[nz // 2], (0, nx * voxel.x, ny * voxel.y, 0), "x (nm)", "y (nm)"),
        ("xz plane (y = %d)" % (ny // 2), solid[:, ny // 2, :], (0, nx * voxel.x, nz * voxel.z, 0), "x (nm)", "z (nm)"),
        ("yz plane (x = %d)" % (nx // 2), solid[:, :, nx // 2], (0, ny * voxel.y, nz * voxel.z, 0), "y (nm)", "z (nm)"),
    )
    for ax, (name, img, extent, xl, yl) in zip(axes, views):
        ax.imshow(img, cmap="gray", extent=extent, interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _mc_figure(solid: np.ndarray, images: np.ndarray, k0: int, energy: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = images.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.4), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(solid[k0 + i], cmap="gray", interpolation="nearest")
        axes[0, i].set_title(f"structure, slice {k0 + i}", fontsize=9)
        axes[1, i].imshow(images[i], cmap="gray", interpolation="nearest")
        axes[1, i].set_title(f"Monte Carlo BSE, {energy:g} keV", fontsize=9)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def _image_row(panels: list[tuple[np.ndarray, str, np.ndarray | None]]) -> Any:
    """One row of gray images with titles and no ticks; a panel's mask (if any) is drawn over it in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.25 * len(panels), 3.6), squeeze=False)
    for ax, (img, title, mask) in zip(axes[0], panels):
        ax.imshow(img, cmap="gray", interpolation="nearest")
        if mask is not None and mask.any():
            ax.imshow(np.ma.masked_where(~mask, mask), cmap="autumn", alpha=0.8, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _fast_figure(face: np.ndarray, proj: np.ndarray, synth: np.ndarray, mc: np.ndarray,
                 real: np.ndarray | None = None, translator: str = "CycleGAN") -> Any:
    panels = [(face, "structure (face)", None), (proj, "shine-through projection", None),
              (synth, f"projection -> {translator}", None), (mc, "Monte Carlo", None)]
    if real is not None:
        panels.append((real, "real stack (user's, --real)", None))
    return _image_row(panels)


def read_real_stack(path: str | Path, max_slices: int = 16) -> tuple[np.ndarray, dict[str, Any]]:
    """Up to ``max_slices`` slices around the middle of a user's image stack (any format fibsynth reads) as float64,
    and a small description. One-line errors for unreadable or non-image data."""
    from fibsynth.errors import FibsynthError
    from fibsynth.io import read_volume

    vol = read_volume(path, lazy=True)
    data = vol.data
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or min(data.shape) < 1:
        raise FibsynthError(f"expected a 2-D image or a 3-D stack (z, y, x), got shape {tuple(data.shape)}", path,
                            param="real")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise FibsynthError(f"expected integer or float gray values, got {data.dtype}", path, param="real")
    k = data.shape[0] // 2
    lo = max(0, k - max_slices // 2)
    sub = np.asarray(data[lo : lo + max_slices], dtype=np.float64)
    if not np.all(np.isfinite(sub)):
        raise FibsynthError("the stack holds NaN or infinite values", path, param="real")
    desc = {"file": str(path), "shape (z, y, x)": str(tuple(data.shape)), "dtype": str(data.dtype),
            "slices used": f"{lo}..{lo + sub.shape[0] - 1}",
            "voxel size nm (from its metadata)": str(vol.meta.voxel_size_nm.zyx()) if vol.meta.voxel_size_nm else "none"}
    return sub, desc


def _physics_figure(mc: np.ndarray, proj: np.ndarray, synth: np.ndarray, real: np.ndarray | None = None,
                    translator: str = "CycleGAN") -> Any:
    """eta of gold under epoxy (shipped network) at 1, 2, 4 keV, and gray-value histograms of Monte Carlo,
    projection and translated output (each scaled to its own 0.5-99.5 percentile range, as the paper's Fig. 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fibsynth.fastsim.network import load_model

    net = load_model()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    depth = np.linspace(0, 150, 151)
    for e, col in ((1.0, "C0"), (2.0, "C1"), (4.0, "C2")):
        ax.plot(depth, net.predict(e, 79, depth), color=col, label=f"{e:g} keV")
    ax.set_xlabel("epoxy over gold (nm)")
    ax.set_ylabel("backscatter coefficient $\\eta$")
    ax.set_title("eta network: gold under epoxy", fontsize=10)
    ax.legend(fontsize=8)
    curves = [("Monte Carlo", mc, "k"), ("projection", proj, "C0"), (f"projection -> {translator}", synth, "C3")]
    if real is not None:
        curves.append(("real stack", real, "C2"))
    for name, img, col in curves:
        lo, hi = np.percentile(img, [0.5, 99.5])
        v = np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1).ravel()
        bx.hist(v, bins=64, range=(0, 1), density=True, histtype="step", color=col, label=name)
    bx.set_xlabel("gray value (scaled to the 0.5-99.5 % range)")
    bx.set_ylabel("density")
    bx.set_title("gray-value histograms of the same slice", fontsize=10)
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _seg_figure(img: np.ndarray, truth: np.ndarray, pred: np.ndarray, otsu: np.ndarray) -> Any:
    panels = [(img, "image", None), (truth, "ground truth", None)]
    for seg, name in ((pred, "2.5D U-Net"), (otsu, "Otsu")):
        wrong = seg != truth
        panels.append((seg, f"{name} ({100 * wrong.mean():.1f} % wrong, red)" if wrong.any() else name, wrong))
    return _image_row(panels)


def _seconds(step_dir: Path) -> float:
    """The seconds a step took when it ran (from its cache marker)."""
    try:
        return float(json.loads((Path(step_dir) / "DONE.json").read_text()).get("seconds", 0.0))
    except (OSError, ValueError):
        return 0.0


def _setting(params: dict, key: str) -> Any:
    """A Monte Carlo setting from the stack's parameter record, flat or inside its composed parts (beam, ...)."""
    if key in params:
        return params[key]
    for v in params.values():
        if isinstance(v, dict) and key in v:
            return v[key]
    raise KeyError(key)


def demo_report(p: Any, inputs: dict[str, Path], out: Path) -> dict[str, Any]:
    """The demo's report step: measure the structure, draw the figures from the steps' products and write
    ``report.html``, ``summary.json`` and ``directional.png`` into ``out``. Returns the summary."""
    from fibsynth.experiment.store import METRICS, PROJECTION, load
    from fibsynth.io import read_volume
    from fibsynth.metrics import isotropy_report, mean_ligament_diameter
    from fibsynth.metrics.plotting import plot_directional
    from fibsynth.report import Section, figure_png, write_report

    real_imgs, real_desc = read_real_stack(p.real) if p.real is not None else (None, None)
    solid, smeta = load(inputs["structure"])
    voxel = smeta.voxel_size_nm
    held_out = np.asarray(load(inputs["heldout_structure"])[0])
    images, mmeta = load(inputs["montecarlo"])
    synth_a, fmeta = load(inputs["synthetic_train"])
    synth_b, _ = load(inputs["synthetic_heldout"])
    pred, _ = load(inputs["segmentation"])
    otsu, _ = load(inputs["otsu"])
    size = solid.shape[0]
    k0 = int((mmeta.offset_voxels or (0, 0, 0))[0])
    mc_slices = images.shape[0]
    energy_kev = float(mmeta.energy_kev)
    mc_params = mmeta.parameters
    rec = fmeta.parameters
    translator = "paired translator" if rec.get("translator") == "paired" else "CycleGAN"
    timings: dict[str, float] = {
        "structure_s": _seconds(inputs["structure"]),
        "monte_carlo_s": _seconds(inputs["montecarlo"]),
        "fast_path_s": sum(_seconds(inputs[k]) for k in ("heldout_structure", "synthetic_train", "synthetic_heldout")),
        "segmentation_training_s": _seconds(inputs["model"]),
        "segmentation_inference_s": _seconds(inputs["segmentation"]),
    }
    sections: list[Section] = []

    # 1-2. structure and its measurements -------------------------------------------------------------------
    t0 = time.perf_counter()
    d3 = mean_ligament_diameter(solid, voxel.zyx())
    iso = isotropy_report(solid, voxel.zyx(), return_functions=True)
    timings["metrics_s"] = time.perf_counter() - t0
    measured = {
        "solid_fraction (requested)": p.solid_fraction,
        "solid_fraction (measured)": float(solid.mean()),
        "ligament diameter nm (requested)": p.ligament_nm,
        "ligament diameter nm (measured, 3D local thickness)": d3,
        "e_TPCF": iso["e_tpcf"],
        "e_LPF": iso["e_lpf"],
        "e_D": iso["e_diameter"],
        "D_xy nm": iso["D_xy_nm"],
        "D_xz nm": iso["D_xz_nm"],
        "D_yz nm": iso["D_yz_nm"],
    }
    plot_directional([("demo structure", iso)], out / "directional.png")
    sections.append(
        Section(
            "Ground-truth structure",
            "A leveled-wave (Gaussian random field level cut) bicontinuous structure; 1 = gold, 0 = epoxy-filled pore. "
            "The ligament diameter is the volume-weighted mean of the 3D local thickness of the solid.",
            tables=[("Requested and measured", measured)],
            figures=[
                ("Orthogonal slices of the structure", figure_png(_orthoslices_figure(solid, voxel, "structure"))),
                ("Directional two-point correlation and lineal path functions",
                 (out / "directional.png").read_bytes()),
            ],
        )
    )

    # 3. Monte Carlo cross-sections -------------------------------------------------------------------------
    electrons_per_pixel = int(_setting(mc_params, "electrons_per_pixel"))
    n_el = int(size * size * mc_slices * electrons_per_pixel)
    gold = solid[k0 : k0 + mc_slices].astype(bool)
    mc_table = {
        "beam energy keV": energy_kev,
        "electrons per pixel": electrons_per_pixel,
        "incidence on the face (deg)": _setting(mc_params, "incidence_deg"),
        "electrons simulated": n_el,
        "seconds": timings["monte_carlo_s"],
        "mean BSE yield over gold": float(images[gold].mean()),
        "mean BSE yield over epoxy": float(images[~gold].mean()),
    }
    sections.append(
        Section(
            "Monte Carlo FIB-SEM cross-sections",
            "Backscattered-electron images of freshly milled faces: the material in front of the cut is removed, "
            "the beam rasters the face at 38 degrees from its normal, electrons cross epoxy and backscatter from gold "
            "behind it (shine-through).",
            tables=[("Simulation", mc_table)],
            figures=[("Structure slices (top) and their simulated BSE images (bottom)",
                      figure_png(_mc_figure(solid, images, k0, energy_kev)))],
        )
    )

    # 4. fast path ------------------------------------------------------------------------------------------
    k_show = min(k0, synth_a.shape[0] - 1)
    proj_a = np.asarray(read_volume(inputs["synthetic_train"] / PROJECTION).data)
    sections.append(
        Section(
            "Fast physics path",
            "Shine-through projection (the eta(E, Z, depth) network trained on fibsynth's Monte Carlo film "
            "calibration) and " + ("the paired translator (the Monte Carlo's mean image regressed from the structure "
                                   "and its projection, plus binomial shot noise at the Monte Carlo's dose)"
                                   if translator == "paired translator" else "the shipped CycleGAN")
            + " that gives it the Monte Carlo look; seconds for a whole stack.",
            tables=[("Fast path", {"slices": 2 * size, "seconds": timings["fast_path_s"],
                                   "translation model": rec["translation_model"],
                                   "slices behind the face (K)": rec["projection"].get("slices_behind")})],
            figures=[(f"Structure | projection | {translator} output | Monte Carlo (same slice)"
                      + (" | the real stack's middle slice" if real_imgs is not None else ""),
                      figure_png(_fast_figure(solid[k_show], proj_a[k_show], synth_a[k_show], images[0],
                                              None if real_imgs is None else real_imgs[real_imgs.shape[0] // 2],
                                              translator))),
                     ("eta curves of the network, and gray-value histograms of one slice made three ways"
                      + (" and of the real stack" if real_imgs is not None else ""),
                      figure_png(_physics_figure(images[0], proj_a[k0], synth_a[k0], real_imgs, translator)))],
        )
    )
    if real_imgs is not None:
        sections.append(
            Section(
                "Real stack",
                "The user's own FIB-SEM stack (--real), shown next to the simulated images above. Where its gray "
                "values or texture differ from the synthetic stacks, train a domain-adaptation CycleGAN "
                "(fibsynth gan train --source synthetic.tif --target real.tif) and translate the synthetic "
                "training stacks before training the segmentation (docs/gan.md).",
                tables=[("Real stack", real_desc)],
            )
        )
    else:
        sections.append(
            Section(
                "Real stack",
                "No real stack was given. Run fibsynth demo --real YOUR_STACK.tif to see a slice and the gray-value "
                "histogram of your own FIB-SEM data next to the simulated images.",
            )
        )

    # 5. segmentation ---------------------------------------------------------------------------------------
    s_net = json.loads((inputs["score_unet"] / METRICS).read_text())
    s_otsu = json.loads((inputs["score_otsu"] / METRICS).read_text())
    seg_table: dict[str, float] = {}
    for name, sc in (("2.5D U-Net", s_net), ("Otsu", s_otsu)):
        for key in ("MP", "MGP", "MDS"):
            seg_table[f"{name}: {key}"] = float(sc[key])
    seg_table["training seconds"] = timings["segmentation_training_s"]
    sections.append(
        Section(
            "Segmentation",
            "A small 2.5D U-Net (slice + 2 neighbours) trained with Dice loss on the synthetic stack of the first "
            "structure, applied to the held-out structure's synthetic stack, scored against its ground truth "
            "(MP, MGP in percent; MDS = mean Dice of gold and pore) next to a global Otsu threshold. Demo "
            "settings (few epochs, higher learning rate) are for speed; see docs/segment.md for the paper's.",
            tables=[("Held-out stack", seg_table)],
            figures=[("Held-out slice: image | ground truth | U-Net | Otsu",
                      figure_png(_seg_figure(synth_b[k0], held_out[k0], pred[k0], otsu[k0])))],
        )
    )

    summary = {"fibsynth_version": __version__, "seed": p.seed, "timings": timings, "measured": measured,
               "montecarlo": mc_table, "segmentation": seg_table, "real_stack": real_desc}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(
        out / "report.html", "fibsynth demo", sections,
        meta={"fibsynth": __version__, "seed": p.seed, "voxel nm": voxel.x, "shape": str(solid.shape)},
    )
    return summary
