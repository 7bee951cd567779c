"""`fraudstream demo`: the whole system end to end, in one command (process orchestration lives here)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from fraudstream.cli.common import ExitCode, console, example, settings_or_exit
from fraudstream.logs import configure_logging


def demo(
    rows: Annotated[int, typer.Option("--rows", min=1, help="Held-out transactions to replay.")] = 5000,
    rate: Annotated[float, typer.Option("--rate", min=1.0, help="Replay pace in transactions per second.")] = 500.0,
    data: Annotated[
        Path | None,
        typer.Option("--data", dir_okay=False, help="creditcard.csv (default: data/creditcard.csv, else synthetic)."),
    ] = None,
    min_f1: Annotated[
        float | None,
        typer.Option("--min-f1", min=0.0, max=1.0, help="The gate for this run [default: FRAUD_MIN_F1, 0.91]."),
    ] = None,
    n_estimators: Annotated[
        int | None, typer.Option("--n-estimators", min=1, help="Trees (fewer: a quicker demo).")
    ] = None,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Leave scorer and API up until Ctrl-C.")] = False,
    summary_json: Annotated[
        Path | None, typer.Option("--summary-json", help="Also write the summary as JSON here.")
    ] = None,
) -> None:
    """Run everything: broker, training with the gate, scorer, API, a live replay, and a summary."""
    from fraudstream.cli.demo.flow import Demo, DemoOptions

    settings = settings_or_exit()
    if settings.log_level == "INFO":  # the steps speak for themselves; each service logs to its own file
        configure_logging("WARNING", settings.log_format)
    options = DemoOptions(
        rows=rows,
        rate=rate,
        data=data,
        min_f1=min_f1,
        n_estimators=n_estimators,
        keep_running=keep_running,
        summary_json=summary_json,
    )
    code = Demo(settings, options, console).run()
    if code == ExitCode.INTERRUPTED:
        _exit_interrupted(code)
    raise typer.Exit(code)


def _exit_interrupted(code: int) -> None:
    """Leave with ``code`` once the demo has stopped everything it started.

    CPython 3.11 remembers a KeyboardInterrupt that passed through ``exec()`` of a string (dataclasses and
    namedtuples build their methods that way, e.g. while mlflow is being imported) and then ends the process
    with SIGINT whatever the program returns. Everything is stopped and flushed here, so exit directly.
    """
    console.file.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def register(app: typer.Typer) -> None:
    app.command(
        "demo",
        epilog=example(
            "fraudstream demo",
            "fraudstream demo --data data/creditcard.csv --min-f1 0.80 --rows 20000 --rate 2000",
            "fraudstream demo --keep-running",
        ),
    )(demo)
