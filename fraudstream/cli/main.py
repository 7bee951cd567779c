"""The ``fraudstream`` command. A thin top layer: each command imports its component only when it runs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from fraudstream import __version__
from fraudstream.cli.common import ExitCode, err_console, example
from fraudstream.exceptions import FraudstreamError

app = typer.Typer(
    name="fraudstream",
    help="Streaming credit-card fraud scoring on Apache Kafka, with an MLflow-governed model lifecycle.",
    epilog=example("fraudstream demo", "fraudstream kafka up && fraudstream train && fraudstream score"),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fraudstream {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Streaming credit-card fraud scoring on Apache Kafka, with an MLflow-governed model lifecycle."""


def _register() -> None:
    # Each module adds its commands to ``app``; none of them imports a component at import time.
    from fraudstream.cli import commands

    commands.register(app)


def run() -> None:
    """Console-script entry point: turn deliberate errors into a readable message and exit code 1."""
    _register()
    try:
        app()
    except FraudstreamError as exc:
        err_console.print(f"[red]error[/red]: {escape(str(exc))}")
        sys.exit(ExitCode.FAILED)
