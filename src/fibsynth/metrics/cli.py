"""Command-line commands of the evaluation stage: ``fibsynth evaluate`` and ``fibsynth isotropy``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from fibsynth.cliutil import emit_json
from fibsynth.errors import FibsynthError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _clean(v: Any) -> Any:
    """JSON-safe numbers: NaN / inf -> null (json.dumps would write invalid 'NaN')."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _table(title: str, rows: list[tuple[str, str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("meaning")
    for r in rows:
        t.add_row(*r)
    Console().print(t)


def _fmt(v: float, spec: str) -> str:
    return "n/a" if not math.isfinite(v) else format(v, spec)


def evaluate(
    pred: Path = typer.Argument(..., help="Predicted binary segmentation (1 = solid)."),
    truth: Path = typer.Option(..., "--truth", help="Ground-truth binary structure, same shape."),
    json_out: bool = typer.Option(False, "--json", help="Print only a JSON object on stdout."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="dask scheduler address (tcp://HOST:PORT): count the blocks on its workers (Zarr inputs)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Count the blocks on a local dask cluster of N worker processes (Zarr inputs)."
    ),
    phases: int | None = typer.Option(None, "--phases", help="N > 2: label volumes 0..N-1; MP, MDS (mean over the "
                                      "phases) and Dice, MGP and fractions per phase."),
) -> None:
    """Compare a segmentation with its ground truth: MP and MGP (percent), Dice per phase and their mean."""
    from fibsynth.distributed import check_options, dask_client, wants_cluster
    from fibsynth.io import read_structure, volume_format
    from fibsynth.metrics.ground_truth import evaluate_segmentation

    check_options(scheduler, workers)
    if phases is not None:
        _evaluate_phases(pred, truth, phases, json_out, wants_cluster(scheduler, workers))
        return
    if wants_cluster(scheduler, workers):
        for f in (pred, truth):
            if not f.exists():
                raise FibsynthError("file not found", f)
            if volume_format(f) != "zarr":
                raise FibsynthError("--scheduler/--workers need .zarr inputs (the workers read their blocks from "
                                    "the stores)", f)
    # with a cluster, the client is dask's default scheduler here: the binary check of the lazily read inputs
    # runs on the workers too
    with dask_client(scheduler, workers) as client:
        p = read_structure(pred, lazy=True)
        t = read_structure(truth, lazy=True)
        if tuple(p.data.shape) != tuple(t.data.shape):
            raise FibsynthError(
                f"shape {tuple(p.data.shape)} of {pred} differs from shape {tuple(t.data.shape)} of --truth {truth}"
            )
        r = evaluate_segmentation(p.data, t.data, scheduler=client)
    keys = ("MP", "MGP", "MDS", "dice_solid", "dice_pore")
    if json_out:
        emit_json({k: _clean(float(r[k])) for k in keys})
        return
    _table(
        f"{pred.name} vs {truth.name} ({r['n_voxels']} voxels)",
        [
            ("MP (%)", _fmt(r["MP"], ".4f"), "misplaced voxels (Eq. 4)"),
            ("MGP (%)", _fmt(r["MGP"], ".4f"), "true solid predicted as pore (Eq. 5); n/a if no solid"),
            ("Dice solid", _fmt(r["dice_solid"], ".5f"), "Eq. 6, solid = positive"),
            ("Dice pore", _fmt(r["dice_pore"], ".5f"), "Eq. 6 for the pore phase"),
            ("MDS", _fmt(r["MDS"], ".5f"), "mean of the two Dice scores"),
        ],
    )


def _evaluate_phases(pred: Path, truth: Path, n: int, json_out: bool, cluster: bool) -> None:
    from fibsynth.io import read_labels
    from fibsynth.metrics.multiphase import evaluate_phases

    if not 2 <= n <= 255:
        raise FibsynthError(f"--phases must be in [2, 255] (got {n})")
    if cluster:
        raise FibsynthError("--phases counts in this process: drop --scheduler/--workers")
    p = read_labels(pred, n=n, lazy=True)
    t = read_labels(truth, n=n, lazy=True)
    if tuple(p.data.shape) != tuple(t.data.shape):
        raise FibsynthError(
            f"shape {tuple(p.data.shape)} of {pred} differs from shape {tuple(t.data.shape)} of --truth {truth}")
    r = evaluate_phases(p.data, t.data, n)
    keys = ["MP", "MDS"] + [f"{m}_{i}" for i in range(n) for m in ("dice", "MGP", "fraction_pred", "fraction_true")]
    if json_out:
        emit_json({k: _clean(float(r[k])) for k in keys})
        return
    names = t.meta.materials or {}
    rows = [("MP (%)", _fmt(r["MP"], ".4f"), "misplaced voxels (any phase)"),
            ("MDS", _fmt(r["MDS"], ".5f"), f"mean Dice over the {n} phases")]
    for i in range(n):
        what = f"phase {i}" + (f" ({names[str(i)]})" if str(i) in names else "")
        rows += [(f"Dice {i}", _fmt(r[f"dice_{i}"], ".5f"), what),
                 (f"MGP {i} (%)", _fmt(r[f"MGP_{i}"], ".4f"), f"{what} predicted as another phase"),
                 (f"fraction {i}", f"{r[f'fraction_pred_{i}']:.4f} / {r[f'fraction_true_{i}']:.4f}",
                  "predicted / true")]
    _table(f"{pred.name} vs {truth.name} ({r['n_voxels']} voxels, {n} phases)", rows)


