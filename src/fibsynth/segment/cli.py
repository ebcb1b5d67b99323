"""``fibsynth segment``: train, predict, baseline and score (registered by :mod:`fibsynth.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.core import TyperCommand

from fibsynth.cliutil import emit_json, parse_list
from fibsynth.errors import FibsynthError, flag_names, register_flag_names

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

_GREEDY = ("--images", "--labels", "--val-images", "--val-labels", "--truth", "--name")


class _GreedyLists(TyperCommand):
    """Lets list options take several values after one flag (``--images a.tif b.tif``) as well as the
    repeated form (``--images a.tif --images b.tif``)."""

    def parse_args(self, ctx, args):
        out, current = [], None
        for a in args:
            if a.startswith("-") and len(a) > 1:
                current = a if a in _GREEDY else None
                out.append(a)
                continue
            if current is not None and out and out[-1] != current and not out[-1].startswith("-"):
                out.append(current)  # a further value of the last list option
            out.append(a)
        return super().parse_args(ctx, out)


def _progress_printer(enabled: bool):
    if not enabled:
        return None
    last = [-1]

    def show(done: int, total: int) -> None:
        pct = int(100 * done / max(total, 1))
        if pct != last[0]:
            last[0] = pct
            sys.stderr.write(f"\rslices {done}/{total} ({pct}%)")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return show


def _ints(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    vals = parse_list(text, option, minimum=1)
    if any(v != int(v) for v in vals):
        raise FibsynthError(f"{option}: expected whole numbers, got {text!r}")
    return tuple(int(v) for v in vals)


@app.command("train", cls=_GreedyLists)
def train_cmd(
    images: list[Path] = typer.Option(..., "--images", help="Training image stacks (several after one flag or repeated)."),
    labels: list[Path] = typer.Option(..., "--labels", help="Ground-truth labels (1 = solid; with --classes N: "
                                      "0..N-1), one per stack, same order."),
    mode: str = typer.Option(..., "--mode", help="2d | 2.5d | 3d"),
    out: Path = typer.Option(..., "--out", help="Model folder (model.pt, config.json, checkpoints/)."),
    steps: int | None = typer.Option(None, "--steps", help="Optimizer steps (default 1500 unless --epochs is given), "
                                     "whatever the stack's size; validated every --val-every steps."),
    val_every: int = typer.Option(50, "--val-every", help="Optimizer steps per validation round (the unit of "
                                  "--lr-patience and --early-stop with --steps)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Instead of --steps: passes over the stack (the paper's "
                                      "schedule; early stopping may end sooner)."),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, patch order and augmentation."),
    k: int = typer.Option(2, "--k", help="2.5D: neighbouring slices on each side as extra channels."),
    edge: str = typer.Option("replicate", "--edge", help="2.5D at the stack ends: replicate | reflect."),
    channels_per_stack: int = typer.Option(
        1, "--channels-per-stack",
        help="Images per label stack used as channels (e.g. 3 energies): --images s1_1kV s1_2kV s1_4kV s2_1kV ..."),
    val_images: list[Path] = typer.Option([], "--val-images", help="Held-out validation stacks (default: slabs of the training stacks)."),
    val_labels: list[Path] = typer.Option([], "--val-labels", help="Labels of --val-images."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Last fraction of each stack's slices held out for validation."),
    patch: int = typer.Option(64, "--patch", help="Patch edge (64 as in the paper; 64^3 in 3D)."),
    stride: int = typer.Option(32, "--stride", help="Patch stride."),
    batch: int = typer.Option(64, "--batch", help="Batch size."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate."),
    lr_patience: int = typer.Option(10, "--lr-patience", help="Validation rounds without improvement before lr x0.1."),
    early_stop: int = typer.Option(25, "--early-stop", help="Early-stopping patience (validation rounds)."),
    features: str = typer.Option("16,32,64,128", "--features", help="U-Net channels per level."),
    res_units: int = typer.Option(1, "--res-units", help="Residual units per U-Net level."),
    augment: str = typer.Option("dihedral", "--augment", help="dihedral (in-plane flips+90° rotations) | xflip | none."),
    jitter: float = typer.Option(0.1, "--jitter", help="Intensity jitter (gain and offset) on normalised values."),
    patches_per_epoch: int | None = typer.Option(None, "--patches-per-epoch", help="With --epochs: random subset of patches per epoch."),
    accelerator: str = typer.Option("auto", "--accelerator", help="Lightning accelerator: auto | cpu | gpu."),
    devices: str = typer.Option("auto", "--devices", help="Lightning devices: auto | N | list."),
    num_workers: int = typer.Option(0, "--num-workers", help="DataLoader worker processes."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.ckpt."),
    progress: bool = typer.Option(False, "--progress", help="Show Lightning's progress bar."),
    quiet: bool = typer.Option(False, "--quiet", help="No per-epoch lines on stderr."),
    json_out: bool = typer.Option(False, "--json", help="Print the training record as JSON."),
    classes: int = typer.Option(2, "--classes", help="Phases to segment: 2 = pore/solid (Dice loss); N > 2 = labels "
                                "0..N-1 (Dice + cross-entropy; multi-Otsu as the baseline)."),
) -> None:
    """Train a 2D, 2.5D or 3D U-Net on image stacks with ground-truth labels (binary, or N phases)."""
    import warnings

    from fibsynth.cliutil import set_interrupt_note
    from fibsynth.io import check_workdir
    from fibsynth.segment.data import check_mode
    from fibsynth.segment.train import BelowBaselineWarning, TrainSettings, train

    register_flag_names(num_res_units="--res-units", labels="--labels", images="--images")
    check_workdir(out, inputs=[*images, *labels, *val_images, *val_labels], param="out")
    set_interrupt_note(f"the checkpoints written so far stay in {out}/checkpoints; continue with --resume")
    if len(val_images) != channels_per_stack * len(val_labels):
        raise FibsynthError("give --channels-per-stack images per --val-labels stack", param="val_images")
    s = TrainSettings.build(
        None, mode=check_mode(mode), k=k, edge=edge, channels_per_stack=channels_per_stack,
        features=_ints(features, "--features"), num_res_units=res_units, patch=patch, stride=stride, batch=batch,
        epochs=epochs, steps=steps, val_every=val_every, lr=lr, lr_patience=lr_patience, early_stop=early_stop,
        val_fraction=val_fraction, augment=augment, jitter=jitter, seed=seed, patches_per_epoch=patches_per_epoch,
        accelerator=accelerator, devices=devices, num_workers=num_workers, classes=classes,
    ).check()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BelowBaselineWarning)
        rec = train(images, labels, out, s, val_images=val_images, val_labels=val_labels, resume=resume,
                    progress=progress, verbose=not quiet and not json_out)
    for w in caught:
        if issubclass(w.category, BelowBaselineWarning):
            typer.echo(f"fibsynth: WARNING: {w.message}", err=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if json_out:
        emit_json({k: v for k, v in rec.items() if k != "history"} | {"out": str(out)})
    else:
        typer.echo(f"{out}: best epoch {rec['best_epoch']} of {rec['epochs_run']} ({rec['steps_run']} steps), "
                   f"val loss {rec['best_val_loss']:.4f}, val MDS {rec['best_val_mds']:.4f} "
                   f"({'multi-Otsu' if classes > 2 else 'Otsu'} {rec['otsu_val_mds']:.4f})")


@app.command("predict", cls=_GreedyLists)
def predict_cmd(
    model_dir: Path = typer.Argument(..., help="Model folder written by 'segment train'."),
    inp: Path = typer.Argument(..., help="Image stack to segment (.tif, .zarr, .npy, slice folder)."),
    out: Path = typer.Argument(..., help="Output labels (uint8, 1 = solid); .zarr is written block by block."),
    channel: list[Path] = typer.Option([], "--channel", help="Further channels of a multi-energy model, in training order."),
    block: int = typer.Option(32, "--block", help="Output slices per block (memory bound; dask task size)."),
    roi: str | None = typer.Option(None, "--roi", help="Window size: 'Y,X' (2D/2.5D, default 512) or 'Z,Y,X' (3D, default 64,128,128)."),
    overlap: float = typer.Option(0.25, "--overlap", help="Window overlap fraction (Gaussian blending)."),
    batch: int = typer.Option(4, "--batch", help="Slices per forward pass (2D/2.5D)."),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu | cuda | cuda:1 ..."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="dask scheduler address: spread blocks over its workers."),
    workers: int | None = typer.Option(None, "--workers", help="Start a local dask cluster of N worker processes."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (per dask worker with --scheduler/--workers)."),
    progress: bool = typer.Option(False, "--progress", help="Show progress on stderr."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Segment a stack with a trained model (sliding windows, z-blocks, optional dask workers)."""
    import time

    from fibsynth.io import check_output
    from fibsynth.ml.runtime import check_threads, torch_threads
    from fibsynth.segment.infer import predict_file

    check_output(out, inputs=[model_dir, inp, *channel])
    check_threads(threads)
    t0 = time.perf_counter()
    with torch_threads(threads if not (scheduler or workers) else None):  # dask workers set their own
        res = predict_file(model_dir, [inp, *channel], out, block=block, roi=_ints(roi, "--roi"), overlap=overlap,
                           batch=batch, device=device, scheduler=scheduler, workers=workers, threads=threads,
                           progress=_progress_printer(progress))
    res["seconds"] = round(time.perf_counter() - t0, 3)
    if json_out:
        emit_json(res)
    else:
        frac = (f"solid fraction {res['solid_fraction']:.4f}" if "solid_fraction" in res else
                "phase fractions " + ", ".join(f"{f:.4f}" for f in res["fractions"]))
        typer.echo(f"{out}: {res['shape']} in {res['seconds']} s, {frac}")


