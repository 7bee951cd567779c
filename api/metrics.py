"""Prometheus metrics of one API app, in a CollectorRegistry of its own (two apps in a process never collide).

The latency middleware is plain ASGI (no BaseHTTPMiddleware task hop) and labels by the route's path template,
never the raw path, so ``/alerts/{transaction_id}`` stays one series however many ids are asked for.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED_ROUTE = "<unmatched>"


class ApiMetrics:
    """Request latency, predictions, stored alerts and the serving model. Also the sink's observer."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.request_seconds = Histogram(
            "fraudstream_api_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status code.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "fraudstream_api_predictions",
            "Transactions scored by /predict and /predict/batch, by outcome (fraud, legit, no_model).",
            ["outcome"],
            registry=self.registry,
        )
        self.alerts_stored = Counter(
            "fraudstream_api_alerts_stored", "Alerts written to the store by the sink.", registry=self.registry
        )
        self.alerts_invalid = Counter(
            "fraudstream_api_alerts_invalid",
            "Messages on the alerts topic the store cannot hold (sent to the sink's dead-letter topic).",
            registry=self.registry,
        )
        self.sink_lag = Gauge(
            "fraudstream_api_sink_lag", "Alerts on the topic not yet stored by the sink.", registry=self.registry
        )
        self.model_info = Gauge(
            "fraudstream_api_model_info", "The serving model (value 1).", ["name", "version"], registry=self.registry
        )
        self.verdicts = Counter(
            "fraudstream_api_verdicts", "Analysts' verdicts stored, by verdict.", ["verdict"], registry=self.registry
        )
        self._fraud = self.predictions.labels(outcome="fraud")
        self._legit = self.predictions.labels(outcome="legit")
        self._no_model = self.predictions.labels(outcome="no_model")

    # ---- predictions ----------------------------------------------------------------------------------------
    def predicted(self, frauds: int, total: int) -> None:
        if frauds:
            self._fraud.inc(frauds)
        if total - frauds:
            self._legit.inc(total - frauds)

    def unavailable(self, total: int = 1) -> None:
        self._no_model.inc(total)

    def serving(self, name: str, version: str) -> None:
        """Point the model info series at the version now serving."""
        self.model_info.clear()
        self.model_info.labels(name=name, version=version).set(1)

    def verdict(self, verdict: str) -> None:
        self.verdicts.labels(verdict=verdict).inc()

    # ---- the sink's observer --------------------------------------------------------------------------------
    def stored(self, count: int) -> None:
        self.alerts_stored.inc(count)

    def invalid(self, count: int) -> None:
        self.alerts_invalid.inc(count)

    def lag(self, value: int) -> None:
        self.sink_lag.set(value)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class LatencyMiddleware:
    """Observe every HTTP request's duration under its route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.histogram = metrics.request_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or UNMATCHED_ROUTE  # "/alerts/{transaction_id}"
            self.histogram.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)