def isotropy(
    volume: Path = typer.Argument(..., help="Segmented binary volume (z, y, x), 1 = solid."),
    voxel_nm: float | None = typer.Option(None, "--voxel-nm", help="Pixel size in x and y (nm); default: file metadata."),
    slice_nm: float | None = typer.Option(
        None, "--slice-nm", help="Slice thickness along z (nm); default: file metadata, else --voxel-nm."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print only a JSON object on stdout."),
    plot: Path | None = typer.Option(None, "--plot", help="Save the directional TPCF and lineal path to this PNG."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="dask scheduler address (tcp://HOST:PORT): per-axis functions as tasks on its workers."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Per-axis functions as tasks on a local dask cluster of N worker processes."
    ),
    phase: int | None = typer.Option(None, "--phase", help="VOLUME holds labels 0..n-1: the errors of phase I "
                                     "(its voxels as the solid)."),
) -> None:
    """Isotropy errors of a segmented volume without ground truth (TPCF, lineal path, ligament diameter)."""
    from fibsynth.distributed import check_options
    from fibsynth.io import read_structure, resolve_voxel_size
    from fibsynth.metrics.isotropy import isotropy_report

    check_options(scheduler, workers)
    if plot is not None:
        from fibsynth.io import check_output

        check_output(plot, kind="file", suffixes=(".png",), inputs=[volume], param="plot")
    if phase is None:
        vol = read_structure(volume)
    else:
        from fibsynth.io import Volume, read_labels

        lab = read_labels(volume)
        if not 0 <= phase <= int(lab.data.max()):
            raise FibsynthError(f"--phase must be a label of the volume, 0..{int(lab.data.max())} (got {phase})")
        vol = Volume((lab.data == phase).astype("uint8"), lab.meta)
    vs = resolve_voxel_size(vol.meta.voxel_size_nm, voxel_nm, slice_nm, volume)
    if vol.data.ndim != 3:
        raise FibsynthError(f"{volume}: isotropy needs a 3D volume, got shape {tuple(vol.data.shape)}")
    rep = isotropy_report(vol.data, vs.zyx(), return_functions=plot is not None, scheduler=scheduler, workers=workers)
    if plot is not None:
        from fibsynth.metrics.plotting import plot_directional

        plot_directional([(volume.name, rep)], plot)
    keys = ("e_tpcf", "e_lpf", "e_diameter", "D_xy_nm", "D_xz_nm", "D_yz_nm", "solid_fraction")
    if json_out:
        emit_json({k: _clean(float(rep[k])) for k in keys})
        return
    _table(
        f"{volume.name}: voxel (z, y, x) = ({vs.z:g}, {vs.y:g}, {vs.x:g}) nm, lags {rep['lag_step_nm']:g}.."
        f"{rep['lag_max_nm']:g} nm",
        [
            ("e_TPCF", _fmt(rep["e_tpcf"], ".4f"), "Eq. 7 on S2 (raw, as in the paper)"),
            ("e_TPCF centred", _fmt(rep["e_tpcf_centered"], ".4f"), "Eq. 7 on S2 - phi^2"),
            ("e_LPF", _fmt(rep["e_lpf"], ".4f"), "Eq. 7 on the lineal path function"),
            ("e_D", _fmt(rep["e_diameter"], ".4f"), "Eq. 8 on planar ligament diameters"),
            ("D_xy (nm)", _fmt(rep["D_xy_nm"], ".2f"), "mean 2D local thickness, xy slices"),
            ("D_xz (nm)", _fmt(rep["D_xz_nm"], ".2f"), "xz slices"),
            ("D_yz (nm)", _fmt(rep["D_yz_nm"], ".2f"), "yz slices"),
            ("solid fraction", _fmt(rep["solid_fraction"], ".4f"), "phi"),
        ],
    )
    if plot is not None:
        typer.echo(f"wrote {plot}", err=True)
