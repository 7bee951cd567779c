"""The one writer of the serving versions' live metrics to MLflow: the stored monitoring windows, as metrics of the
training run of the version they measured.

Per window, on the run of ``model_name`` version ``model_version`` (its ``run_id`` in the registry): ``live_f1``,
``live_precision``, ``live_recall`` (when the window had labelled rows that define them), ``score_psi`` and
``max_feature_psi``, each with ``step`` = the version's window number (1, 2, ...) and the window's end as the
timestamp, so ``mlflow ui`` draws the live curve beside the run's offline ``test_*`` metrics.

Exactly one writer, and never a window twice:

* the windows come from the store (api/store/monitoring.py), whose rows not yet marked logged are the outbox;
  the scorer replicas never write to MLflow;
* API replicas sharing a store take turns through a lease in it (the fraud-feedback publisher's mechanism);
* a restart between MLflow taking a window and the store marking it finds the step already on the run (its
  ``score_psi`` history, read once per run and round) and only marks it.

It runs in its own thread so a slow or absent MLflow never holds the monitoring sink back; it retries with a
back-off, and a version the registry does not know is marked with that note rather than retried forever.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from api.store.alerts import AlertRepository
from api.store.monitoring import StoredWindow
from fraudstream.settings import Settings

log = logging.getLogger(__name__)

LEASE = "fraud-monitoring-mlflow-writer"
METRICS = ("live_f1", "live_precision", "live_recall", "score_psi", "max_feature_psi")
INTERVAL_S = 5.0
MAX_BACKOFF_S = 60.0
ClientFactory = Callable[[], Any]


def window_metrics(window: StoredWindow) -> dict[str, float]:
    """The MLflow metrics of one window (the live ones only where the window defines them)."""
    record = window.record
    values = {
        "live_f1": record.f1,
        "live_precision": record.precision,
        "live_recall": record.recall,
        "score_psi": record.score_psi,
        "max_feature_psi": record.max_feature_psi,
    }
    return {key: float(value) for key, value in values.items() if value is not None}


class MonitoringMlflowWriter:
    """Logs the store's pending monitoring windows to MLflow in a daemon thread; ``wake()`` after new windows."""

    def __init__(
        self,
        settings: Settings,
        store: AlertRepository,
        *,
        client_factory: ClientFactory | None = None,
        interval_s: float = INTERVAL_S,
        lease_ttl_s: float = 30.0,
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.lease_ttl_s = lease_ttl_s
        self.holder = f"mlflow-writer-{uuid.uuid4().hex[:12]}"
        self._client_factory = client_factory or (lambda: _mlflow_client(settings))
        self._client: Any = None
        self._runs: dict[tuple[str, str], str | None] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.logged = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="monitoring-mlflow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.store.feedback.release_lease(LEASE, self.holder)
        except Exception as exc:  # the lease expires by itself
            log.info("cannot release the MLflow writer's lease: %s", exc)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        backoff = self.interval_s
        while not self._stop.is_set():
            try:
                self.run_round()
                self.last_error, backoff = None, self.interval_s
            except Exception as exc:  # MLflow or the store away: the windows stay pending
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("logging monitoring windows to MLflow failed, retrying in %.0f s: %s", backoff, exc)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            self._wake.wait(backoff)
            self._wake.clear()

    def run_round(self) -> int:
        """Log every pending window (if this writer holds the lease); returns how many reached MLflow."""
        if not self.store.feedback.acquire_lease(LEASE, self.holder, self.lease_ttl_s):
            return 0
        pending = self.store.monitoring.pending_mlflow()
        if not pending:
            return 0
        if self._client is None:
            self._client = self._client_factory()
        logged = 0
        by_run: dict[str, list[StoredWindow]] = {}
        marks: list[tuple[int, str | None]] = []
        for window in pending:
            run_id = self._run_of(window.record.model_name, window.record.model_version)
            if run_id is None:
                marks.append((window.seq, "the registry has no run for this version"))
            else:
                by_run.setdefault(run_id, []).append(window)
        for run_id, windows in by_run.items():
            logged += self._log_run(run_id, windows)
            marks += [(window.seq, None) for window in windows]
        self.store.monitoring.mark_mlflow(marks)
        self.logged += logged
        return logged

    def _log_run(self, run_id: str, windows: list[StoredWindow]) -> int:
        from mlflow.entities import Metric

        present = {metric.step for metric in self._client.get_metric_history(run_id, "score_psi")}
        metrics = [
            Metric(key, value, int(window.record.window_end.timestamp() * 1000), window.window)
            for window in windows
            if window.window not in present
            for key, value in window_metrics(window).items()
        ]
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 metrics per batch
            self._client.log_batch(run_id, metrics=metrics[start : start + 900])
        return sum(1 for window in windows if window.window not in present)

    def _run_of(self, name: str, version: str) -> str | None:
        from mlflow.exceptions import MlflowException

        key = (name, version)
        if key not in self._runs:
            try:
                self._runs[key] = self._client.get_model_version(name, version).run_id or None
            except MlflowException as exc:
                if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                    raise
                log.warning("monitoring windows of %s v%s: no such version in the registry", name, version)
                self._runs[key] = None
        return self._runs[key]


def _mlflow_client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    from fraudstream.model.registry import quiet_mlflow_logs

    quiet_mlflow_logs()
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
