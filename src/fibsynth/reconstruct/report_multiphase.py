"""The HTML report of ``fibsynth reconstruct`` with three or more phases (:mod:`fibsynth.reconstruct.multiphase`):
the binary report's sections with a colour per phase, per-phase tables beside multi-Otsu, and the confidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.reconstruct.report import (drift_labels, _planes, _plt, confidence_figure, drift_figure,
                                         histogram_figure, training_figure)

PHASE_COLOURS = ("#1f1f1f", "#e69f00", "#56b4e9", "#009e73", "#cc79a7")


def _cmap(n: int):
    from matplotlib.colors import ListedColormap

    return ListedColormap(list(PHASE_COLOURS[:n]))


def overlay_figure_phases(real: np.ndarray, seg: np.ndarray, voxel: VoxelSize, materials: dict[str, str]):
    """Top: the stack in three planes; bottom: the same with each phase in its colour (label 0 transparent)."""
    from matplotlib.patches import Patch

    plt = _plt()
    n = len(materials)
    cmap = _cmap(n)
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.6), squeeze=False)
    for j, ((name, img, ext), (_, s, _)) in enumerate(zip(_planes(real, voxel), _planes(seg, voxel))):
        for i in range(2):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", extent=ext, interpolation="nearest", aspect="equal")
            if i == 1:
                ax.imshow(np.ma.masked_where(s == 0, s), cmap=cmap, vmin=-0.5, vmax=n - 0.5, alpha=0.45, extent=ext,
                          interpolation="nearest", aspect="equal")
            ax.set_title(name + (" with the segmentation" if i else ""), fontsize=9)
            ax.set_xlabel("nm")
    fig.legend(handles=[Patch(color=PHASE_COLOURS[i], label=f"{i}: {materials[str(i)]}" + (" (not coloured)" if i == 0
                                                                                           else ""))
                        for i in range(n)], loc="lower center", ncol=n, fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def labels_figure(segs: dict[str, np.ndarray], materials: dict[str, str]):
    """Middle slice of each label volume (U-Net, multi-Otsu, truth) in the phase colours."""
    plt = _plt()
    n = len(materials)
    fig, axes = plt.subplots(1, len(segs), figsize=(3.6 * len(segs), 3.8), squeeze=False)
    for ax, (name, s) in zip(axes[0], segs.items()):
        ax.imshow(s[s.shape[0] // 2], cmap=_cmap(n), vmin=-0.5, vmax=n - 0.5, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def confidence_figure_phases(conf: np.ndarray, voxel: VoxelSize):
    return confidence_figure(conf, conf, voxel, bar_label="(n P_max - 1) / (n - 1)", hist_label="confidence per voxel",
                             hist_title="near 1 = decided")


def examples_figure_phases(real, ideal, synth, adapted, label, n: int):
    plt = _plt()
    panels = [(real, "real stack (middle slice)", "gray"), (label, "synthetic ground truth", _cmap(n))]
    if ideal is not None:
        panels.append((ideal, "its ideal image (n-phase fast path)", "gray"))
    panels.append((synth, "with random microscope artifacts", "gray"))
    if adapted is not None:
        panels.append((adapted, "adapted to the real stack", "gray"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.4), squeeze=False)
    for ax, (img, t, cm) in zip(axes[0], panels):
        kw = {"vmin": -0.5, "vmax": n - 0.5} if cm != "gray" else {}
        ax.imshow(img, cmap=cm, interpolation="nearest", **kw)
        ax.set_title(t, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def phase_table(row: dict[str, Any]) -> dict[str, str]:
    out = {}
    for i, p in row["phases"].items():
        parts = [f"fraction {p['fraction']:.3f}"]
        if p.get("Dice") is not None:
            parts.insert(0, f"Dice vs truth {p['Dice']:.3f}")
        for k, lab in (("diameter_nm", "diameter nm"), ("e_tpcf", "e_TPCF"), ("e_lpf", "e_LPF"), ("e_diameter", "e_D"),
                       ("D_xy_nm", "D_xy nm"), ("D_xz_nm", "D_xz nm"), ("D_yz_nm", "D_yz nm")):
            v = p.get(k)
            if v is not None and np.isfinite(v):
                parts.append(f"{lab} {v:.3g}")
        out[f"phase {i} ({p['material']})"] = "; ".join(parts)
    if "MDS" in row:
        out["all phases"] = f"MDS {row['MDS']:.3f} (mean Dice over phases), MP {row['MP %']:.1f} %"
    return out


def estimate_table(est: dict[str, Any], materials) -> dict[str, str]:
    rows = {}
    for k, v in est["quantities"].items():
        if k.startswith("fraction_"):
            i = int(k.split("_")[1])
            lab = f"volume fraction of phase {i} ({materials[i]})"
        elif k.startswith("diameter_"):
            i = int(k.split("_")[1])
            lab = f"diameter of phase {i} ({materials[i]}), 3D local thickness nm"
        elif k == "network_diameter_nm":
            lab = "diameter of the solid network (all phases but 0) nm"
        else:
            lab = k
        rows[lab] = f"{v['value']:.4g} +- {v['uncertainty']:.2g}"
    return rows



def write_phases_report(path: Path, summary: dict, *, real, seg, conf, insp, gen_dir: Path, img_dir: Path | None,
                        history: list, voxel: VoxelSize) -> Path:
    from fibsynth.report import Section, figure_png, write_report

    n = summary["phases"]
    mats = summary["materials"]
    mlist = [mats[str(i)] for i in range(n)]
    ev = summary["evaluation"]
    tr = summary["training"]
    sections = []
    text = (f"fibsynth segmented your stack into {n} phases ("
            + ", ".join(f"{i} = {m}" for i, m in enumerate(mlist)) + ") with a U-Net trained only on synthetic "
            "images of structures like yours: it estimated each phase's volume fraction and size from multi-Otsu "
            "thresholds, generated matching multiphase ground-truth structures, imaged them with one material per "
            "phase at your beam energy and voxel size with random microscope artifacts, "
            + ("matched their gray values to your stack's histogram, " if summary.get("adaptation") else "")
            + "trained the network on them and applied it to your stack. The files are segmentation.tif (labels "
            f"0..{n - 1}), probability_<i>.tif (P(phase i) per voxel), confidence.tif ((n P_max - 1)/(n - 1): "
            "0 = undecided, 1 = certain) and multiotsu.tif (global multi-Otsu thresholds) for comparison.")
    if tr.get("best_val_mds") is not None:
        text += (f"\n\nHow far to trust it: on held-out synthetic structures the network scored MDS "
                 f"{tr['best_val_mds']:.3f} (mean Dice over the {n} phases; 1 = perfect) against multi-Otsu's "
                 f"{tr['val_multiotsu_mds']:.3f} on the same data. ")
    text += (f"{100 * float((conf < 0.5).mean()):.1f} % of the voxels have a confidence below 0.5; they lie on the "
             "boundaries between phases.")
    if summary["warnings"]:
        text += "\n\nWARNING: " + " ".join(summary["warnings"])
    tables = [(f"{name}: per phase (sizes in nm; isotropy errors 0 = the same statistics along x, y and z)",
               phase_table(row)) for name, row in ev.items()]
    segs = {"U-Net (fibsynth)": seg}
    mo = path.parent / "multiotsu.tif"
    if mo.exists():
        from fibsynth.io import read_volume

        segs["multi-Otsu"] = np.asarray(read_volume(mo).data)
    sections.append(Section("Result", text, tables=tables, figures=[
        ("Your stack in three planes, top: as recorded; bottom: with the segmentation (one colour per phase)",
         figure_png(overlay_figure_phases(real, seg, voxel, mats))),
        ("Middle slice: the U-Net's phases beside multi-Otsu's", figure_png(labels_figure(segs, mats)))]))
    sections.append(Section("Confidence", "Where the network is unsure (dark) the boundary between two phases could "
                            "lie a pixel or two elsewhere, or two phases of similar brightness are confused.",
                            figures=[("Per-voxel confidence in three planes and its distribution",
                                      figure_png(confidence_figure_phases(conf, voxel)))]))
    itab = dict(summary["real_stack"])
    for k, lab in (("noise_sigma", "noise sigma (gray values)"), ("noise_relative", "noise / (99 % - 1 % gray range)"),
                   ("stripe_power", "curtain-stripe power (share of slice variance)"),
                   ("drift_px_per_slice", drift_labels(insp)[0])):
        itab[lab] = summary["inspection"].get(k)
    if summary.get("region"):
        itab["alignment fill (not microscope data)"] = summary["region"]["note"]
    itab["corrections applied"] = ", ".join(summary["settings"]["correct"]) or "none (ask with --correct)"
    sections.append(Section("Your stack", f"Beam energy {summary['energy_kev']:g} keV ({summary['energy_source']}).",
                            tables=[("What was found", itab)], figures=[("Histogram and drift", figure_png(drift_figure(insp)))]))
    est = summary["estimate_first_pass"]
    gen = {}
    for st in summary["structures"]:
        p, m = st["parameters"], st["measured"]
        req = (f"{p['kind']}, fractions {', '.join(f'{f:.3f}' for f in p['fractions'])}, "
               + (f"ligaments A/B {p['ligament_nm'][0]:.1f}/{p['ligament_nm'][1]:.1f} nm" if p["kind"] == "two-field"
                  else "radii " + ", ".join(f"{r:.1f}" for r in p["radius_nm"]) + " nm"))
        meas = ", ".join(f"{m[f'fraction_{i}']:.3f}" for i in range(n))
        dia = ", ".join(f"{m[f'diameter_{i}_nm']:.1f}" for i in range(n))
        gen[st["name"]] = f"{req} -> measured fractions {meas}, diameters {dia} nm"
    sections.append(Section(
        "Structure: estimated and generated",
        "Each phase's volume fraction and diameter (3D mean local thickness) were estimated from multi-Otsu and "
        "n-means thresholds of the median-filtered stack (the k-th darkest gray class given to the k-th darkest "
        "material by bulk backscatter: " + " < ".join(mlist[i] for i in est.get("brightness_order", range(n)))
        + "); the uncertainty combines the spread over the stack's octants and between the two thresholds. The "
        "training structures were drawn around these values (for three phases: two leveled-wave fields, A the solid "
        "network and B the part of it that is phase 2).",
        tables=[("First estimate", estimate_table(est, mlist)),
                *([("Re-estimate from the reconstruction (round 1)", estimate_table(summary["estimate_from_reconstruction"],
                                                                                     mlist))]
                  if summary.get("estimate_from_reconstruction") else []),
                ("Rounds", {"moved beyond the uncertainty": ", ".join(summary.get("moved") or []) or "nothing",
                            "rounds run": summary.get("rounds", 1),
                            "used": summary.get("round_choice", {}).get("reason", "")}),
                ("Generated training and validation structures of the round used (requested -> measured)", gen)]))
    figs = []
    if (gen_dir / "train_0_img.npy").exists():
        lbl = np.load(gen_dir / "train_0_lbl.npy")
        k = lbl.shape[0] // 2
        synth = np.load(gen_dir / "train_0_img.npy")
        adapted = np.load(img_dir / "train_0_img.npy") if img_dir is not None else None
        ideal = np.load(gen_dir / "example_ideal.npy") if (gen_dir / "example_ideal.npy").exists() else None
        figs = [("Middle slices", figure_png(examples_figure_phases(real[real.shape[0] // 2], ideal, synth[k],
                                                                    None if adapted is None else adapted[k], lbl[k], n))),
                ("Gray-value histograms", figure_png(histogram_figure(real, synth, adapted,
                                                                      summary.get("histogram_distances"))))]
    dist = summary.get("histogram_distances")
    dtab = ({"Wasserstein distance to the real histogram, before adaptation": dist["before"]["wasserstein"],
             "after adaptation": dist["after"]["wasserstein"]} if dist else {})
    sections.append(Section("Training data: synthetic images matched to your stack",
                            "Each synthetic stack is a multiphase ground truth imaged with one material per phase "
                            "(the n-phase shine-through projection: every material behind the face shines through "
                            "in proportion to its own backscatter), with random microscope artifacts at your stack's "
                            "noise level" + (", then mapped onto your stack's gray-value histogram." if dist else "."),
                            tables=[("Histogram distances (0 = identical)", dtab)] if dtab else [], figures=figs))
    ttab = {"mode": summary["settings"]["mode"], "classes": n, **summary["segmentation_plan"],
            "steps run": tr.get("steps_run"), "best validation MDS (held-out synthetic)": tr.get("best_val_mds"),
            "multi-Otsu on the same validation data": tr.get("val_multiotsu_mds")}
    sections.append(Section("Segmentation network", f"A {n}-class U-Net (softmax; Dice + cross-entropy loss) "
                            "validated on held-out synthetic structures.", tables=[("Training", ttab)],
                            figures=[("Validation score during training", figure_png(training_figure(history)))]))
    steps = {f"{r['step']} ({r['key']})": f"{r['status']}, {r['seconds']:.1f} s" for r in summary["steps"]}
    steps["total"] = f"{summary['seconds_total']:.1f} s"
    params = {k: (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in summary["settings"].items()}
    sections.append(Section("Timings and parameters", "Steps marked cached were reused from OUT/work.",
                            tables=[("Steps", steps), ("Every parameter", params)]))
    return write_report(path, "fibsynth reconstruct (" + str(n) + " phases): " + Path(summary["real_stack"]["file"]).name,
                        sections, meta={"fibsynth": summary["fibsynth_version"], "seed": summary["settings"]["seed"],
                                        "phases": json.dumps(mats),
                                        "voxel nm (x, y, z)": summary["real_stack"]["voxel size nm (x, y, z)"],
                                        "shape": summary["real_stack"]["shape (z, y, x)"]})
