"""The serving model of the API: the kernel's ModelWatcher, polled by a daemon thread, plus its run's metrics.

Registry calls block (MLflow over SQLite or HTTP), so they never run on the event loop: the first check runs in a
worker thread at start-up, later ones in this module's thread every ``model_poll_interval_s``. Requests only read
``current``, a single attribute swapped whole by the watcher, so a request sees one version from start to end.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fraudstream.model.serving import FraudModel
from fraudstream.model.watcher import ModelWatcher

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

TEST_METRIC_PREFIX = "test_"


class RunMetricsSource(Protocol):
    """Where a model's training-run metrics come from (MLflow; tests pass fakes)."""

    def run_metrics(self, run_id: str) -> dict[str, float]: ...


class MlflowRunMetrics:
    """The ``test_*`` metrics of an MLflow run."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def run_metrics(self, run_id: str) -> dict[str, float]:
        metrics = self._client.get_run(run_id).data.metrics
        return {name: float(value) for name, value in sorted(metrics.items()) if name.startswith(TEST_METRIC_PREFIX)}


class ModelListener(Protocol):
    def serving(self, name: str, version: str) -> None: ...


@dataclass(frozen=True)
class ModelDescription:
    name: str
    version: str
    threshold: float
    run_id: str | None
    metrics: dict[str, float] | None


class ModelService:
    """Keeps the serving model fresh and describes it."""

    def __init__(
        self,
        watcher: ModelWatcher,
        interval_s: float,
        run_metrics: RunMetricsSource | None = None,
        listener: ModelListener | None = None,
    ) -> None:
        self.watcher = watcher
        self.interval_s = interval_s
        self._run_metrics = run_metrics
        self._listener = listener
        self._metrics_cache: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> FraudModel | None:
        return self.watcher.current

    def refresh(self, *, force: bool = True) -> bool:
        """Check the alias now (blocking); True when another version was loaded."""
        changed = self.watcher.poll(force=force)
        model = self.watcher.current
        if changed and model is not None and self._listener is not None:
            self._listener.serving(model.name, model.version)
        return changed

    def start(self) -> None:
        """Start the periodic check (the caller has usually done a first ``refresh`` already)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except Exception:  # never let the watcher thread die: the current model keeps serving
                log.exception("checking the model registry failed; the current model keeps serving")

    def describe(self) -> ModelDescription | None:
        """The serving model and its run's test metrics (fetched once per version); None before any model."""
        model = self.current
        if model is None:
            return None
        return ModelDescription(
            name=model.name,
            version=model.version,
            threshold=model.threshold,
            run_id=model.run_id,
            metrics=self._metrics_of(model),
        )

    def _metrics_of(self, model: FraudModel) -> dict[str, float] | None:
        if model.version in self._metrics_cache:
            return self._metrics_cache[model.version]
        if self._run_metrics is None or model.run_id is None:
            return None
        try:
            metrics = self._run_metrics.run_metrics(model.run_id)
        except Exception as exc:  # MLflow raises many kinds; /model still answers without them
            log.warning("cannot read the metrics of run %s: %s", model.run_id, exc)
            return None
        self._metrics_cache[model.version] = metrics
        return metrics
