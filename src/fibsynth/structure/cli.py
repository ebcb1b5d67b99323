"""``fibsynth structure ...``: generate leveled-wave / hierarchical / multiphase structures, import user volumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Tuple

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

_OUT_HELP = "Output volume: .tif/.tiff, .npy, a folder name (TIFF slices) or .zarr (written chunk by chunk)."
_SHAPE_HELP = "Volume shape in voxels: Z Y X (z = slice/milling direction)."
_SCHEDULER_HELP = "dask scheduler address (tcp://HOST:PORT): compute the chunks on its workers (.zarr output only)."
_WORKERS_HELP = "Compute the chunks on a local dask cluster of N worker processes (.zarr output only)."


def _merge(config: Optional[Path], cli_values: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    """Values from ``--config FILE.yaml`` overridden by the options given on the command line."""
    from fibsynth.errors import FibsynthError

    values: dict[str, Any] = {}
    if config is not None:
        import yaml

        if not config.is_file():
            raise FibsynthError("file not found", config)
        try:
            data = yaml.safe_load(config.read_text()) or {}
        except yaml.YAMLError as exc:
            raise FibsynthError(f"not valid YAML ({str(exc).splitlines()[0]})", config) from None
        if not isinstance(data, dict):
            raise FibsynthError("expected a mapping of option names to values", config)
        known = set(cli_values)
        for k, v in data.items():
            key = str(k).replace("-", "_")
            if key not in known:
                raise FibsynthError(f"unknown key {k!r}; allowed: {', '.join(sorted(known))}", config)
            values[key] = v
    values.update({k: v for k, v in cli_values.items() if v is not None})
    for name in required:
        if values.get(name) is None:
            raise FibsynthError(f"--{name.replace('_', '-')} is required (on the command line or in --config)")
    return values


def _voxel(values: dict[str, Any]):
    from fibsynth.config import VoxelSize

    return VoxelSize.from_xy_z(float(values["voxel_nm"]), None if values.get("slice_nm") is None else float(values["slice_nm"]))


def _check_out(out: Path, inputs=()) -> None:
    """Before any work: the output's suffix, its folder, and that it replaces nothing fibsynth did not write
    (:func:`fibsynth.io.check_output`)."""
    from fibsynth.io import check_output

    check_output(out, inputs=inputs)


def _check_cluster(out: Path, scheduler: Optional[str], workers: Optional[int]) -> None:
    """Fail before any work on --scheduler/--workers that cannot apply (contradictory, or no .zarr output)."""
    from fibsynth.distributed import check_options, wants_cluster
    from fibsynth.errors import FibsynthError
    from fibsynth.io import volume_format

    check_options(scheduler, workers)
    if wants_cluster(scheduler, workers) and volume_format(out) != "zarr":
        raise FibsynthError("--scheduler/--workers need a .zarr output (workers write their blocks into it)", out)


def _chunks(values: dict[str, Any]):
    from fibsynth.errors import FibsynthError

    c = values.get("chunks")
    if c is None:
        return None
    c = tuple(int(v) for v in c)
    if len(c) != 3 or min(c) < 1:
        raise FibsynthError(f"--chunks needs three integers >= 1, got {c}")
    return c


def _report(out: Path, model, as_json: bool, extra: dict) -> None:
    from fibsynth.cliutil import emit_json

    summary = {"path": str(out), "shape": list(model.shape), "voxel_size_nm": model.config.voxel_size.model_dump(), **extra}
    if as_json:
        emit_json(summary)
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in summary.items()))


@app.command("lwm")
def lwm(
    out: Path = typer.Argument(..., help=_OUT_HELP),
    shape: Optional[Tuple[int, int, int]] = typer.Option(None, "--shape", help=_SHAPE_HELP),
    voxel_nm: Optional[float] = typer.Option(None, "--voxel-nm", help="Pixel size in x and y (nm)."),
    slice_nm: Optional[float] = typer.Option(None, "--slice-nm", help="Slice thickness in z (nm); default --voxel-nm."),
    solid_fraction: Optional[float] = typer.Option(None, "--solid-fraction", help="Solid volume fraction, in (0, 1)."),
    ligament_nm: Optional[float] = typer.Option(None, "--ligament-nm", help="Mean ligament diameter (nm), >= 2 voxels."),
    waves: Optional[int] = typer.Option(None, "--waves", help="Number of plane waves (default 1000)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 0)."),
    chunks: Optional[Tuple[int, int, int]] = typer.Option(None, "--chunks", help="Zarr chunk shape Z Y X."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help=_SCHEDULER_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", help=_WORKERS_HELP),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with any of these options (CLI wins)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Single-level leveled-wave structure (Cahn / Soyarslan et al. 2018), calibrated ligament size."""
    from fibsynth.structure.leveled_wave import DEFAULT_WAVES, LeveledWave, LWMConfig
    from fibsynth.structure.write import write_structure

    v = _merge(
        config,
        dict(shape=shape, voxel_nm=voxel_nm, slice_nm=slice_nm, solid_fraction=solid_fraction,
             ligament_nm=ligament_nm, waves=waves, seed=seed, chunks=chunks),
        ("shape", "voxel_nm", "solid_fraction", "ligament_nm"),
    )
    _check_out(out, inputs=[config])
    _check_cluster(out, scheduler, workers)
    cfg = LWMConfig.build(
        config,
        shape=tuple(v["shape"]),
        voxel_size=_voxel(v),
        solid_fraction=v["solid_fraction"],
        ligament_nm=v["ligament_nm"],
        waves=v.get("waves", DEFAULT_WAVES),
        seed=v.get("seed", 0),
    )
    model = LeveledWave(cfg)
    write_structure(out, model, chunks=_chunks(v), progress=not as_json, scheduler=scheduler, workers=workers)
    _report(out, model, as_json, {
        "generator": "lwm", "solid_fraction": cfg.solid_fraction, "ligament_nm": cfg.ligament_nm,
        "waves": cfg.waves, "seed": cfg.seed, "q0_per_nm": model.q0, "xi": model.level["xi_realised"],
    })


