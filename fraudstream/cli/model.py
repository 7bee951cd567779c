"""`fraudstream model status` and `fraudstream model promote`: thin commands over trainer/lifecycle.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from fraudstream.cli.common import console, err_console, example, settings_or_exit

if TYPE_CHECKING:
    from fraudstream.monitoring import MonitoringRecord
    from fraudstream.settings import Settings
    from trainer.lifecycle import LifecycleStatus

app = typer.Typer(help="The registered model's champion and challenger.", no_args_is_help=True)


def _f(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _records(settings: Settings, live: bool) -> list[MonitoringRecord] | None:
    """The committed monitoring records, or None (with a note) when not asked or the broker cannot be read."""
    if not live:
        return None
    from fraudstream.exceptions import BrokerError
    from fraudstream.kafka.monitoring_feed import read_monitoring

    try:
        return read_monitoring(settings)
    except BrokerError as exc:
        err_console.print(f"[yellow]no live metrics[/yellow]: {escape(str(exc))}")
        return None


def status_table(current: LifecycleStatus) -> Table:
    p, c = current.production, current.challenger
    table = Table(title="champion and challenger", title_justify="left")
    table.add_column("", style="bold")
    table.add_column(f"production v{p.version}" if p else "production: none", justify="right")
    table.add_column(f"challenger v{c.version}" if c else "challenger: none", justify="right")

    def row(name: str, metric: str) -> None:
        table.add_row(name, _f(p.offline.get(metric)) if p else "", _f(c.offline.get(metric)) if c else "")

    table.add_row("[dim]offline, each on its own holdout[/dim]", "", "")
    for name, metric in (("F1", "test_f1"), ("precision", "test_precision"), ("recall", "test_recall")):
        row(f"  {name}", metric)
    row("  PR-AUC", "test_pr_auc")
    s = current.same_rows
    if s is not None:
        table.add_row(f"[dim]offline, the same {s.rows:,} holdout rows ({s.frauds} frauds)[/dim]", "", "")
        table.add_row("  F1", _f(s.production_f1), _f(s.challenger_f1))
        table.add_row(
            "  difference (95% CI)",
            "",
            f"{s.challenger_f1 - s.production_f1:+.4f} ({s.difference_ci_low:+.3f} to {s.difference_ci_high:+.3f})",
        )
        table.add_row("  P(at least as good)", "", f"{s.p_at_least_as_good:.2f}")
    live = current.live
    if live is not None:
        table.add_row(f"[dim]live, the same {live.shared_windows} windows[/dim]", "", "")
        for name, attribute in (("precision", "precision"), ("recall", "recall"), ("F1", "f1")):
            table.add_row(
                f"  {name}",
                _f(getattr(live.production.pooled, attribute)),
                _f(getattr(live.challenger.pooled, attribute)),
            )
        table.add_row("  scored", f"{live.production.scored:,}", f"{live.challenger.scored:,}")
        latest = [live.production.latest, live.challenger.latest]
        table.add_row(
            "  latest status (max PSI)",
            *[f"{r.status} ({r.max_feature_psi:.3f})" if r else "—" for r in latest],
        )
    return table


@app.command(
    "status",
    epilog=example("fraudstream model status", "fraudstream model status --no-live"),
)
def status(
    live: bool = typer.Option(True, "--live/--no-live", help="Read the live metrics from fraud-monitoring."),
) -> None:
    """Show the production and challenger versions side by side: offline metrics (and both on the same holdout
    rows, when the challenger's run compared them), and live precision / recall / F1 over the same monitoring
    windows."""
    from fraudstream.model.registry import ModelRegistry
    from trainer.lifecycle import status as lifecycle_status

    settings = settings_or_exit()
    current = lifecycle_status(settings, ModelRegistry(settings), _records(settings, live))
    console.print(status_table(current))
    if current.same_rows is None and current.same_rows_note:
        console.print(f"[dim]same holdout rows: {escape(current.same_rows_note)}[/dim]")
    if current.production is None:
        console.print("no production version yet: run `fraudstream train`")


@app.command(
    "promote",
    epilog=example(
        "fraudstream model promote",
        "fraudstream model promote --version 3 --reason 'rollback: v4 degraded'",
    ),
)
def promote(
    version: str | None = typer.Option(None, "--version", help="The version to serve (default: the challenger)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (default: what the live and offline metrics say)."),
    live: bool = typer.Option(True, "--live/--no-live", help="Cite the live metrics in the default reason."),
) -> None:
    """Move the production alias (FRAUD_MODEL_ALIAS) to a version, the challenger by default, and record the
    reason as promote.* tags on the version and its run. The scorer and the API switch without a restart."""
    from fraudstream.model.registry import ModelRegistry
    from trainer.lifecycle import promote as move_alias

    settings = settings_or_exit()
    done = move_alias(settings, ModelRegistry(settings), version, reason, records=_records(settings, live))
    before = f" (was v{done.previous})" if done.previous else ""
    console.print(f"[green]v{done.version} now holds the alias {settings.model_alias!r}{before}[/green]")
    console.print(f"  [dim]{escape(done.reason)}[/dim]")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="model")