@app.command("baseline")
def baseline_cmd(
    inp: Path = typer.Argument(..., help="Image stack."),
    out: Path = typer.Argument(..., help="Output labels (uint8, 1 = solid)."),
    method: str = typer.Option("otsu", "--method", help="otsu | kmeans (k = 2, brighter cluster = gold) | multiotsu "
                               "(--classes gray classes)."),
    classes: int = typer.Option(3, "--classes", help="multiotsu: number of phases (2-5)."),
    order: str | None = typer.Option(None, "--order", help="multiotsu: the labels from darkest to brightest, e.g. "
                                     "0,2,1 (default 0,1,...)."),
    json_out: bool = typer.Option(False, "--json", help="Print threshold and solid fraction as JSON."),
) -> None:
    """Global Otsu threshold or 2-means clustering of gray values (the paper's baselines); multi-Otsu for n phases."""
    from fibsynth.io import check_output
    from fibsynth.segment.baseline import segment_baseline

    check_output(out, inputs=[inp])
    if method == "multiotsu":
        from fibsynth.segment.baseline import segment_multiotsu

        ranks = None if order is None else [int(v) for v in parse_list(order, "--order", minimum=0)]
        info = segment_multiotsu(inp, out, classes, ranks)
        if json_out:
            emit_json(info)
        else:
            typer.echo(f"{out}: multi-Otsu thresholds {', '.join(f'{t:.6g}' for t in info['thresholds'])}, "
                       f"phase fractions {', '.join(f'{f:.4f}' for f in info['fractions'])}")
        return
    info = segment_baseline(inp, out, method)
    if json_out:
        emit_json(info)
    else:
        typer.echo(f"{out}: {method} threshold {info['threshold']:.6g}, solid fraction {info['solid_fraction']:.4f}")


