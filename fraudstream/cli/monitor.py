"""`fraudstream monitor`: the latest monitoring window of each model version, as a live table (like `alerts tail`).

The consume loop is the kernel's (fraudstream/kafka/monitoring_feed.py); this module only draws.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from fraudstream.cli.common import console, err_console, example, settings_or_exit

if TYPE_CHECKING:
    from fraudstream.kafka.monitoring_feed import LatestWindows

STATUS_STYLE = {"ok": "green", "drift": "yellow", "degraded": "red"}


def _metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def monitoring_table(latest: LatestWindows, title: str) -> Table:
    """One row per model version: its newest window, and the live metrics pooled over all its windows."""
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("model", "left"),
        ("role", "left"),
        ("windows", "right"),
        ("last window (UTC)", "left"),
        ("scored", "right"),
        ("alert rate", "right"),
        ("live P / R / F1", "right"),
        ("pooled F1", "right"),
        ("score PSI", "right"),
        ("max feature PSI", "right"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for seen in latest.newest_first():
        r = seen.latest
        worst = max(r.feature_psi, key=lambda name: r.feature_psi[name]) if r.feature_psi else "—"
        style = STATUS_STYLE[r.status]
        status = f"[{style}]{r.status}[/{style}]" + (f" [dim]{escape('; '.join(r.reasons))}[/dim]" if r.reasons else "")
        table.add_row(
            f"{escape(r.model_name)} v{escape(r.model_version)}",
            r.role,
            str(seen.windows),
            f"{r.window_start:%H:%M:%S}-{r.window_end:%H:%M:%S}",
            f"{r.scored:,}",
            f"{r.alert_rate:.4f}",
            f"{_metric(r.precision)} / {_metric(r.recall)} / {_metric(r.f1)}",
            _metric(seen.confusion.f1),
            f"{r.score_psi:.3f}",
            f"{r.max_feature_psi:.3f} ({escape(worst)})",
            status,
        )
    return table


def monitor(
    new_only: bool = typer.Option(False, "--new-only", help="Only windows committed from now on, not the history."),
    once: bool = typer.Option(False, "--once", help="Print the table of the topic as it is now and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print each record as one JSON line (for pipes)."),
) -> None:
    """Show the latest monitoring window of each model version from fraud-monitoring (read_committed): counts,
    live precision / recall / F1 (replayed, labelled rows), score and feature PSI against the training rows, and
    the status (ok, drift, degraded) with its reasons. Follows until Ctrl-C unless --once."""
    from rich.live import Live

    from fraudstream.kafka.monitoring_feed import LatestWindows, follow_monitoring
    from fraudstream.shutdown import GracefulStop

    settings = settings_or_exit()
    title = f"{settings.topic_monitoring} on {settings.bootstrap_servers}"
    latest = LatestWindows()

    def skipped(partition: int, offset: int, why: str) -> None:
        err_console.print(f"[yellow]not a monitoring record[/yellow] at p{partition}@{offset}: {escape(why)}")

    with GracefulStop() as stop:
        feed = follow_monitoring(settings, stop=stop, from_beginning=not new_only, until_end=once, on_invalid=skipped)
        if as_json:
            for record in feed:
                if record is not None:
                    sys.stdout.write(record.model_dump_json() + "\n")
                    sys.stdout.flush()
            return
        if once:
            for record in feed:
                if record is not None:
                    latest.add(record)
            console.print(monitoring_table(latest, title))
            if not latest.versions:
                console.print("no monitoring record on the topic yet (is `fraudstream score` running?)")
            return
        err_console.print(f"following [bold]{settings.topic_monitoring}[/bold] (Ctrl-C stops)")
        with Live(monitoring_table(latest, title), console=console, refresh_per_second=2) as live:
            for record in feed:
                if record is not None:
                    latest.add(record)
                live.update(monitoring_table(latest, title))


def register(app: typer.Typer) -> None:
    app.command(
        "monitor",
        epilog=example("fraudstream monitor", "fraudstream monitor --once", "fraudstream monitor --json | jq .status"),
    )(monitor)
