"""``fibsynth fast``: Hunger-Kuechler, the eta(E, Z, depth) network, calibration, training and projection."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from fibsynth.cliutil import emit_json, parse_list, parse_range
from fibsynth.errors import FibsynthError, register_flag_names

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _seed(seed: int) -> int:
    if not (0 <= seed < 2**63):
        raise FibsynthError(f"must be in [0, 2^63) (got {seed})", param="seed")
    return seed


@app.command("calibrate")
def calibrate(
    out: Path = typer.Option(..., "--out", help="Calibration CSV to write (appended to; resumes if it exists)."),
    energies: str = typer.Option("1,1.5,2,2.5,3,4,5", "--energies", help="Beam energies in keV, comma-separated."),
    substrates: str = typer.Option("C,Al,Si,Ti,Cu,Mo,Ag,W,Pt,Au", "--substrates",
                                   help="Bulk substrates (elements, library names or FORMULA:DENSITY), comma-separated."),
    thickness_nm: str = typer.Option("0:190:10", "--thickness-nm", help="Film thicknesses START:STOP:STEP nm (STOP inclusive)."),
    film: str = typer.Option("epoxy", "--film", help="Film material (the pore filling)."),
    electrons: int = typer.Option(15000, "--electrons", help="Primary electrons per point."),
    seed: int = typer.Option(0, "--seed", help="Run seed (each point derives its own from it)."),
    incidence_deg: float = typer.Option(0.0, "--incidence-deg", help="Beam angle to the film normal (degrees)."),
    elastic: str = typer.Option("mott", "--elastic", help="Elastic model of the Monte Carlo: mott (the engine's default Mott model), mott-pwa, browning or rutherford."),
    binary: bool = typer.Option(True, "--binary-collisions/--no-binary-collisions",
                                help="Monte Carlo with binary collisions with atomic electrons (the engine's default)."),
    restart: bool = typer.Option(False, "--restart", help="Discard rows already in --out instead of resuming."),
) -> None:
    """Monte Carlo eta of epoxy films 0..190 nm on bulk substrates (the paper's sMC-BS); resumable CSV."""
    from fibsynth.fastsim.calibration import CalibrationSettings, generate, is_calibration_table
    from fibsynth.io import check_output

    register_flag_names(thicknesses_nm="--thickness-nm", energies_kev="--energies")
    # the CSV is appended to (resumed): it may exist, but only as a calibration table this command wrote
    check_output(out, kind="file", suffixes=(".csv",), param="out")
    if out.exists() and out.stat().st_size and not is_calibration_table(out):
        raise FibsynthError("exists but is not a calibration table written by this command; choose another file",
                            out, param="out")
    if not (1 <= electrons <= 10**9):
        raise FibsynthError(f"must be in [1, 1e9] (got {electrons})", param="electrons")
    if elastic not in ("mott", "browning", "rutherford", "mott-pwa"):
        raise FibsynthError(f"must be mott, mott-pwa, browning or rutherford (got {elastic!r})", param="elastic")
    subs = [s.strip() for s in substrates.split(",") if s.strip()]
    if not subs:
        raise FibsynthError("expected at least one material", param="substrates")
    settings = CalibrationSettings.build(
        None, energies_kev=parse_list(energies, "--energies", minimum=0.2, maximum=30), substrates=subs,
        thicknesses_nm=parse_range(thickness_nm, "--thickness-nm", minimum=0), film=film, electrons=electrons,
        seed=_seed(seed), incidence_deg=incidence_deg, elastic=elastic,
        binary_collisions=binary)
    if restart and out.exists():
        out.unlink()
    info = generate(out, settings)
    typer.echo(f"wrote {out}: {info['rows']} rows ({info['simulated']} simulated, {info['skipped']} already there) "
               f"in {info['seconds']:.1f} s", err=True)


@app.command("train-eta")
def train_eta(
    table: Path = typer.Argument(..., help="Calibration CSV (columns energy_kev,substrate,Z,thickness_nm,eta[,eta_std])."),
    out: Path = typer.Option(..., "--out", help="Weights file (.pt state_dict); the normalisation goes to the same name .json."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    batch_size: int = typer.Option(8, "--batch-size", help="Mini-batch size."),
    max_epochs: int = typer.Option(400, "--max-epochs", help="Upper limit of epochs (early stopping usually ends sooner)."),
    patience: int = typer.Option(25, "--patience", help="Early stopping: epochs without improvement of the monitor loss."),
    lr_patience: int = typer.Option(10, "--lr-patience", help="Epochs without improvement before lr x0.1."),
    holdout: Optional[str] = typer.Option(None, "--holdout", help="Test curves E:SUBSTRATE,... (default: a seeded random 10 %% of the curves)."),
    holdout_fraction: float = typer.Option(0.1, "--holdout-fraction", help="Fraction of (E, substrate) curves held out when --holdout is not given."),
    depth_feature: str = typer.Option("range", "--depth-feature", help="range (depth / KO range of the film) or nm."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, shuffles and splits."),
    as_json: bool = typer.Option(False, "--json", help="Print the training report as one JSON object."),
) -> None:
    """Train the eta(E, Z, depth) network on a calibration table; report RMSEs on held-out (E, substrate) curves."""
    from fibsynth.fastsim.calibration import read_table
    from fibsynth.fastsim.network import TrainSettings, train
    from fibsynth.io import check_output

    if out.suffix != ".pt":
        raise FibsynthError("weights file must end in .pt", out, param="out")
    check_output(out, kind="file", suffixes=(".pt",), inputs=[table], param="out")
    check_output(out.with_suffix(".json"), kind="file", suffixes=(".json",), inputs=[table], param="out")
    hold = [h.strip() for h in holdout.split(",") if h.strip()] if holdout else None
    settings = TrainSettings.build(None, lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                                   lr_patience=lr_patience, holdout=hold, holdout_fraction=holdout_fraction,
                                   depth_feature=depth_feature, seed=_seed(seed))
    data = read_table(table)
    model, report = train(data, settings, progress=not as_json)
    model.info["table"] = str(table)
    w, j = model.save(out)
    if as_json:
        emit_json({"weights": str(w), "normalisation": str(j), **report})
    else:
        typer.echo(f"wrote {w} and {j}: {report['epochs_run']} epochs (best {report['best_epoch']}), "
                   f"held-out curves {', '.join(report['held_out_curves']) or 'none'}: RMSE {report['rmse_test']:.4f} "
                   f"(MC std {report.get('test_mean_mc_std', float('nan')):.4f}); depth 0 vs Hunger-Kuechler "
                   f"{report.get('rmse_depth0_test_net_vs_hk', float('nan')):.4f}", err=True)


@app.command("eta")
def eta(
    material: str = typer.Option(..., "--material", help="Material under the epoxy (element, library name or FORMULA:DENSITY)."),
    energy_kev: float = typer.Option(..., "--energy-kev", help="Beam energy in keV."),
    depth_nm: str = typer.Option("0", "--depth-nm", help="Depths under epoxy START:STOP:STEP nm (STOP inclusive) or one number."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Network weights (.pt); default: the shipped network."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """eta of MATERIAL under DEPTH nm of epoxy from the network, with the Hunger-Kuechler bulk value."""
    from fibsynth.fastsim.network import load_model
    from fibsynth.physics.backscatter import effective_z, hunger_kuechler
    from fibsynth.physics.materials import get_material
    from fibsynth.physics.montecarlo.engine import check_energy

    register_flag_names(z="--material")
    e = check_energy(energy_kev)
    mat = get_material(material, "--material")
    depths = parse_range(depth_nm, "--depth-nm", minimum=0)
    model = load_model(weights)
    z = effective_z(mat)
    used, moved = model.depth_in_domain(e, z, np.asarray(depths))  # one line outside the calibrated domain
    values = model.predict(e, z, np.asarray(depths))
    hk = float(hunger_kuechler(mat, e))
    note = None
    if moved.any():
        d_max = float(used[moved].max())
        note = (f"depths beyond {d_max:.4g} nm (the network's deepest calibrated depth at {e:g} keV, past the "
                f"electrons' range in {model.film}) give the film's own eta, the value at {d_max:.4g} nm")
    if as_json:
        emit_json({"depth_nm": depths, "eta": [round(float(v), 6) for v in values], "hunger_kuechler_bulk": hk,
                   **({"note": note} if note else {})})
    else:
        typer.echo(f"# {material} under epoxy at {e:g} keV (Hunger-Kuechler bulk {hk:.4f})")
        if note:
            typer.echo(f"# {note}")
        typer.echo("depth_nm,eta")
        for d, v in zip(depths, values):
            typer.echo(f"{d:g},{v:.5f}")


@app.command("project")
def project_cmd(
    structure: Path = typer.Argument(..., help="Binary structure (z, y, x; 1 = solid)."),
    out: Path = typer.Argument(..., help="Output image stack (format from the suffix)."),
    energy_kev: float = typer.Option(..., "--energy-kev", help="Beam energy in keV."),
    slices_behind: Optional[int] = typer.Option(None, "--slices-behind", help="K: slices behind the face that shine through (default: half the KO range of the pore filling / slice thickness)."),
    incidence_deg: float = typer.Option(38.0, "--incidence-deg", help="Beam angle to the face normal, tilted in y-z (as fibsynth mc)."),
    solid: str = typer.Option("gold", "--solid", help="Solid material (label 1)."),
    pore: str = typer.Option("epoxy", "--pore", help="Pore filling (label 0); the network is calibrated for epoxy; vacuum = open pores."),
    spread: float = typer.Option(0.5, "--spread", help="Lateral window half-width per nm of depth: a hit at depth d counts with the solid fraction within +-spread*d around it (0: first hit only)."),
    normalise: str = typer.Option("group", "--normalise", help="group: (eta - eta_pore)/(eta_solid - eta_pore) in [0, 1]; eta: backscatter coefficients."),
    method: str = typer.Option("window", "--method", help="window: first solid voxel along the beam, scaled by its window's solid fraction; layered: every cell along the beam in proportion to its window and the beam left (measured worse, docs/fastsim.md); depth_layers: thin-solid window plus Monte Carlo-fitted weights of the gold layers behind the face (gold/epoxy, 1-4 keV; best measured at 4 keV)."),
    solid_depth: float = typer.Option(0.0, "--solid-depth", help="Thin-solid model: the hit's solid fraction over exp(-depth / (this x KO range of the solid)) below it; 0 = off (default), 0.085 = the measured better choice at 4 keV."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Network weights (.pt); default: the shipped network."),
    voxel_nm: Optional[float] = typer.Option(None, "--voxel-nm", help="Pixel size (nm) if the structure carries none."),
    slice_nm: Optional[float] = typer.Option(None, "--slice-nm", help="Slice thickness (nm) if the structure carries none."),
) -> None:
    """Shine-through projection: one float32 image per slice of STRUCTURE."""
    import time

    from fibsynth.fastsim.network import load_model
    from fibsynth.fastsim.projection import project
    from fibsynth.io import VolumeMeta, check_output, read_structure, resolve_voxel_size, write_volume

    register_flag_names(z="--solid")
    w_path = weights
    check_output(out, inputs=[structure, w_path, None if w_path is None else w_path.with_suffix(".json")])
    vol = read_structure(structure)
    data = np.asarray(vol.data)
    voxel = resolve_voxel_size(vol.meta.voxel_size_nm, voxel_nm, slice_nm, structure)
    if voxel.x != voxel.y:
        raise FibsynthError(f"x and y pixel sizes must be equal (got {voxel.x}, {voxel.y})", structure,
                            param="voxel_nm")
    model = load_model(weights)
    t0 = time.perf_counter()
    img, rec = project(data, voxel.zyx(), energy_kev, slices_behind=slices_behind, incidence_deg=incidence_deg,
                       solid=solid, pore=pore, model=model, normalise=normalise, spread=spread, method=method,
                       solid_depth=solid_depth)
    dt = time.perf_counter() - t0
    params = {k: v for k, v in rec.items() if k not in ("cells", "weights")}
    model_text = ("first solid voxel along the tilted beam path within K slices -> eta_net(E, Z, depth), "
                  "weighted by the solid fraction of a lateral window of half-width spread*depth")
    if rec.get("open_pores"):
        model_text = ("open pores: first solid voxel along the beam path through vacuum -> eta_net(E, Z, 0) x "
                      "Arnal angle factor x escape fraction through the pore (docs/fastsim.md)")
    params.update({"structure": str(structure), "weights": str(weights or "shipped eta_net.pt"), "model": model_text,
                   "ray_cells_slice_y_depthnm": rec["cells"], "cell_weights": rec.get("weights", [])})
    meta = VolumeMeta(kind="image", voxel_size_nm=voxel, generator="projection", parameters=params,
                      seed=vol.meta.seed, energy_kev=rec["energy_kev"], materials={"0": pore, "1": solid})
    write_volume(out, img, meta)
    typer.echo(f"wrote {out}: {img.shape[0]} images, K = {rec['slices_behind']} slices, {dt:.2f} s", err=True)
