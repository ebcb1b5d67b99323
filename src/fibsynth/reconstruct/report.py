"""The self-contained HTML report of ``fibsynth reconstruct`` (written with :mod:`fibsynth.report`), for a
microscopist who reads it without help: what was found, how far to trust it, and how it was made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.config import VoxelSize

#: the inspection's registration figures: slice registration cannot tell the stage drift from the apparent motion of
#: slanted features (on a 256 x 1024 x 1024 test stack misaligned by at most 12 px it found 169 px in all; big12,
#: docs/microscope.md "Ninth round"), so the report names them as what they are, not as the stage drift
DRIFT_STEP_LABEL = ("mean shift between slices found by registration (px; stage drift plus the apparent motion of "
                    "slanted features)")
DRIFT_TOTAL_LABEL = ("largest total shift found by registration (px; not the stage drift alone: slanted features add "
                     "to it, fiducial marks separate them: fibsynth microscope correct --align-region)")


def drift_labels(insp: dict) -> tuple[str, str]:
    """The labels of the inspection's mean and largest total shift: registered on the whole slices (what they are:
    stage drift plus apparent motion) or, with ``--align-region``, on that band (the stage drift where the band
    holds static fiducial marks)."""
    r = insp.get("drift_region")
    if not r:
        return DRIFT_STEP_LABEL, DRIFT_TOTAL_LABEL
    band = f"rows {r[0]}:{r[1]}, columns {r[2]}:{r[3]}"
    auto = insp.get("drift_region_auto")
    how = (f"--align-region auto found it, confidence {auto['confidence']:.2f}" if auto else "--align-region")
    return (f"mean shift between slices registered on the band {band} (px; {how}: the stage drift where "
            "the band holds static fiducial marks)", f"largest total shift registered on the band {band} (px)")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _planes(vol: np.ndarray, voxel: VoxelSize):
    nz, ny, nx = vol.shape
    return (("xy plane (slice z = %d)" % (nz // 2), vol[nz // 2], (0, nx * voxel.x, ny * voxel.y, 0)),
            ("xz plane (y = %d)" % (ny // 2), vol[:, ny // 2, :], (0, nx * voxel.x, nz * voxel.z, 0)),
            ("yz plane (x = %d)" % (nx // 2), vol[:, :, nx // 2], (0, ny * voxel.y, nz * voxel.z, 0)))


def overlay_figure(real: np.ndarray, seg: np.ndarray, voxel: VoxelSize):
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.2), squeeze=False)
    for j, ((name, img, ext), (_, s, _)) in enumerate(zip(_planes(real, voxel), _planes(seg, voxel))):
        for i in range(2):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", extent=ext, interpolation="nearest", aspect="equal")
            if i == 1:
                edge = s.astype(bool) ^ np.roll(s.astype(bool), 1, 0) | s.astype(bool) ^ np.roll(s.astype(bool), 1, 1)
                ax.imshow(np.ma.masked_where(~s.astype(bool), s), cmap="autumn", alpha=0.35, extent=ext,
                          interpolation="nearest", aspect="equal")
                ax.imshow(np.ma.masked_where(~edge, edge), cmap="cool", alpha=0.9, extent=ext,
                          interpolation="nearest", aspect="equal")
            ax.set_title(name + (" with the segmentation (solid in orange)" if i else ""), fontsize=9)
            ax.set_xlabel("nm")
    fig.tight_layout()
    return fig


def confidence_figure(conf: np.ndarray, prob: np.ndarray, voxel: VoxelSize, *, bar_label: str = "|2P - 1|",
                      hist_label: str = "P(solid) per voxel",
                      hist_title: str = "probabilities: near 0 or 1 = decided"):
    """The confidence in three planes and the distribution of ``prob`` (the binary report: P(solid); the n-phase
    one passes the confidence itself and its labels)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    for ax, (name, img, ext) in zip(axes[:3], _planes(conf, voxel)):
        im = ax.imshow(img, cmap="magma", vmin=0, vmax=1, extent=ext, interpolation="nearest")
        ax.set_title("confidence, " + name, fontsize=9)
    fig.colorbar(im, ax=axes[:3].tolist(), shrink=0.8, label=bar_label)
    axes[3].hist(prob.ravel()[:: max(1, prob.size // 1_000_000)], bins=50, range=(0, 1), color="0.3")
    axes[3].set_xlabel(hist_label)
    axes[3].set_ylabel("voxels")
    axes[3].set_title(hist_title, fontsize=9)
    return fig


def histogram_figure(real: np.ndarray, synth: np.ndarray | None, adapted: np.ndarray | None, dist: dict | None):
    plt = _plt()
    fig, ax = plt.subplots(1, 1, figsize=(7.5, 3.8))
    curves = [("real stack", real, "k")]
    if synth is not None:
        curves.append(("synthetic (fast path + artifacts)", synth, "C0"))
    if adapted is not None:
        curves.append(("synthetic adapted to the real stack", adapted, "C3"))
    for name, img, col in curves:
        v = np.asarray(img, np.float64).ravel()
        lo, hi = np.percentile(v, [0.5, 99.5])
        ax.hist(np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1), bins=64, range=(0, 1), density=True,
                histtype="step", color=col, label=name, lw=1.5)
    ax.set_xlabel("gray value (each scaled to its own 0.5-99.5 % range)")
    ax.set_ylabel("density")
    t = "gray-value histograms (as the paper's Fig. 5)"
    if dist:
        t += f": distance to real {dist['before']['wasserstein']:.3f} before, {dist['after']['wasserstein']:.3f} after"
    ax.set_title(t, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def examples_figure(real: np.ndarray, ideal: np.ndarray | None, synth: np.ndarray, adapted: np.ndarray | None,
                    label: np.ndarray):
    plt = _plt()
    panels = [(real, "real stack (middle slice)"), (label, "synthetic ground truth")]
    if ideal is not None:
        panels.append((ideal, "its ideal image (fast path)"))
    panels.append((synth, "with random microscope artifacts"))
    if adapted is not None:
        panels.append((adapted, "adapted to the real stack"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.4), squeeze=False)
    for ax, (img, t) in zip(axes[0], panels):
        ax.imshow(img, cmap="gray", interpolation="nearest")
        ax.set_title(t, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def drift_figure(insp: dict):
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.2))
    h = insp["histogram"]
    e = np.asarray(h["edges"])
    a.stairs(h["counts"], e, color="k")
    a.set_xlabel("gray value (as stored)")
    a.set_ylabel("pixels")
    a.set_title("histogram of the real stack", fontsize=9)
    sh = np.asarray(insp["drift_shifts_px"])
    if sh.size:
        b.plot(sh[:, 0], label="y shift")
        b.plot(sh[:, 1], label="x shift")
    b.set_xlabel("slice")
    b.set_ylabel("cumulative shift (px)")
    b.set_title("shifts found by slice registration " + ("on the --align-region band" if insp.get("drift_region")
                else "(stage drift + slanted features)"), fontsize=9)
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_figure(history: list[dict]):
    plt = _plt()
    fig, ax = plt.subplots(1, 1, figsize=(6.5, 3.2))
    if history:
        ep = [r["epoch"] for r in history]
        ax.plot(ep, [r["val_mds"] for r in history], "o-", label="validation MDS (held-out synthetic)")
        ax.plot(ep, [1 - r["val_loss"] for r in history], "--", label="1 - validation Dice loss")
    ax.set_xlabel("epoch")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def directional_figure(evaluation: dict, eval_dir: Path):
    plt = _plt()
    rows = [(n, r) for n, r in evaluation.items() if r.get("functions_file")]
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 2.9 * len(rows)), squeeze=False)
    cols = {"x": "tab:blue", "y": "tab:orange", "z": "tab:green"}
    for i, (name, r) in enumerate(rows):
        f = np.load(eval_dir / r["functions_file"])
        for j, (kind, lab, err) in enumerate((("tpcf", "two-point correlation S2(r)", "e_tpcf"),
                                             ("lpf", "lineal path L(r)", "e_lpf"))):
            ax = axes[i, j]
            for axn in ("x", "y", "z"):
                ax.plot(f[f"{kind}_{axn}_lag"], f[f"{kind}_{axn}_val"], color=cols[axn], label=f"along {axn}")
            ax.set_title(f"{name}: {err} = {r[err]:.3f}", fontsize=9)
            ax.set_xlabel("lag r (nm)")
            ax.set_ylabel(lab)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _fmt_row(r: dict) -> str:
    parts = []
    for k, lab in (("MDS", "MDS vs truth"), ("solid_fraction", "solid fraction"), ("ligament_nm", "ligament nm"),
                   ("pore_nm", "pore nm"), ("e_tpcf", "e_TPCF"), ("e_lpf", "e_LPF"), ("e_diameter", "e_D")):
        if k in r:
            parts.append(f"{lab} {r[k]:.3g}")
    grid = r.get("statistics_grid") or {}
    coarse = {ph: st for ph, st in grid.items() if any(int(f) > 1 for f in st)}
    if coarse:  # a coarse phase measured on a subsampled grid (evaluate's cost cap): say so
        parts.append("measured on every " + ", ".join(f"{'x'.join(str(int(f)) for f in st)} (z x y x x) voxel for "
                                                      f"the {ph}" for ph, st in coarse.items()))
    return "; ".join(parts)


