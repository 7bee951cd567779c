"""`fraudstream replay` and `fraudstream score`: thin commands over producer.bootstrap and scorer.bootstrap."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fraudstream.cli.common import ExitCode, console, err_console, example, settings_or_exit

if TYPE_CHECKING:
    from fraudstream.settings import Settings
    from producer.replay import ReplayStats
    from scorer.loop import ScorerStatus


def replay(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="CSV to replay (default: FRAUD_DATA_PATH if present, else a synthetic set).", dir_okay=False
        ),
    ] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="Pace: transactions per second.")] = None,
    speed: Annotated[
        float | None, typer.Option("--speed", help="Pace: multiple of real time from the Time column.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Send at most this many rows per pass.", min=0)] = None,
    start: Annotated[
        int, typer.Option("--start", help="First data row to send (0-based, header excluded).", min=0)
    ] = 0,
    loop: Annotated[bool, typer.Option("--loop", help="Start over at the end, until Ctrl-C.")] = False,
    drift: Annotated[
        str | None,
        typer.Option(
            "--drift",
            help="Perturb the features to see drift detected: comma-separated FEATURE*FACTOR / FEATURE+OFFSET / "
            "FEATURE-OFFSET terms (e.g. 'Amount*3,V1+2'), or 'default' (Amount*3,V13+2,V15+2).",
        ),
    ] = None,
    transactional: Annotated[
        bool | None,
        typer.Option(
            "--transactional/--no-transactional",
            help="Send in Kafka transactions: no row written twice, even while a partition leader changes "
            "(default: FRAUD_REPLAY_TRANSACTIONAL).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Replay a creditcard.csv onto the transactions topic as JSON, keyed by a stable transaction_id."""
    from fraudstream.kafka.watchdog import WatchdogGaveUp, exit_process
    from fraudstream.shutdown import GracefulStop
    from producer.bootstrap import bootstrap
    from producer.drift import Drift
    from producer.exceptions import ReplayError
    from producer.pacing import Pace
    from producer.replay import ReplayOptions

    settings = settings_or_exit(replay_transactional=transactional)
    try:
        perturbation = Drift.parse(drift) if drift is not None else None
    except ReplayError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    options = ReplayOptions(
        data=data, pace=Pace(rate=rate, speed=speed), limit=limit, start=start, loop=loop, drift=perturbation
    )
    with GracefulStop() as stop, replay_progress() as progress:
        task = progress.add_task("replaying", total=None, rate=0.0, delivered=0, failed=0)

        def show(stats: ReplayStats) -> None:
            progress.update(
                task,
                completed=stats.sent,
                total=stats.total,
                rate=stats.rate,
                delivered=stats.delivered,
                failed=stats.failed,
            )

        replayer = bootstrap(settings, options, stop=stop, progress=show)
        progress.console.print(
            f"Replaying [bold]{replayer.stats.source}[/bold]"
            + (" [yellow](SYNTHETIC data)[/yellow]" if replayer.stats.synthetic else "")
            + f" to [bold]{settings.topic_transactions}[/bold] on {settings.bootstrap_servers}, "
            f"{options.pace.describe()}"
            + (", looping" if loop else "")
            + (f", in transactions ({settings.replay_transaction_id})" if settings.replay_transactional else "")
            + (f", [yellow]drifted: {perturbation.spec}[/yellow]" if perturbation else ""),
            soft_wrap=True,
        )
        try:
            stats = replayer.run()
        except WatchdogGaveUp as exc:  # the transactional sender's Kafka calls stayed stuck
            err_console.print(f"[red]the replay stops[/red]: {exc}", soft_wrap=True)
            exit_process(ExitCode.SCORER_STUCK)
            raise typer.Exit(ExitCode.SCORER_STUCK) from exc
    console.print(_replay_summary(stats, options.pace.describe()))
    if stats.interrupted:
        console.print(f"[yellow]stopped by {stop.signal_name or 'request'}[/yellow] after flushing what was sent")
    if stats.failed or stats.undelivered:
        console.print(f"[red]{stats.failed + stats.undelivered:,} transactions were not delivered[/red]")
        raise typer.Exit(ExitCode.FAILED)


def score(
    group_id: Annotated[
        str | None, typer.Option("--group-id", help="Consumer group (default: FRAUD_SCORER_GROUP_ID).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Most messages per transaction.", min=1)
    ] = None,
    batch_timeout: Annotated[
        float | None, typer.Option("--batch-timeout", help="Longest wait to fill a batch (s).")
    ] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Prometheus port (0: off).", min=0)] = None,
    transactional_id: Annotated[
        str | None,
        typer.Option(
            "--transactional-id", help="Stable transactional.id of this replica (fences a crashed predecessor)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Scorer processes, one replica each (default: FRAUD_SCORER_WORKERS).", min=1),
    ] = None,
) -> None:
    """Score transactions exactly once with the production model: alerts to fraud-alerts, bad messages to the DLQ.

    It rides out broker outages and replaces Kafka clients that cannot go on, in-process; it exits non-zero only
    when Kafka refuses its configuration (1) or when Kafka calls keep getting stuck (3: restart it). With
    --workers N it runs N such scorers as processes (one core each), restarts one that dies, and stops them all on
    Ctrl-C.
    """
    from fraudstream.kafka.watchdog import WatchdogGaveUp, exit_process
    from scorer.bootstrap import run_scorer

    settings = settings_or_exit(
        scorer_group_id=group_id,
        scorer_batch_size=batch_size,
        scorer_batch_timeout_s=batch_timeout,
        scorer_metrics_port=metrics_port,
        scorer_transactional_id=transactional_id,
        scorer_workers=workers,
    )
    if settings.scorer_workers > 1:
        _supervise(settings)
        return
    console.print(
        f"Scoring [bold]{settings.topic_transactions}[/bold] on {settings.bootstrap_servers} "
        f"(group {settings.scorer_group_id}) with [bold]{settings.model_uri}[/bold]; "
        f"alerts to {settings.topic_alerts}, bad messages to {settings.topic_dlq}"
        + (
            f"; metrics and readiness on http://{settings.scorer_metrics_host}:{settings.scorer_metrics_port}"
            "/metrics and /readyz"
            if settings.scorer_metrics_port
            else ""
        ),
        soft_wrap=True,
    )
    try:
        status = run_scorer(settings, on_status=_StatusLine(settings.model_name))
    except WatchdogGaveUp as exc:
        err_console.print(f"[red]the scorer stops[/red]: {exc}", soft_wrap=True)
        exit_process(ExitCode.SCORER_STUCK)
        raise typer.Exit(ExitCode.SCORER_STUCK) from exc
    console.print(
        f"[green]stopped cleanly[/green]: {status.consumed:,} consumed, {status.scored:,} scored, "
        f"{status.alerts:,} alerts, {status.dead_letters:,} to the DLQ in {status.batches:,} committed batches"
        + (f" ({status.aborted} aborted and retried)" if status.aborted else "")
        + (f"; {status.replaced} Kafka clients replaced" if status.replaced else ""),
        soft_wrap=True,
    )
    exit_process(ExitCode.OK)  # only when a stuck Kafka call left a client behind: skip the interpreter's teardown


