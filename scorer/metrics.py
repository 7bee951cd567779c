"""Prometheus metrics of one scorer instance, in a registry of its own (tests run several in one process)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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
        self._server: Any = None
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

    def alert_latencies(self, event_times: Iterable[datetime], committed_at: datetime) -> None:
        for event_time in event_times:
            self.event_to_alert.observe(max(0.0, (committed_at - event_time).total_seconds()))

    def serving(self, version: str) -> None:
        try:
            self.model_version.set(float(version))
        except ValueError:  # MLflow versions are integers; anything else is shown as -1
            self.model_version.set(-1)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # metrics are scraped from outside
        """Expose /metrics on ``port`` (0: off)."""
        if port == 0:
            return
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        log.info("scorer metrics on http://%s:%d/metrics", addr, port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (for status lines and tests), 0 when absent."""
        found = self.registry.get_sample_value(name, labels or None)
        return float(found) if found is not None else 0.0
