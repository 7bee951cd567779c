"""`fraudstream data ...` (under construction)."""

from __future__ import annotations

import typer

app = typer.Typer(help="data commands (under construction).", no_args_is_help=True)
