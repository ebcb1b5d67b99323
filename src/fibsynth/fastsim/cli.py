"""``fibsynth fast``: Hunger-Kuechler, the eta(E, Z, depth) network, calibration, training and projection."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fibsynth.cliutil import emit_json, parse_list, parse_range
from fibsynth.errors import FibsynthError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _seed(seed: int) -> int:
    if not (0 <= seed < 2**63):
        raise FibsynthError(f"--seed must be in [0, 2^63) (got {seed})")
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
    elastic: str = typer.Option("mott", "--elastic", help="Elastic model of the Monte Carlo: mott or rutherford."),
    restart: bool = typer.Option(False, "--restart", help="Discard rows already in --out instead of resuming."),
) -> None:
    """Monte Carlo eta of epoxy films 0..190 nm on bulk substrates (the paper's sMC-BS); resumable CSV."""
    from fibsynth.fastsim.calibration import CalibrationSettings, generate

    if not (1 <= electrons <= 10**9):
        raise FibsynthError(f"--electrons must be in [1, 1e9] (got {electrons})")
    if elastic not in ("mott", "rutherford"):
        raise FibsynthError(f"--elastic must be mott or rutherford (got {elastic!r})")
    subs = [s.strip() for s in substrates.split(",") if s.strip()]
    if not subs:
        raise FibsynthError("--substrates: expected at least one material")
    settings = CalibrationSettings.build(
        None, energies_kev=parse_list(energies, "--energies", minimum=0.2, maximum=30), substrates=subs,
        thicknesses_nm=parse_range(thickness_nm, "--thickness-nm", minimum=0), film=film, electrons=electrons,
        seed=_seed(seed), incidence_deg=incidence_deg, elastic=elastic)
    if restart and out.exists():
        out.unlink()
    info = generate(out, settings)
    typer.echo(f"wrote {out}: {info['rows']} rows ({info['simulated']} simulated, {info['skipped']} already there) "
               f"in {info['seconds']:.1f} s", err=True)
