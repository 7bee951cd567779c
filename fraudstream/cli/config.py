"""`fraudstream config`: the effective settings of this shell (secrets masked), or the table of all of them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fraudstream.cli.common import console, example, settings_or_exit


def _describe(default: object, description: str | None) -> tuple[str, str]:
    shown = "(unset)" if default is None else str(default)
    return shown, (description or "").replace("\n", " ")


def markdown_table() -> str:
    """Every FRAUD_* variable with its default and meaning, as the README's settings table."""
    from fraudstream.settings import Settings, env_name

    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        shown, description = _describe(default, field.description)
        if name == "kafka_cache_dir":
            shown = "~/.cache/fraudstream/kafka"
        lines.append(f"| `{env_name(name)}` | `{shown}` | {description} |")
    return "\n".join(lines)


def config(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print every variable as a Markdown table (defaults).")
    ] = False,
) -> None:
    """Show the settings this shell would run with: FRAUD_* variables, .env, then defaults."""
    if markdown:
        typer.echo(markdown_table())
        return
    from fraudstream.settings import Settings, env_name

    settings = settings_or_exit()
    values = settings.redacted()
    table = Table(title="fraudstream settings (FRAUD_* variables, .env, defaults)")
    for column in ("variable", "value", "meaning"):
        table.add_column(column, overflow="fold")
    for name, field in Settings.model_fields.items():
        table.add_row(env_name(name), escape(str(values[name])), escape(field.description or ""))
    console.print(table)
    console.print(
        f"derived: bootstrap [bold]{settings.bootstrap_servers}[/bold], MLflow [bold]{settings.tracking_uri}[/bold], "
        f"alert store [bold]{settings.alert_store}[/bold]"
    )


def register(app: typer.Typer) -> None:
    app.command(
        "config",
        epilog=example(
            "fraudstream config", "FRAUD_TOPIC_PARTITIONS=6 fraudstream config", "fraudstream config --markdown"
        ),
    )(config)