@app.command("score", cls=_GreedyLists)
def score_cmd(
    preds: list[Path] = typer.Argument(..., help="Predicted segmentations (1 = solid)."),
    truth: list[Path] = typer.Option([], "--truth", help="Ground truth: one for all predictions or one per prediction."),
    name: list[str] = typer.Option([], "--name", help="Row names (default: file names)."),
    isotropy: bool = typer.Option(False, "--isotropy", help="Also isotropy errors (always on without --truth)."),
    voxel_nm: float | None = typer.Option(None, "--voxel-nm", help="Pixel size (nm) if the files carry none."),
    slice_nm: float | None = typer.Option(None, "--slice-nm", help="Slice thickness (nm); default --voxel-nm."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write the table as CSV."),
    md_path: Path | None = typer.Option(None, "--markdown", help="Write the table as Markdown."),
    json_out: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """MP / MGP / MDS against ground truth (paper Table 3) or isotropy errors (Table 4) as a table."""
    from fibsynth.config import VoxelSize
    from fibsynth.io import atomic_path, check_output
    from fibsynth.segment.tables import score_rows, to_csv, to_markdown

    register_flag_names(csv_path="--csv", md_path="--markdown")
    # before the (long) scoring: the tables' names, and that they overwrite no input (nor a TIFF: --markdown p.tif)
    if csv_path is not None:
        check_output(csv_path, kind="file", suffixes=(".csv", ".txt"), inputs=[*preds, *truth], param="csv_path")
    if md_path is not None:
        check_output(md_path, kind="file", suffixes=(".md", ".markdown", ".txt"), inputs=[*preds, *truth],
                     param="md_path")
    if csv_path is not None and md_path is not None and csv_path.resolve() == md_path.resolve():
        raise FibsynthError("names the same file as --csv", md_path, param="md_path")

    vs = VoxelSize.from_xy_z(voxel_nm, slice_nm).zyx() if voxel_nm is not None else None
    if slice_nm is not None and voxel_nm is None:
        raise FibsynthError("needs --voxel-nm", param="slice_nm")
    with flag_names(truths="--truth", names="--name"):
        rows = score_rows(preds, truth, isotropy=isotropy, voxel_zyx=vs, names=name or None)
    for path, text in ((csv_path, to_csv), (md_path, to_markdown)):
        if path is not None:
            with atomic_path(path) as tmp:
                tmp.write_text(text(rows))
    if json_out:
        emit_json(rows)
    else:
        typer.echo(to_markdown(rows), nl=False)
