"""What every command shares: the console, settings from the environment, exit codes, and examples in --help."""

from __future__ import annotations

import enum

import typer
from rich.console import Console
from rich.markup import escape

from fraudstream.exceptions import ConfigurationError
from fraudstream.logs import configure_logging
from fraudstream.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


class ExitCode(enum.IntEnum):
    """How a command ends (``fraudstream train`` ends with its gate's ``Outcome``: 0 promoted, 3 registered, 4
    refused)."""

    OK = 0
    FAILED = 1
    """A deliberate error (FraudstreamError), or a check that found a problem (Kafka down, rows not delivered)."""
    BAD_USAGE = 2
    """A bad setting or argument, as click answers a bad option."""
    SCORER_STUCK = 3
    """``fraudstream score`` (and ``replay --transactional``): blocking Kafka calls stayed stuck; a restart starts
    fresh clients."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (128 + SIGINT), after cleaning up."""


def example(*lines: str) -> str:
    """An epilog for --help showing how a command is called."""
    body = "\n\n".join(f"  $ {line}" for line in lines)
    return f"[bold]Example[/bold]\n\n{body}"


def settings_or_exit(**overrides: object) -> Settings:
    """Build this process's Settings (validated) and its logging; exit 2 naming the variable at fault."""
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigurationError as exc:
        err_console.print(f"[red]configuration error[/red]: {escape(str(exc))}")
        raise typer.Exit(ExitCode.BAD_USAGE) from exc
    configure_logging(settings.log_level, settings.log_format)
    return settings
