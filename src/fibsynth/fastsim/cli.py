"""Command-line commands of the fast physics path (placeholder until the stage lands)."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
