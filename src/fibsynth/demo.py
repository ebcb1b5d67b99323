"""The end-to-end demo behind ``make demo`` / ``fibsynth demo``.

On built-in defaults and a 2-core CPU it finishes in a few minutes: generate a leveled-wave nanoporous-gold
structure, measure it (solid fraction, 3D ligament diameter, isotropy errors), simulate a few FIB-SEM
cross-sections with the Monte Carlo engine (shine-through included), make Monte-Carlo-like stacks of it and of a
held-out structure with the fast path (shine-through projection + shipped CycleGAN), train a small 2.5D U-Net on
the first, segment the second, score it against its ground truth next to an Otsu threshold, and write a
self-contained HTML report. ``--real STACK`` adds a slice and the gray-value histogram of the user's own FIB-SEM
stack next to the simulated ones (the paper's Fig. 5 compares all of them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fibsynth import __version__
from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, write_volume


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
                 real: np.ndarray | None = None) -> Any:
    panels = [(face, "structure (face)", None), (proj, "shine-through projection", None),
              (synth, "projection -> CycleGAN", None), (mc, "Monte Carlo", None)]
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
        raise FibsynthError(f"--real: expected a 2-D image or a 3-D stack (z, y, x), got shape {tuple(data.shape)}", path)
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise FibsynthError(f"--real: expected integer or float gray values, got {data.dtype}", path)
    k = data.shape[0] // 2
    lo = max(0, k - max_slices // 2)
    sub = np.asarray(data[lo : lo + max_slices], dtype=np.float64)
    if not np.all(np.isfinite(sub)):
        raise FibsynthError("--real: the stack holds NaN or infinite values", path)
    desc = {"file": str(path), "shape (z, y, x)": str(tuple(data.shape)), "dtype": str(data.dtype),
            "slices used": f"{lo}..{lo + sub.shape[0] - 1}",
            "voxel size nm (from its metadata)": str(vol.meta.voxel_size_nm.zyx()) if vol.meta.voxel_size_nm else "none"}
    return sub, desc


def _physics_figure(mc: np.ndarray, proj: np.ndarray, synth: np.ndarray, real: np.ndarray | None = None) -> Any:
    """eta of gold under epoxy (shipped network) at 1, 2, 4 keV, and gray-value histograms of Monte Carlo,
    projection and CycleGAN output (each scaled to its own 0.5-99.5 percentile range, as the paper's Fig. 5)."""
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
    curves = [("Monte Carlo", mc, "k"), ("projection", proj, "C0"), ("projection -> CycleGAN", synth, "C3")]
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


def _segment(out: Path, img_a, truth_a, img_b, truth_b, voxel: VoxelSize, seed: int, console, timings):
    from fibsynth.metrics import evaluate_segmentation
    from fibsynth.segment.baseline import otsu_threshold
    from fibsynth.segment.infer import predict_array
    from fibsynth.segment.train import TrainSettings, train

    label_meta = VolumeMeta(kind="label", voxel_size_nm=voxel, seed=seed)
    write_volume(out / "train_labels.tif", truth_a, label_meta)
    settings = TrainSettings(mode="2.5d", k=2, features=(8, 16, 32), num_res_units=1, patch=32, stride=16, batch=16,
                             epochs=12, lr=3e-3, early_stop=5, seed=seed, augment="xflip")
    t0 = time.perf_counter()
    with console.status("training a 2.5D U-Net on the synthetic stack ..."):
        train([out / "synthetic_train.tif"], [out / "train_labels.tif"], out / "segmentation_model", settings,
              verbose=False)
    timings["segmentation_training_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = predict_array(out / "segmentation_model", img_b)
    timings["segmentation_inference_s"] = time.perf_counter() - t0
    otsu = (img_b > otsu_threshold(img_b)).astype(np.uint8)
    write_volume(out / "heldout_segmented.tif", pred, label_meta.model_copy(update={"seed": seed + 1}))
    s_net = evaluate_segmentation(pred, truth_b)
    s_otsu = evaluate_segmentation(otsu, truth_b)
    table = {}
    for name, sc in (("2.5D U-Net", s_net), ("Otsu", s_otsu)):
        for key in ("MP", "MGP", "MDS"):
            table[f"{name}: {key}"] = float(sc[key])
    table["training seconds"] = timings["segmentation_training_s"]
    console.print(f"[green]segmentation[/] MDS U-Net {s_net['MDS']:.3f} vs Otsu {s_otsu['MDS']:.3f} "
                  f"(training {timings['segmentation_training_s']:.0f} s)")
    return table, pred, otsu


def run_demo(
    out: str | Path = "demo-output",
    *,
    size: int = 128,
    seed: int = 0,
    voxel_nm: float = 5.0,
    solid_fraction: float = 0.3,
    ligament_nm: float = 40.0,
    energy_kev: float = 2.0,
    mc_slices: int = 3,
    electrons_per_pixel: int = 100,
    real: str | Path | None = None,
) -> dict[str, Any]:
    """Run the demo and return a summary (also written to ``OUT/summary.json``). ``real``: the user's own FIB-SEM
    stack, shown (one slice, gray-value histogram) next to the simulated images."""
    from fibsynth.metrics import isotropy_report, mean_ligament_diameter
    from fibsynth.metrics.plotting import plot_directional
    from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack
    from fibsynth.report import Section, figure_png, write_report
    from fibsynth.structure import leveled_wave

    console = _console()
    real_imgs, real_desc = read_real_stack(real) if real is not None else (None, None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    voxel = VoxelSize.from_xy_z(voxel_nm, voxel_nm)
    timings: dict[str, float] = {}
    sections: list[Section] = []

    # 1. structure ------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    with console.status("generating a leveled-wave structure ..."):
        solid, model = leveled_wave(
            (size, size, size), voxel, solid_fraction, ligament_nm, seed=seed, return_model=True
        )
    timings["structure_s"] = time.perf_counter() - t0
    write_volume(out / "structure.tif", solid, model.meta())
    console.print(f"[green]structure[/] {solid.shape} written to {out / 'structure.tif'} ({timings['structure_s']:.1f} s)")

    # 2. measurements -------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    with console.status("measuring ligament diameter and isotropy ..."):
        d3 = mean_ligament_diameter(solid, voxel.zyx())
        iso = isotropy_report(solid, voxel.zyx(), return_functions=True)
    timings["metrics_s"] = time.perf_counter() - t0
    measured = {
        "solid_fraction (requested)": solid_fraction,
        "solid_fraction (measured)": float(solid.mean()),
        "ligament diameter nm (requested)": ligament_nm,
        "ligament diameter nm (measured, 3D local thickness)": d3,
        "e_TPCF": iso["e_tpcf"],
        "e_LPF": iso["e_lpf"],
        "e_D": iso["e_diameter"],
        "D_xy nm": iso["D_xy_nm"],
        "D_xz nm": iso["D_xz_nm"],
        "D_yz nm": iso["D_yz_nm"],
    }
    console.print(f"[green]measured[/] ligament {d3:.1f} nm (asked {ligament_nm}), e_TPCF {iso['e_tpcf']:.3f}")
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

    # 3. Monte Carlo cross-sections ----------------------------------------------------------------------
    k0 = size // 2
    settings = StackSettings(energy_kev=energy_kev, electrons_per_pixel=electrons_per_pixel, seed=seed)
    t0 = time.perf_counter()
    res = simulate_stack(solid, voxel, settings, slices=(k0, k0 + mc_slices), progress=True)
    timings["monte_carlo_s"] = time.perf_counter() - t0
    images = np.asarray(res["eta"], dtype=np.float32)
    mc_meta = VolumeMeta(
        kind="image", voxel_size_nm=voxel, generator="montecarlo", energy_kev=energy_kev,
        materials={"0": settings.pore, "1": settings.solid}, seed=seed,
        parameters={**settings.model_dump(), "slices": [k0, k0 + mc_slices]},
    )
    write_volume(out / "montecarlo.tif", images, mc_meta)
    n_el = int(size * size * mc_slices * electrons_per_pixel)
    gold = solid[k0 : k0 + mc_slices].astype(bool)
    mc_table = {
        "beam energy keV": energy_kev,
        "electrons per pixel": electrons_per_pixel,
        "incidence on the face (deg)": settings.incidence_deg,
        "electrons simulated": n_el,
        "seconds": timings["monte_carlo_s"],
        "mean BSE yield over gold": float(images[gold].mean()),
        "mean BSE yield over epoxy": float(images[~gold].mean()),
    }
    console.print(f"[green]Monte Carlo[/] {mc_slices} slices, {n_el} electrons in {timings['monte_carlo_s']:.1f} s")
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

    # 4. fast path: Monte-Carlo-like stacks of the structure and of a held-out one ------------------------
    from fibsynth.synth import synthesize

    t0 = time.perf_counter()
    held_out, held_model = leveled_wave(
        (size, size, size), voxel, solid_fraction, ligament_nm, seed=seed + 1, return_model=True
    )
    write_volume(out / "heldout_structure.tif", held_out, held_model.meta())
    with console.status("fast path: projection + CycleGAN ..."):
        proj_a, synth_a, rec = synthesize(solid, voxel.zyx(), energy_kev, seed=seed)
        _, synth_b, _ = synthesize(held_out, voxel.zyx(), energy_kev, seed=seed + 1)
    timings["fast_path_s"] = time.perf_counter() - t0
    fast_meta = VolumeMeta(kind="image", voxel_size_nm=voxel, generator="synth (projection + CycleGAN)",
                           energy_kev=energy_kev, materials={"0": "epoxy", "1": "gold"}, seed=seed, parameters=rec)
    write_volume(out / "synthetic_train.tif", synth_a, fast_meta)
    write_volume(out / "synthetic_heldout.tif", synth_b, fast_meta.model_copy(update={"seed": seed + 1}))
    console.print(f"[green]fast path[/] 2 x {size} slices in {timings['fast_path_s']:.1f} s")
    k_show = min(k0, proj_a.shape[0] - 1)
    sections.append(
        Section(
            "Fast physics path",
            "Shine-through projection (the eta(E, Z, depth) network trained on fibsynth's Monte Carlo film "
            "calibration) and the shipped CycleGAN that gives it the Monte Carlo look; seconds for a whole stack.",
            tables=[("Fast path", {"slices": 2 * size, "seconds": timings["fast_path_s"],
                                   "translation model": rec["translation_model"],
                                   "slices behind the face (K)": rec["projection"].get("slices_behind")})],
            figures=[("Structure | projection | CycleGAN output | Monte Carlo (same slice)"
                      + (" | the real stack's middle slice" if real_imgs is not None else ""),
                      figure_png(_fast_figure(solid[k_show], proj_a[k_show], synth_a[k_show], images[0],
                                              None if real_imgs is None else real_imgs[real_imgs.shape[0] // 2]))),
                     ("eta curves of the network, and gray-value histograms of one slice made three ways"
                      + (" and of the real stack" if real_imgs is not None else ""),
                      figure_png(_physics_figure(images[0], proj_a[k0], synth_a[k0], real_imgs)))],
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

    # 5. segmentation trained on synthetic data, applied to the held-out stack ----------------------------
    seg_table, pred, otsu = _segment(out, synth_a, solid, synth_b, held_out, voxel, seed, console, timings)
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

    summary = {"fibsynth_version": __version__, "seed": seed, "timings": timings, "measured": measured,
               "montecarlo": mc_table, "segmentation": seg_table, "real_stack": real_desc}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    report = write_report(
        out / "report.html", "fibsynth demo", sections,
        meta={"fibsynth": __version__, "seed": seed, "voxel nm": voxel_nm, "shape": str(solid.shape)},
    )
    console.print(f"[bold green]report[/] {report}")
    return summary