def _supervise(settings: Settings) -> None:
    """``fraudstream score`` as FRAUD_SCORER_WORKERS processes (fraudstream.workers), until Ctrl-C or SIGTERM."""
    import os
    import sys

    from fraudstream.shutdown import stop_on_signals
    from fraudstream.workers import Supervisor
    from scorer.replicas import worker_environment

    count, port = settings.scorer_workers, settings.scorer_metrics_port
    console.print(
        f"Scoring [bold]{settings.topic_transactions}[/bold] with {count} worker processes (group "
        f"{settings.scorer_group_id})"
        + (f"; worker i serves /metrics and /readyz on port {port} + i" if port else "")
        + "; Ctrl-C stops them all",
        soft_wrap=True,
    )
    with stop_on_signals() as stop:
        supervisor = Supervisor(
            [sys.executable, "-m", "fraudstream", "score"],
            count,
            lambda index: worker_environment(settings, index, os.environ),
            stop=stop,
            fatal=(ExitCode.FAILED, ExitCode.BAD_USAGE),
        )
        code = supervisor.run()
    if code:
        err_console.print(f"[red]the workers stopped[/red]: one exited with {code}")
        raise typer.Exit(code)
    console.print(f"[green]stopped cleanly[/green]: {count} workers")


class _StatusLine:
    """Prints one status line per interval, with the rate since the previous line."""

    def __init__(self, model_name: str) -> None:
        self._model_name = model_name
        self._last = (time.monotonic(), 0)
        self._waiting_said = False

    def __call__(self, status: ScorerStatus) -> None:
        now = time.monotonic()
        if status.waiting_for_model:
            if not self._waiting_said:
                console.print(
                    f"waiting for a production model of {self._model_name!r} (run `fraudstream train`) ...",
                    soft_wrap=True,
                )
                self._waiting_said = True
            return
        then, consumed = self._last
        rate = (status.consumed - consumed) / (now - then) if now > then else 0.0
        self._last = (now, status.consumed)
        console.print(
            f"[dim]{time.strftime('%H:%M:%S')}[/dim] model v{status.model_version} | "
            f"{len(status.partitions)} partitions | consumed {status.consumed:,} | scored {status.scored:,} | "
            f"alerts {status.alerts:,} | DLQ {status.dead_letters:,} | {rate:,.0f} tx/s",
            highlight=False,
            soft_wrap=True,
        )


def replay_progress() -> Progress:
    """The replay's progress bar (also shown by the demo)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:,.0f} tx/s"),
        TextColumn("delivered {task.fields[delivered]:,}  failed {task.fields[failed]:,}"),
        TimeElapsedColumn(),
        console=console,
    )


def _replay_summary(stats: ReplayStats, pace: str) -> Table:
    table = Table(title="Replay summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("data", stats.source + (" (SYNTHETIC)" if stats.synthetic else "")),
        ("pace", pace),
        ("passes", f"{stats.passes:,}"),
        ("sent", f"{stats.sent:,}"),
        ("delivered", f"{stats.delivered:,}"),
        ("failed", f"{stats.failed:,}" + (f" (first: {stats.first_error})" if stats.first_error else "")),
        ("undelivered at exit", f"{stats.undelivered:,}"),
        ("elapsed", f"{stats.seconds:.1f} s"),
        ("rate", f"{stats.rate:,.0f} tx/s"),
    ]
    if stats.transactions or stats.aborted:
        rows.insert(5, ("transactions", f"{stats.transactions:,} committed, {stats.aborted:,} aborted and resent"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def register(app: typer.Typer) -> None:
    """Add `replay` and `score` to the root app."""
    app.command(
        "replay",
        epilog=example(
            "fraudstream replay --limit 2000",
            "fraudstream replay --data data/creditcard.csv --rate 500",
            "fraudstream replay --transactional --rate 500",
            "fraudstream replay --speed 60 --loop",
        ),
    )(replay)
    app.command(
        "score",
        epilog=example(
            "fraudstream score",
            "fraudstream score --group-id fraud-scorer --batch-size 500 --metrics-port 9464",
            "FRAUD_SCORER_TRANSACTIONAL_ID=scorer-0 fraudstream score",
            "fraudstream score --workers 2 --transactional-id scorer",
        ),
    )(score)