@app.command("hierarchical")
def hierarchical(
    out: Path = typer.Argument(..., help=_OUT_HELP),
    shape: Optional[Tuple[int, int, int]] = typer.Option(None, "--shape", help=_SHAPE_HELP),
    voxel_nm: Optional[float] = typer.Option(None, "--voxel-nm", help="Pixel size in x and y (nm)."),
    slice_nm: Optional[float] = typer.Option(None, "--slice-nm", help="Slice thickness in z (nm); default --voxel-nm."),
    upper_ligament_nm: Optional[float] = typer.Option(None, "--upper-ligament-nm", help="Coarse ligament diameter D1 (nm), e.g. 110."),
    lower_ligament_nm: Optional[float] = typer.Option(None, "--lower-ligament-nm", help="Fine ligament diameter D2 < D1 (nm), e.g. 15."),
    upper_solid_fraction: Optional[float] = typer.Option(None, "--upper-solid-fraction", help="Solid fraction F1 of the coarse network."),
    lower_solid_fraction: Optional[float] = typer.Option(None, "--lower-solid-fraction", help="Solid fraction F2 of the fine network."),
    waves: Optional[int] = typer.Option(None, "--waves", help="Plane waves per level (default 1000)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 0)."),
    chunks: Optional[Tuple[int, int, int]] = typer.Option(None, "--chunks", help="Zarr chunk shape Z Y X."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help=_SCHEDULER_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", help=_WORKERS_HELP),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with any of these options (CLI wins)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Hierarchical nanoporous gold: solid = upper network (D1, F1) AND independent lower network (D2, F2)."""
    from fibsynth.structure.hierarchical import Hierarchical, HierarchicalConfig
    from fibsynth.structure.leveled_wave import DEFAULT_WAVES
    from fibsynth.structure.write import write_structure

    v = _merge(
        config,
        dict(shape=shape, voxel_nm=voxel_nm, slice_nm=slice_nm, upper_ligament_nm=upper_ligament_nm,
             lower_ligament_nm=lower_ligament_nm, upper_solid_fraction=upper_solid_fraction,
             lower_solid_fraction=lower_solid_fraction, waves=waves, seed=seed, chunks=chunks),
        ("shape", "voxel_nm", "upper_ligament_nm", "lower_ligament_nm", "upper_solid_fraction", "lower_solid_fraction"),
    )
    _check_out(out, inputs=[config])
    _check_cluster(out, scheduler, workers)
    cfg = HierarchicalConfig.build(
        config,
        shape=tuple(v["shape"]),
        voxel_size=_voxel(v),
        upper_ligament_nm=v["upper_ligament_nm"],
        lower_ligament_nm=v["lower_ligament_nm"],
        upper_solid_fraction=v["upper_solid_fraction"],
        lower_solid_fraction=v["lower_solid_fraction"],
        waves=v.get("waves", DEFAULT_WAVES),
        seed=v.get("seed", 0),
    )
    model = Hierarchical(cfg)
    write_structure(out, model, chunks=_chunks(v), progress=not as_json, scheduler=scheduler, workers=workers)
    _report(out, model, as_json, {
        "generator": "hierarchical", "expected_solid_fraction": cfg.upper_solid_fraction * cfg.lower_solid_fraction,
        "upper_q0_per_nm": model.upper.q0, "lower_q0_per_nm": model.lower.q0, "waves": cfg.waves, "seed": cfg.seed,
    })


def _floats(text: Optional[str], flag: str) -> Optional[list]:
    from fibsynth.cliutil import parse_list

    return None if text is None else parse_list(text, flag)


def _names(text: Optional[str]) -> Optional[list]:
    return None if text is None else [t.strip() for t in text.split(",")]


@app.command("multiphase")
def multiphase_cmd(
    out: Path = typer.Argument(..., help=_OUT_HELP),
    shape: Optional[Tuple[int, int, int]] = typer.Option(None, "--shape", help=_SHAPE_HELP),
    voxel_nm: Optional[float] = typer.Option(None, "--voxel-nm", help="Pixel size in x and y (nm)."),
    slice_nm: Optional[float] = typer.Option(None, "--slice-nm", help="Slice thickness in z (nm); default --voxel-nm."),
    kind: Optional[str] = typer.Option(None, "--kind", help="two-field (pore + two solid phases, e.g. a Ni/YSZ "
                                       "fuel-cell anode; default) or particles (label 0 a matrix, labels 1.. spheres)."),
    fractions: Optional[str] = typer.Option(None, "--fractions", help="Volume fraction of each label 0,1,...,n-1, "
                                            "comma-separated, sum 1 (two-field: 3 of them)."),
    ligament_nm: Optional[str] = typer.Option(None, "--ligament-nm", help="two-field: ligament of the solid "
                                              "network and of the field splitting it, nm (one value: both; default 40)."),
    radius_nm: Optional[str] = typer.Option(None, "--radius-nm", help="particles: sphere radius of labels 1..n-1, "
                                            "nm (one value: all; default 20)."),
    phases: Optional[str] = typer.Option(None, "--phases", help="Material of each label, comma-separated, recorded "
                                         "in the metadata (mc stack --materials takes the same list)."),
    waves: Optional[int] = typer.Option(None, "--waves", help="Plane waves per field (default 1000)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 0)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with any of these options (CLI wins)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """A structure of three or more phases: a label volume (uint8, 0..n-1), one phase per label."""
    from fibsynth.errors import register_flag_names
    from fibsynth.structure.multiphase import Multiphase, MultiphaseConfig, write_multiphase

    register_flag_names(particle_radius_nm="--radius-nm")
    v = _merge(
        config,
        dict(shape=shape, voxel_nm=voxel_nm, slice_nm=slice_nm, kind=kind, fractions=_floats(fractions, "--fractions"),
             ligament_nm=_floats(ligament_nm, "--ligament-nm"), radius_nm=_floats(radius_nm, "--radius-nm"),
             phases=_names(phases), waves=waves, seed=seed),
        ("shape", "voxel_nm", "fractions"),
    )
    _check_out(out, inputs=[config])

    def tup(x):
        return tuple(x) if isinstance(x, (list, tuple)) else (x,)

    fields = dict(shape=tuple(v["shape"]), voxel_size=_voxel(v), fractions=tup(v["fractions"]),
                  waves=v.get("waves", 1000), seed=v.get("seed", 0), kind=v.get("kind", "two-field"))
    for key, name in (("ligament_nm", "ligament_nm"), ("radius_nm", "particle_radius_nm"), ("phases", "phases")):
        if v.get(key) is not None:
            fields[name] = tup(v[key])
    model = Multiphase(MultiphaseConfig.build(config, **fields))
    write_multiphase(out, model)
    p = model.parameters()
    _report(out, model, as_json, {"generator": "multiphase", "kind": p["kind"], "phases": p["phases"],
                                  "fractions": p["fractions"], "fractions_measured": p["fractions_measured"],
                                  "seed": model.config.seed})


@app.command("import")
def import_(
    src: Path = typer.Argument(..., metavar="IN", help="User binary volume ({0,1}, {0,255} or bool) or, with "
                               "--labels, a label volume (integers 0..n-1): TIFF, slice folder, .zarr, .npy."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output volume (suffix picks the format)."),
    voxel_nm: Optional[float] = typer.Option(None, "--voxel-nm", help="Pixel size in x and y (nm); required if IN has none."),
    slice_nm: Optional[float] = typer.Option(None, "--slice-nm", help="Slice thickness in z (nm); default --voxel-nm."),
    labels: bool = typer.Option(False, "--labels", help="IN is a label volume of n >= 2 phases (0..n-1, each present)."),
    phases: Optional[str] = typer.Option(None, "--phases", help="With --labels: the material of each label, "
                                         "comma-separated (recorded in the metadata)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Validate a user-supplied binary structure (or label volume) and rewrite it with fibsynth metadata."""
    from fibsynth.cliutil import emit_json
    from fibsynth.errors import FibsynthError
    from fibsynth.structure.write import import_structure

    _check_out(out, inputs=[src])
    if phases is not None and not labels:
        raise FibsynthError("--phases goes with --labels")
    if labels:
        from fibsynth.structure.multiphase import import_labels

        info = import_labels(src, out, voxel_nm, slice_nm, phases=_names(phases))
    else:
        info = import_structure(src, out, voxel_nm, slice_nm)
    if as_json:
        emit_json(info)
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in info.items()))
