"""``fibsynth run EXPERIMENT.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def run(
    experiment: Path = typer.Argument(..., help="Experiment YAML (see experiments/paper.yaml)."),
    workdir: Optional[Path] = typer.Option(None, "--workdir", help="Work folder with the cache (default: the file's 'workdir', else ./STEM-work)."),
    force: List[str] = typer.Option([], "--force", help="Rerun this step (and what depends on it) even if cached; repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the steps that would run and why; run nothing."),
    set_: List[str] = typer.Option([], "--set", help="Override a variable of the experiment: NAME=VALUE (YAML value); repeatable."),
    json_out: bool = typer.Option(False, "--json", help="Print the run report as JSON on stdout."),
) -> None:
    """Run a declarative experiment; finished steps are reused from the content-addressed cache."""
    from fibsynth.experiment.runner import run_experiment
    from fibsynth.experiment.spec import parse_override

    from fibsynth.cliutil import set_interrupt_note

    overrides = dict(parse_override(s, experiment) for s in set_)
    set_interrupt_note("finished steps are kept in the work folder's cache; run again to continue")
    rep = run_experiment(experiment, workdir=workdir, force=force, dry_run=dry_run, overrides=overrides)
    if json_out:
        typer.echo(rep.to_json())
