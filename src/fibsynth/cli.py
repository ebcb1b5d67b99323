"""The ``fibsynth`` command line: a thin layer over the stages' Python APIs.

One sub-command group per pipeline stage. User mistakes (bad options, unreadable files, values out
of range) print one line ``fibsynth: error: ...`` on stderr and exit with status 2, no traceback.
"""

from __future__ import annotations

import sys

import click
import typer

try:  # typer >= 0.26 vendors its own click; catch both families of exceptions
    from typer._click import exceptions as _tx
except ImportError:  # pragma: no cover
    _tx = click.exceptions

_USAGE = tuple({click.UsageError, _tx.UsageError})
_NOARGS = tuple({click.exceptions.NoArgsIsHelpError, _tx.NoArgsIsHelpError})
_CLICKEXC = tuple({click.ClickException, _tx.ClickException})

from fibsynth import __version__
from fibsynth.errors import FibsynthError, flag_names

app = typer.Typer(
    name="fibsynth",
    help="Synthetic FIB-SEM tomography of nanoporous materials: structures, electron Monte Carlo, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fibsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Print the version."),
) -> None:
    """fibsynth command line."""


def _register() -> None:
    from fibsynth.experiment import cli as experiment_cli
    from fibsynth.fastsim import cli as fast_cli
    from fibsynth.gan import cli as gan_cli
    from fibsynth.metrics import cli as metrics_cli
    from fibsynth.physics.montecarlo import cli as mc_cli
    from fibsynth.segment import cli as segment_cli
    from fibsynth.structure import cli as structure_cli
    from fibsynth import info_cli, synth

    app.add_typer(structure_cli.app, name="structure", help="Generate ground-truth binary structures.")
    app.add_typer(mc_cli.app, name="mc", help="Electron Monte Carlo: bulk, layered samples, FIB-SEM stacks.")
    app.add_typer(fast_cli.app, name="fast", help="Fast physics path: eta curves, shine-through projection, eta network.")
    app.add_typer(gan_cli.app, name="gan", help="Unpaired CycleGAN: train, translate (projection -> Monte Carlo look, domain adaptation).")
    app.add_typer(segment_cli.app, name="segment", help="Segmentation: train and apply U-Nets (2D, 2.5D, 3D), baselines, score tables.")
    app.command("evaluate", help="Compare a segmentation with its ground truth (MP, MGP, Dice).")(metrics_cli.evaluate)
    app.command("isotropy", help="Isotropy errors of a segmented volume (TPCF, lineal path, ligament diameter).")(
        metrics_cli.isotropy
    )
    app.command("run", help="Run a declarative experiment (YAML); finished steps come from the content cache.")(
        experiment_cli.run
    )
    app.command("synth", help="Monte-Carlo-like images of a structure in seconds: projection + shipped CycleGAN.")(synth.synth)
    app.command("info", help="Show a volume's shape, type and metadata.")(info_cli.info)
    app.command("demo", help="Run the end-to-end demo on built-in defaults.")(info_cli.demo)
    app.command("reconstruct", help="Your real FIB-SEM stack -> 3D segmentation + report (trained on matched synthetic data).")(__import__("fibsynth.reconstruct.cli", fromlist=["reconstruct_cmd"]).reconstruct_cmd)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        with flag_names():  # names a command registers end with it
            app(args=argv, standalone_mode=False, prog_name="fibsynth")
    except FibsynthError as exc:
        click.echo(f"fibsynth: error: {exc.cli_line()}", err=True)
        return 2
    except _NOARGS as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return 0
    except _USAGE as exc:
        where = f" (in 'fibsynth {exc.ctx.info_name}')" if exc.ctx and exc.ctx.info_name != "fibsynth" else ""
        click.echo(f"fibsynth: error: {exc.format_message()}{where}", err=True)
        return 2
    except _CLICKEXC as exc:
        click.echo(f"fibsynth: error: {exc.format_message()}", err=True)
        return 2
    except (click.exceptions.Exit, typer.Exit) as exc:
        return getattr(exc, "exit_code", 0)
    except (click.Abort, typer.Abort):
        click.echo("fibsynth: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("fibsynth: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