def _sample(vol, max_voxels: int = 4_000_000) -> np.ndarray:
    """At most ~``max_voxels`` voxels of a (memory-mapped) stack, every k-th slice and pixel: for histograms, so the
    report never reads a large stack whole."""
    k = max(1, int(np.ceil((int(np.prod(vol.shape)) / max_voxels) ** (1 / 3))))
    return np.asarray(vol[::k, ::k, ::k])


def _se_sentence(se: dict[str, Any] | None) -> str:
    """The report's sentence on the SE imaging of the fast images (empty for BSE)."""
    if not se:
        return ""
    how = ("made by the shipped paired SE translator (its expected Monte Carlo image)" if se["translation"] == "paired"
           else "the SE projection of open pores alone")
    return f"Secondary electrons ({se['detector']} detector): {se['used_for']} are {how}. Why: {se['why']}. "


def write_reconstruct_report(path: Path, summary: dict, *, real, seg, conf, prob, insp, rounds, eval_dir: Path,
                             voxel: VoxelSize, final: dict | None = None) -> Path:
    from fibsynth.reconstruct.estimate import estimate_table
    from fibsynth.report import Section, figure_png, write_report

    ev = summary["evaluation"]
    est1, est2 = summary["estimate_first_pass"], summary["estimate_from_reconstruction"]
    final = final if final is not None else rounds[-1]
    method = summary.get("adaptation")
    how = {"histogram": "matched their gray-value histogram to your stack's (a monotone gray-value map), ",
           "linear": "mapped their gray range linearly onto your stack's, ",
           "cyclegan": "adapted those images to the look of your stack with a small CycleGAN, "}
    tr = final["train"]["record"]
    sections = []
    # --- summary
    net = ev["U-Net (fibsynth)"]
    text = ("fibsynth segmented your stack into solid (1) and pore (0) with a U-Net trained only on synthetic images "
            "of structures like yours: it measured your structure, generated matching ground-truth structures, "
            "simulated their FIB-SEM images at your beam energy and voxel size with random microscope artifacts, "
            + how.get(method, "")
            + "trained the network on them and applied it to your stack. The files are segmentation.tif (0/1), "
            "probability.tif (P(solid) per voxel), confidence.tif (|2P - 1|: 0 = undecided, 1 = certain), and the "
            "simple global thresholds otsu.tif and kmeans.tif for comparison.")
    text += ("\n\nHow far to trust it: on held-out synthetic structures (not seen in training) the network scored "
             f"MDS {tr['best_val_mds']:.3f} (mean Dice of solid and pore; 1 = perfect) against Otsu's "
             f"{tr['val_otsu_mds']:.3f}. " if tr.get("best_val_mds") is not None else "")
    low = summary.get("low_confidence_fraction")
    low = float(low) if low is not None else float((conf < 0.5).mean())
    text += (f"{100 * low:.1f} % of the voxels of your stack have a confidence below 0.5 "
             "(P(solid) between 0.25 and 0.75); they lie on the solid/pore boundaries where the images are ambiguous.")
    if summary["warnings"]:
        text += "\n\nWARNING: " + " ".join(summary["warnings"])
    cmp_table = {name: _fmt_row(r) for name, r in ev.items()}
    sections.append(Section("Result", text, tables=[("Segmentations of your stack (sizes in nm; isotropy errors: 0 = "
                                                     "the same statistics along x, y and z)", cmp_table)],
                            figures=[("Your stack in three planes, top: as recorded; bottom: with the segmentation",
                                      figure_png(overlay_figure(real, seg, voxel)))]))
    sections.append(Section("Confidence", "Where the network is unsure (dark) the boundary between solid and pore "
                            "could lie a pixel or two elsewhere; check those regions before measuring small features.",
                            figures=[("Per-voxel confidence |2P - 1| in three planes, and the distribution of P(solid)",
                                      figure_png(confidence_figure(conf, prob, voxel)))]))
    # --- inspection
    itab = {k: v for k, v in summary["real_stack"].items()}
    for k, lab in (("noise_sigma", "noise sigma (gray values)"), ("noise_relative", "noise / (99 % - 1 % gray range)"),
                   ("stripe_power", "curtain-stripe power (share of slice variance)"),
                   ("drift_px_per_slice", drift_labels(insp)[0]), ("drift_total_px", drift_labels(insp)[1]),
                   ("clipped_fraction", "pixels at the minimum or maximum (clipped)")):
        itab[lab] = summary["inspection"].get(k)
    itab["estimators"] = summary["inspection"].get("estimators")
    if summary.get("region"):
        itab["alignment fill (not microscope data)"] = summary["region"]["note"]
    itab["corrections applied"] = ", ".join(summary["settings"]["correct"]) or "none (ask with --correct)"
    sections.append(Section("Your stack", f"Beam energy {summary['energy_kev']:g} keV ({summary['energy_source']}).",
                            tables=[("What was found", itab)], figures=[("Histogram and drift", figure_png(drift_figure(insp)))]))
    # --- structure
    methods = est1.get("methods") or []
    three = any(m.endswith("3") for m in methods)
    etext = (("The structure was first estimated from global thresholds of the (median-filtered) stack: the brightest "
              "of three gray classes (multi-Otsu and k-means) is taken as solid, because in a backscatter image the "
              "filler with solid just beneath the face (shine-through) forms a middle gray class that a two-class "
              "threshold would count as solid; " if three else
              "The structure was first estimated from global Otsu and k-means thresholds of the (median-filtered) stack; ")
             + "each value has an uncertainty from the spread over the eight octants of the stack and between the two "
             "thresholds. Ligament and pore diameters are the 3D mean local thickness (the size fibsynth's generators "
             "are calibrated to) and mean chord lengths along x, y, z.")
    grids = {m: g for m, g in (est1.get("thickness_steps") or {}).items()
             if any(int(f) > 1 for st in g.values() for f in st)}
    if grids:
        etext += (" A coarse phase's local thickness was measured on a subsampled grid (every "
                  + "; ".join(f"{m}: " + ", ".join(f"{'x'.join(str(int(f)) for f in st)} voxel for the {ph}"
                                                  for ph, st in g.items() if any(int(f) > 1 for f in st))
                              for m, g in grids.items())
                  + " along z x y x x), so that its larger features still span about two dozen grid points: the "
                  "full-resolution cost grows with the cube of the feature size.")
    tables = [("First estimate (from thresholds; solid fractions calibrated through the forward model)", estimate_table(est1))]
    if est1.get("first_pass_uncalibrated"):
        tables.append(("The thresholds' raw values before that calibration",
                       {k: f"{v:.4g}" for k, v in est1["first_pass_uncalibrated"].items()
                        if k in ("solid_fraction", "ligament_nm", "pore_nm", "hierarchy_ratio")}))
    if est2 is not None:
        tables.append(("Re-estimate from the first reconstruction", estimate_table(est2)))
        if est2.get("reconstruction_bias"):
            rb = est2["reconstruction_bias"]
            tables.append(("The reconstruction's own bias, measured on held-out synthetic stacks and removed above",
                           {k.replace("_nm", " (nm)").replace("_", " "):
                            f"{est2['quantities'][k]['raw_value']:.4g} measured, bias "
                            + (f"{v['bias']:+.3g} (log-odds)" if v["scale"] == "odds" else f"{v['bias']:+.3g} nm")
                            + f" +- {v['standard_error']:.2g}"
                            for k, v in rb.items() if "raw_value" in est2["quantities"].get(k, {})}))
        etext += ("\n\nAfter the first reconstruction the structure was measured again on it: "
                  + ("the network's own bias (its result minus the truth on synthetic stacks it did not train on, "
                     "made like the training data) was removed from each measured value; " if est2.get("reconstruction_bias")
                     else "")
                  + (f"it moved beyond the uncertainty ({', '.join(summary['moved'])}), so the training data were "
                     "generated once more around the new estimate and the network retrained." if summary["moved"] else
                     "it agreed within the uncertainty, so the training data were kept."))
        if summary.get("round_choice", {}).get("forward_consistency") and summary["moved"]:
            etext += (" Which round is used: " + summary["round_choice"]["reason"] + " (r: correlation between your "
                      "stack and the round's segmentation imaged again by the fast path with your histogram; no "
                      "ground truth is needed for it).")
    for r in summary["rounds"]:
        ch = r.get("seed_choice")
        if r.get("ensemble_seeds"):
            etext += (f"\n\nRound {r['round'] + 1}: {len(r['ensemble_seeds'])} networks were trained on the same "
                      f"synthetic data with different seeds ({', '.join(str(x) for x in r['ensemble_seeds'])}); their "
                      "probabilities P(solid) are averaged (an ensemble).")
        if ch:
            etext += (f"\n\nRound {r['round'] + 1}: {len(ch['seeds'])} networks were trained on the same synthetic data "
                      f"with different seeds ({', '.join(str(x) for x in ch['seeds'])}); the one with seed "
                      f"{ch['seeds'][ch['chosen']]} is used, as its segmentation of your stack, imaged again, correlates "
                      f"best with your stack ({ch['score']}: " + ", ".join(f"{v:.4f}" for v in ch["scores"]) + ").")
    gen = {}
    for r in summary["rounds"]:
        for st in r["structures"]:
            p = st["parameters"]
            req = (f"leveled wave, phi {p['solid_fraction']:.3f}, ligament {p['ligament_nm']:.1f} nm"
                   if p["kind"] == "leveled_wave" else
                   f"hierarchical, upper {p['upper_ligament_nm']:.0f} nm / phi {p['upper_solid_fraction']:.2f}, lower "
                   f"{p['lower_ligament_nm']:.1f} nm / phi {p['lower_solid_fraction']:.2f}")
            m = st["measured"]
            gen[f"round {r['round'] + 1}, {st['name']}"] = (f"{req} -> measured phi {m['solid_fraction']:.3f}, ligament "
                                                          f"{m['ligament_nm']:.1f} nm, pore {m['pore_nm']:.1f} nm")
    tables.append(("Generated training and validation structures (requested -> measured)", gen))
    sections.append(Section("Structure: estimated and generated", etext, tables=tables))
    # --- training data
    d_img = final["images_dir"]
    d_gen = final["generate"]["dir"]
    k = None
    lbl = np.load(d_gen / "train_0_lbl.npy")
    k = lbl.shape[0] // 2
    synth = np.load(d_gen / "train_0_img.npy")
    adapted = np.load(d_img / "train_0_img.npy") if final["adapt"] else None
    ideal = np.load(d_gen / "example_ideal.npy") if (d_gen / "example_ideal.npy").exists() else None
    dist = final["adapt"]["distances"] if final["adapt"] else None
    dtab = {}
    if dist:
        dtab = {"Wasserstein distance to the real histogram, before adaptation": dist["before"]["wasserstein"],
                "after adaptation": dist["after"]["wasserstein"],
                "total variation of the histograms, before": dist["before"]["total_variation"],
                "after": dist["after"]["total_variation"]}
        if summary.get("gan_plan"):
            dtab.update({f"CycleGAN {k2}": v for k2, v in summary["gan_plan"].items()})
    sections.append(Section(
        "Training data: synthetic images matched to your stack",
        "Each synthetic stack is a ground-truth structure imaged at your beam energy and voxel size, with random "
        "blur, detector response, curtain stripes, shading and noise (at your stack's noise level) so that the network "
        "does not rely on one look. " + ({"cyclegan": "A small CycleGAN trained on your stack then translates them to "
                                                     "its look. ",
                                         "histogram": "Their gray values are then mapped monotonically onto your "
                                                      "stack's histogram (quantile matching: the structure's boundaries "
                                                      "stay where they are, the detector response and contrast become "
                                                      "yours). ",
                                         "linear": "Their 1-99 % gray range is then mapped linearly onto your "
                                                   "stack's. "}.get(method, "") if dist
                                        else "No adaptation was asked for (--no-adapt). ")
        + _se_sentence(summary.get("se_translation"))
        + "The histograms are each scaled to their own range: they compare shapes, as the segmentation (which "
          "normalises every stack) sees them.",
        tables=[("Histogram distances (0 = identical)", dtab)] if dtab else [],
        figures=[("Middle slices", figure_png(examples_figure(real[real.shape[0] // 2], ideal, synth[k],
                                                               None if adapted is None else adapted[k], lbl[k]))),
                 ("Gray-value histograms", figure_png(histogram_figure(_sample(real), synth, adapted, dist)))]))
    # --- segmentation training
    plan = dict(summary["segmentation_plan"])
    r2 = plan.pop("round2", None)
    if r2 and len(summary.get("rounds", [])) > 1:  # round 2 ran: say how its networks were trained
        plan["round 2"] = (f"{r2['optimizer_steps']} optimizer steps, " + (
            "each network starting from round 1's of the same seed" if r2["init"] == "round1"
            else "from random weights"))
    ttab = {"mode": summary["settings"]["mode"], **plan,
            "epochs run": tr.get("epochs_run"), "best validation MDS (held-out synthetic)": tr.get("best_val_mds"),
            "Otsu on the same validation data": tr.get("val_otsu_mds")}
    k_ctx = summary["settings"].get("seg_k", 2)
    sections.append(Section("Segmentation network", "A U-Net (" + (
                            f"2.5D: each slice with {k_ctx} neighbour{'s' if k_ctx != 1 else ''} on each side"
                            if summary["settings"]["mode"] == "2.5d" else summary["settings"]["mode"].upper())
                            + ") trained with Dice loss; validated after every epoch on held-out synthetic structures.",
                            tables=[("Training", ttab)],
                            figures=[("Validation score during training", figure_png(training_figure(tr.get("history", []))))]))
    if any(r.get("functions_file") for r in ev.values()):
        sections.append(Section("Directional functions", "Two-point correlation and lineal-path functions along x, "
                                "y and z of each segmentation (central crop). For an isotropic material the three "
                                "curves should coincide; differences show anisotropy of the material or artifacts of "
                                "the segmentation (e.g. shine-through smearing along z).",
                                figures=[("Directional functions", figure_png(directional_figure(ev, eval_dir)))]))
    # --- timings and parameters
    steps = {f"{r['step']} ({r['key']})": f"{r['status']}, {r['seconds']:.1f} s" for r in summary["steps"]}
    steps["total"] = f"{summary['seconds_total']:.1f} s"
    params = {k2: (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k2, v in summary["settings"].items()}
    sections.append(Section("Timings and parameters", "Steps marked cached were reused from OUT/work (same inputs and "
                            "parameters); delete that folder to recompute everything.",
                            tables=[("Steps", steps), ("Every parameter", params)]))
    return write_report(path, "fibsynth reconstruct: " + Path(summary["real_stack"]["file"]).name, sections,
                        meta={"fibsynth": summary["fibsynth_version"], "seed": summary["settings"]["seed"],
                              "voxel nm (x, y, z)": summary["real_stack"]["voxel size nm (x, y, z)"],
                              "shape": summary["real_stack"]["shape (z, y, x)"]})
