"""What every command shares: the console, settings from the environment, and examples in --help."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from fraudstream.exceptions import ConfigurationError
from fraudstream.logs import configure_logging
from fraudstream.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


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
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_format)
    return settings
