"""The ``fibsynth`` command line: a thin layer over the stages' Python APIs.

One sub-command group per pipeline stage. User mistakes (bad options, unreadable files, values out
of range) print one line ``fibsynth: error: ...`` on stderr and exit with status 2, no traceback.
"""

from __future__ import annotations

import contextlib
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
    from fibsynth.microscope import cli as microscope_cli
    from fibsynth.physics.montecarlo import cli as mc_cli
    from fibsynth.segment import cli as segment_cli
    from fibsynth.structure import cli as structure_cli
    from fibsynth import info_cli
    from fibsynth.pipeline import cli as pipeline_cli

    app.add_typer(structure_cli.app, name="structure", help="Generate ground-truth binary structures.")
    app.add_typer(mc_cli.app, name="mc", help="Electron Monte Carlo: bulk, layered samples, FIB-SEM stacks.")
    app.add_typer(fast_cli.app, name="fast", help="Fast physics path: eta curves, shine-through projection, eta network.")
    app.add_typer(gan_cli.app, name="gan", help="Unpaired CycleGAN: train, translate (projection -> Monte Carlo look, domain adaptation).")
    app.add_typer(segment_cli.app, name="segment", help="Segmentation: train and apply U-Nets (2D, 2.5D, 3D), baselines, score tables.")
    app.add_typer(microscope_cli.app, name="microscope", help="Microscope model: FIB-SEM artifacts for simulated stacks, corrections and estimates for real ones.")
    app.command("evaluate", help="Compare a segmentation with its ground truth (MP, MGP, Dice).")(metrics_cli.evaluate)
    app.command("isotropy", help="Isotropy errors of a segmented volume (TPCF, lineal path, ligament diameter).")(
        metrics_cli.isotropy
    )
    app.command("run", help="Run a declarative experiment (YAML); finished steps come from the content cache.")(
        experiment_cli.run
    )
    app.command("synth", help="Monte-Carlo-like images of a structure in seconds: projection + shipped CycleGAN.")(pipeline_cli.synth)
    app.command("info", help="Show a volume's shape, type and metadata.")(info_cli.info)
    app.command("demo", help="Run the end-to-end demo on built-in defaults.")(info_cli.demo)
    app.command("reconstruct", help="Your real FIB-SEM stack -> 3D segmentation + report (trained on matched synthetic data).")(__import__("fibsynth.reconstruct.cli", fromlist=["reconstruct_cmd"]).reconstruct_cmd)


_register()


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``): unwinds like Ctrl-C so that temporary outputs are removed."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised by the subprocess test
    import os
    import signal

    if os.getpid() != _MAIN_PID[0]:  # a forked child (DataLoader worker ...): die as it would have
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Terminated()


_MAIN_PID = [0]

# errno values that mean "this path cannot be written / read here": reported as one line, not a traceback
_PATH_ERRNOS = {"EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENOTDIR", "EISDIR", "EEXIST", "ENAMETOOLONG",
                "ENOENT", "ELOOP", "EXDEV", "ENOTEMPTY", "EBUSY", "ETXTBSY", "EMFILE", "EFBIG"}


def _os_error_line(exc: OSError) -> str | None:
    import errno

    name = errno.errorcode.get(exc.errno or -1)
    if name not in _PATH_ERRNOS:
        return None
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    text = exc.strerror or name
    return f"{where}: {text}" if where else text


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script.

    Exit status: 0 done; 2 a mistake in the input (one line ``fibsynth: error: ...``, no traceback, no partial
    output); 130 interrupted by Ctrl-C, 143 terminated (SIGTERM): one line ``fibsynth: interrupted (...)``, the
    temporary outputs removed and the resumable work stores (``mc stack``'s, ``run``'s cache, checkpoints) kept.
    """
    import os
    import signal
    import threading

    from fibsynth import cliutil

    cliutil.reset_interrupt_note()
    _quiet_lightning_interrupt()
    old_term = None
    if threading.current_thread() is threading.main_thread():
        _MAIN_PID[0] = os.getpid()
        try:
            old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # pragma: no cover
            old_term = None
    try:
        with _input_notes_as_lines():
            return _main(argv)
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


@contextlib.contextmanager
def _input_notes_as_lines():
    """:class:`fibsynth.errors.InputNote` warnings (how an input was interpreted) print as one line each,
    ``fibsynth: note: ...``, instead of Python's two-line warning with a source location."""
    import warnings

    from fibsynth.errors import InputNote

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if isinstance(category, type) and issubclass(category, InputNote):
            click.echo(f"fibsynth: note: {message}", err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", InputNote)
        warnings.showwarning = show
        yield


def _quiet_lightning_interrupt() -> None:
    """Lightning logs "Detected KeyboardInterrupt, attempting graceful shutdown" before it exits; fibsynth prints
    its own one line instead."""
    import logging

    lg = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(getattr(f, "_fibsynth", False) for f in lg.filters):
        def drop(record: logging.LogRecord) -> bool:
            return "Detected KeyboardInterrupt" not in record.getMessage()

        drop._fibsynth = True  # type: ignore[attr-defined]
        lg.addFilter(drop)


def _interrupted(exc: BaseException) -> int:
    from fibsynth import cliutil

    term = isinstance(exc, Terminated)
    what = "terminated" if term else "interrupted"
    note = cliutil.interrupt_note()
    click.echo(f"fibsynth: {what} ({'SIGTERM' if term else 'Ctrl-C'}; {note})", err=True)
    return 143 if term else 130


def _main(argv: list[str] | None) -> int:
    from fibsynth import cliutil

    try:
        with cliutil.quiet_interrupts():
            # typer's own main turns a KeyboardInterrupt into a silent return of 130 (and main reported 0); the
            # command is parsed and invoked here instead, so that an interrupt reaches the handler below
            cmd = typer.main.get_command(app)
            args = sys.argv[1:] if argv is None else list(argv)
            with flag_names(), cmd.make_context("fibsynth", args) as ctx:  # names a command registers end with it
                cmd.invoke(ctx)
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
    except (click.Abort, typer.Abort) as exc:
        # click turns a Ctrl-C during a prompt into Abort; an interrupt caught and re-raised as Abort too
        ctx = exc.__context__
        if isinstance(ctx, KeyboardInterrupt):
            return _interrupted(ctx)
        click.echo("fibsynth: aborted", err=True)
        return 130
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except SystemExit as exc:
        # Lightning catches Ctrl-C in fit(), shuts down and calls sys.exit(1): still an interruption
        if isinstance(exc.__context__, KeyboardInterrupt):
            return _interrupted(exc.__context__)
        raise
    except MemoryError:
        click.echo("fibsynth: error: out of memory; use a smaller input, or a .zarr output/input where the command "
                   "streams it", err=True)
        return 2
    except OSError as exc:
        line = _os_error_line(exc)
        if line is None:
            raise
        click.echo(f"fibsynth: error: {line}", err=True)
        return 2
    except EOFError:  # click used to turn this into "aborted" (130): an input file ended early
        click.echo("fibsynth: error: an input file ends early (empty or truncated)", err=True)
        return 2
    except UnicodeDecodeError as exc:
        click.echo(f"fibsynth: error: an input is not UTF-8 text ({exc.reason} at byte {exc.start})", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
