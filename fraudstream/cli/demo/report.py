"""The demo's closing summary: what was sent, what was flagged, how well and how fast, and where to go next."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fraudstream.cli.demo.observe import SeenAlert
from fraudstream.monitoring import MonitoringRecord
from fraudstream.schemas import SEED_EXAMPLE
from fraudstream.settings import Settings


@dataclass(frozen=True)
class MonitoringLine:
    """One version's monitoring windows of the replay: live metrics pooled over them, the newest status."""

    model_version: str
    role: str
    windows: int
    scored: int
    precision: float | None
    recall: float | None
    f1: float | None
    max_feature_psi: float
    worst_feature: str | None
    status: str


def monitoring_lines(records: Sequence[MonitoringRecord], model_name: str, since: datetime) -> list[MonitoringLine]:
    """The monitoring records of ``model_name`` whose window ended after ``since``, one line per version."""
    from fraudstream.kafka.monitoring_feed import LatestWindows

    latest = LatestWindows()
    for record in records:
        if record.model_name == model_name and record.window_end >= since:
            latest.add(record)
    lines = []
    for seen in latest.newest_first():
        worst = max(seen.latest.feature_psi, key=seen.latest.feature_psi.__getitem__, default=None)
        lines.append(
            MonitoringLine(
                model_version=seen.latest.model_version,
                role=seen.latest.role,
                windows=seen.windows,
                scored=seen.scored,
                precision=seen.confusion.precision,
                recall=seen.confusion.recall,
                f1=seen.confusion.f1,
                max_feature_psi=seen.latest.max_feature_psi,
                worst_feature=worst,
                status=seen.latest.status,
            )
        )
    return lines


@dataclass(frozen=True)
class DemoSummary:
    data: str
    synthetic: bool
    first_row: int
    transactions_sent: int
    transactions_delivered: int
    frauds_sent: int
    alerts: int
    alerts_stored: int
    true_positives: int
    false_positives: int
    missed_frauds: int
    precision: float | None
    recall: float | None
    seconds: float
    throughput_tps: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    model_name: str
    model_versions: list[str]
    test_f1: float
    monitoring: list[MonitoringLine] = field(default_factory=list)
    """Per model version, its windows of this replay on fraud-monitoring; empty when none was committed."""

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))


def summarise(
    *,
    data: str,
    synthetic: bool,
    first_row: int,
    sent: int,
    delivered: int,
    replayed_ids: set[str],
    frauds_sent: int,
    seen: list[SeenAlert],
    alerts_stored: int,
    seconds: float,
    model_name: str,
    test_f1: float,
    monitoring: Sequence[MonitoringLine] = (),
) -> DemoSummary:
    """Live quality against the replayed labels, from the alerts a subscriber actually received."""
    ours = {item.alert.transaction_id: item for item in seen if item.alert.transaction_id in replayed_ids}
    alerts = list(ours.values())
    tp = sum(1 for item in alerts if item.alert.label == 1)
    fp = len(alerts) - tp
    latencies = np.array([item.latency_s for item in alerts]) * 1000
    return DemoSummary(
        data=data,
        synthetic=synthetic,
        first_row=first_row,
        transactions_sent=sent,
        transactions_delivered=delivered,
        frauds_sent=frauds_sent,
        alerts=len(alerts),
        alerts_stored=alerts_stored,
        true_positives=tp,
        false_positives=fp,
        missed_frauds=frauds_sent - tp,
        precision=tp / len(alerts) if alerts else None,
        recall=tp / frauds_sent if frauds_sent else None,
        seconds=seconds,
        throughput_tps=delivered / seconds if seconds > 0 else 0.0,
        latency_p50_ms=float(np.percentile(latencies, 50)) if len(latencies) else None,
        latency_p99_ms=float(np.percentile(latencies, 99)) if len(latencies) else None,
        model_name=model_name,
        model_versions=sorted({item.alert.model_version for item in alerts}, key=int),
        test_f1=test_f1,
        monitoring=list(monitoring),
    )


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render(console: Console, summary: DemoSummary, settings: Settings) -> None:
    table = Table(title="fraudstream demo: summary", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    kind = "SYNTHETIC data" if summary.synthetic else "real data"
    latency = (
        f"p50 {summary.latency_p50_ms:,.0f} ms, p99 {summary.latency_p99_ms:,.0f} ms over {summary.alerts} alerts"
        if summary.latency_p50_ms is not None
        else "n/a (no alerts)"
    )
    rows = [
        ("data", f"{escape(summary.data)} ({kind}), rows from {summary.first_row:,}: held out, never trained on"),
        (
            "transactions sent",
            f"{summary.transactions_sent:,} ({summary.transactions_delivered:,} delivered), "
            f"{summary.frauds_sent} frauds among them",
        ),
        ("alerts", f"{summary.alerts:,} on {settings.topic_alerts} ({summary.alerts_stored:,} in the API's store)"),
        (
            "live precision / recall",
            f"{_ratio(summary.precision)} / {_ratio(summary.recall)}  "
            f"(tp {summary.true_positives}, fp {summary.false_positives}, "
            f"missed {summary.missed_frauds})",
        ),
        ("offline test F1", f"{summary.test_f1:.4f} (the trainer's test split)"),
        ("throughput", f"{summary.throughput_tps:,.0f} tx/s end to end over {summary.seconds:.1f} s"),
        ("event → alert latency", latency),
        ("model", f"{summary.model_name} v{', v'.join(summary.model_versions) or '?'}"),
    ]
    for line in summary.monitoring:
        worst = f" ({line.worst_feature})" if line.worst_feature else ""
        rows.append(
            (
                f"monitoring v{line.model_version}",
                f"{line.role}: live precision / recall / F1 {_ratio(line.precision)} / {_ratio(line.recall)} / "
                f"{_ratio(line.f1)} over {line.windows} window(s) ({line.scored:,} scored), "
                f"max feature PSI {line.max_feature_psi:.3f}{worst}, status {line.status}",
            )
        )
    if not summary.monitoring:
        rows.append(
            (
                "monitoring",
                f"no monitoring record arrived on {settings.topic_monitoring} (a window closes after "
                f"{settings.monitor_window_rows:,} transactions or {settings.monitor_window_s:g} s)",
            )
        )
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def example_transaction(settings: Settings) -> Path:
    """The seed's example transaction as a JSON file, for the curl line below."""
    path = (settings.state_dir / "demo" / "transaction.json").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SEED_EXAMPLE, indent=2))
    return path


def where_next(console: Console, settings: Settings, *, running: bool) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    mlflow_ui = f"mlflow ui --backend-store-uri {settings.tracking_uri} --port 5000"
    if settings.artifact_location:
        mlflow_ui += f" --default-artifact-root {settings.artifact_location}"
    bootstrap = settings.bootstrap_servers
    example = example_transaction(settings)
    lines = [
        f"alert console   {api}/console/" + ("" if running else "   (run with --keep-running, or `fraudstream serve`)"),
        f"API docs        {api}/docs",
        f"predict         curl -s {api}/predict -H 'content-type: application/json' -d @{example}",
        f"MLflow UI       {mlflow_ui}",
        f"topics          {settings.topic_transactions}, {settings.topic_alerts}, {settings.topic_dlq} on {bootstrap}",
        "subscribe       fraudstream alerts tail --from-beginning",
        f"  or with kcat  kcat -b {bootstrap} -t {settings.topic_alerts} -C -X isolation.level=read_committed",
        "train again     fraudstream train --help",
    ]
    console.print("[bold]Where next[/bold]")
    for line in lines:
        console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
