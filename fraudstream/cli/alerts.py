"""`fraudstream alerts ...` (under construction)."""

from __future__ import annotations

import typer

app = typer.Typer(help="alerts commands (under construction).", no_args_is_help=True)
