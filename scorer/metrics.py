"""Prometheus metrics of one scorer instance, in a registry of its own (tests run several in one process), and
the scorer's small HTTP endpoint: ``/metrics``, ``/readyz`` (200 or 503 with the problems) and ``/healthz``."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fraudstream.kafka.health import HealthReport

if TYPE_CHECKING:
    from fraudstream.monitoring import MonitoringRecord

log = logging.getLogger(__name__)

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class ScorerMetrics:
    """Counters, histograms and the serving model's version, plus the optional HTTP endpoint."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.consumed = Counter("fraudstream_scorer_consumed", "Messages consumed (valid or not).", registry=r)
        self.scored = Counter("fraudstream_scorer_scored", "Transactions scored by the model.", registry=r)
        self.alerts = Counter("fraudstream_scorer_alerts", "Alerts committed to fraud-alerts.", registry=r)
        self.dlq = Counter(
            "fraudstream_scorer_dlq", "Messages committed to the DLQ, by kind of problem.", ["kind"], registry=r
        )
        self.aborts = Counter("fraudstream_scorer_aborted_batches", "Transactions aborted and rewound.", registry=r)
        self.rebalances = Counter(
            "fraudstream_scorer_rebalances", "Partition changes, by event.", ["event"], registry=r
        )
        self.batch_seconds = Histogram(
            "fraudstream_scorer_batch_seconds",
            "Time from a batch's arrival to its committed transaction.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "fraudstream_scorer_batch_messages",
            "Messages per batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
            registry=r,
        )
        self.event_to_alert = Histogram(
            "fraudstream_scorer_event_to_alert_seconds",
            "Time from a transaction's event_time to its alert's commit.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            "fraudstream_scorer_model_version", "Version of the model now scoring (0: none yet).", registry=r
        )
        self.partitions = Gauge(
            "fraudstream_scorer_partitions", "Partitions of the transactions topic this scorer holds.", registry=r
        )
        self.broker_reachable = Gauge(
            "fraudstream_scorer_broker_reachable",
            "1 while the scorer reaches the broker, 0 during an outage.",
            registry=r,
        )
        self.lag = Gauge(
            "fraudstream_scorer_lag",
            "Transactions behind the last stable offsets of its partitions (-1: cannot be measured).",
            registry=r,
        )
        self.ready = Gauge("fraudstream_scorer_ready", "1 when /readyz answers 200, else 0.", registry=r)
        self.replaced = Counter(
            "fraudstream_scorer_replaced_clients",
            "Kafka clients replaced in-process after they could not go on (fatal, fenced, stuck), by client.",
            ["client"],
            registry=r,
        )
        self.abandoned_calls = Counter(
            "fraudstream_scorer_abandoned_calls", "Blocking Kafka calls the watchdog gave up on.", registry=r
        )
        self.dlq_fallbacks = Counter(
            "fraudstream_scorer_dlq_fallbacks",
            "Records written in a smaller form to fit Kafka (cut_to_fit, alert_to_dlq, minimal) or left out "
            "(left_out), per attempt.",
            ["how"],
            registry=r,
        )
        self._monitoring_gauges()
        self.lag.set(-1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def committed(self, *, consumed: int, scored: int, alerts: int, dlq_kinds: Iterable[str], seconds: float) -> None:
        """Count one committed batch (only committed work is counted, so an aborted batch counts once)."""
        self.consumed.inc(consumed)
        self.scored.inc(scored)
        self.alerts.inc(alerts)
        for kind in dlq_kinds:
            self.dlq.labels(kind=kind).inc()
        self.batch_seconds.observe(seconds)
        self.batch_size.observe(consumed)

    # ---- BEGIN monitoring (h-mon-s): the last window of each model, by version and role ------------------------
    def _monitoring_gauges(self) -> None:
        r, labels = self.registry, ["version", "role"]
        self.feature_psi = Gauge(
            "fraudstream_scorer_feature_psi",
            "PSI of a feature in the last monitoring window, against the version's training rows.",
            ["feature", *labels],
            registry=r,
        )
        self.score_psi = Gauge(
            "fraudstream_scorer_score_psi",
            "PSI of the score in the last window, against the holdout.",
            labels,
            registry=r,
        )
        self.max_feature_psi = Gauge(
            "fraudstream_scorer_max_feature_psi", "Largest feature PSI of the last window.", labels, registry=r
        )
        self.live_precision = Gauge(
            "fraudstream_scorer_live_precision",
            "Precision on the labelled rows of the last window (NaN: none flagged).",
            labels,
            registry=r,
        )
        self.live_recall = Gauge(
            "fraudstream_scorer_live_recall",
            "Recall on the labelled rows of the last window (NaN: no fraud).",
            labels,
            registry=r,
        )
        self.live_f1 = Gauge(
            "fraudstream_scorer_live_f1",
            "F1 on the labelled rows of the last window (NaN: undefined).",
            labels,
            registry=r,
        )
        self.monitoring_status = Gauge(
            "fraudstream_scorer_monitoring_status",
            "1 for the status of the last window (ok, drift, degraded), 0 for the others.",
            [*labels, "status"],
            registry=r,
        )
        self.monitoring_windows = Counter(
            "fraudstream_scorer_monitoring_windows",
            "Monitoring windows published, by role and status.",
            ["role", "status"],
            registry=r,
        )
        self._monitored: dict[str, str] = {}

    def monitored(self, record: MonitoringRecord) -> None:
        """Set the gauges from a committed window's record (a role's previous version is dropped)."""
        version, role = record.model_version, record.role
        previous = self._monitored.get(role)
        if previous is not None and previous != version:
            self._forget(previous, role)
        self._monitored[role] = version
        for feature, value in record.feature_psi.items():
            self.feature_psi.labels(feature=feature, version=version, role=role).set(value)
        if record.profiled:
            self.score_psi.labels(version=version, role=role).set(record.score_psi)
            self.max_feature_psi.labels(version=version, role=role).set(record.max_feature_psi)
        for gauge, value in (
            (self.live_precision, record.precision),
            (self.live_recall, record.recall),
            (self.live_f1, record.f1),
        ):
            gauge.labels(version=version, role=role).set(float("nan") if value is None else value)
        for status in ("ok", "drift", "degraded"):
            self.monitoring_status.labels(version=version, role=role, status=status).set(int(status == record.status))
        self.monitoring_windows.labels(role=role, status=record.status).inc()

    def _forget(self, version: str, role: str) -> None:
        for gauge in (self.score_psi, self.max_feature_psi, self.live_precision, self.live_recall, self.live_f1):
            with contextlib.suppress(KeyError):
                gauge.remove(version, role)
        for status in ("ok", "drift", "degraded"):
            with contextlib.suppress(KeyError):
                self.monitoring_status.remove(version, role, status)
        for labels in [key for key in self.feature_psi._metrics if key[1:] == (version, role)]:
            self.feature_psi.remove(*labels)

    # ---- END monitoring ---------------------------------------------------------------------------------------

    def alert_latencies(self, event_times: Iterable[datetime], committed_at: datetime) -> None:
        for event_time in event_times:
            self.event_to_alert.observe(max(0.0, (committed_at - event_time).total_seconds()))

    def serving(self, version: str) -> None:
        try:
            self.model_version.set(float(version))
        except ValueError:  # MLflow versions are integers; anything else is shown as -1
            self.model_version.set(-1)

    def readiness(self, report: HealthReport) -> None:
        """Set the readiness gauges from a report (the loop calls it once a second)."""
        self.partitions.set(report.partitions)
        self.broker_reachable.set(1 if report.unreachable_since is None else 0)
        self.lag.set(-1 if report.lag is None else report.lag)
        self.ready.set(1 if report.ready else 0)

    def serve(self, port: int, host: str = "127.0.0.1", readiness: Callable[[], HealthReport] | None = None) -> None:
        """Expose /metrics, /readyz and /healthz on ``host:port`` (port 0: off)."""
        if port == 0:
            return
        handler = type("ScorerHandler", (_Handler,), {"registry": self.registry, "readiness": staticmethod(readiness)})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="scorer-metrics", daemon=True)
        self._thread.start()
        log.info("scorer metrics on http://%s:%d/metrics (readiness: /readyz)", host, port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (for status lines and tests), 0 when absent."""
        found = self.registry.get_sample_value(name, labels or None)
        return float(found) if found is not None else 0.0


class _Handler(BaseHTTPRequestHandler):
    """GET /metrics (Prometheus), /readyz (200 ready, 503 not, JSON with the problems), /healthz."""

    registry: CollectorRegistry
    readiness: Callable[[], HealthReport] | None

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        elif path == "/readyz":
            report = self.readiness() if self.readiness is not None else None
            if report is None:
                self._json(200, {"status": "ready", "problems": []})
                return
            body = {
                "status": "ready" if report.ready else "not ready",
                "partitions": report.partitions,
                "lag": report.lag,
                "unreachable_since": report.unreachable_since.isoformat() if report.unreachable_since else None,
                "problems": report.problems,
            }
            self._json(200 if report.ready else 503, body)
        elif path == "/healthz":
            self._json(200, {"status": "alive"})
        else:
            self._json(404, {"detail": f"no route {path}: try /metrics, /readyz or /healthz"})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("scorer http: " + format, *args)
