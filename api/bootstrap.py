"""``bootstrap(settings)``: build and wire the API's parts (model, store, sink, metrics); tests swap any of them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from api.feedback import FeedbackPublisher
from api.metrics import ApiMetrics
from api.model_service import MlflowRunMetrics, ModelService, RunMetricsSource
from api.sink.alerts import AlertSink, ConsumerFactory, ProducerFactory, kafka_consumer, kafka_producer
from api.sink.mlflow_writer import MonitoringMlflowWriter
from api.sink.monitoring import MonitoringSink
from api.sink.thread import SinkThread
from api.store.alerts import AlertRepository
from fraudstream.model.watcher import ModelWatcher, VersionSource
from fraudstream.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ApiServices:
    """Everything the routes use, reachable as ``app.state.services``."""

    settings: Settings
    models: ModelService
    store: AlertRepository
    metrics: ApiMetrics
    sink: SinkThread | None
    api_key: bytes | None
    feedback: FeedbackPublisher | None = None
    monitoring_sink: SinkThread | None = None
    mlflow_writer: MonitoringMlflowWriter | None = None

    async def start(self) -> None:
        """Create the store's tables, load the serving model (if any), then start the watcher, the sink and the
        verdicts' publisher."""
        await asyncio.to_thread(self.store.create_schema)
        await asyncio.to_thread(self.models.refresh)
        model = self.models.current  # the refresh told the metrics which version serves
        if model is None:
            log.warning("no production model yet: /predict answers 503 until `fraudstream train` promotes one")
        else:
            log.info("serving model", extra={"model": model.name, "version": model.version})
        self.models.start()
        if self.sink is not None:
            self.sink.start()
        if self.monitoring_sink is not None:
            self.monitoring_sink.start()
        if self.mlflow_writer is not None:
            self.mlflow_writer.start()
        if self.feedback is not None:
            self.feedback.start()

    async def stop(self) -> None:
        self.models.stop()
        if self.sink is not None:
            await asyncio.to_thread(self.sink.stop)
        if self.monitoring_sink is not None:
            await asyncio.to_thread(self.monitoring_sink.stop)
        if self.mlflow_writer is not None:
            await asyncio.to_thread(self.mlflow_writer.stop)
        if self.feedback is not None:
            await asyncio.to_thread(self.feedback.stop)
        await asyncio.to_thread(self.store.engine.dispose)


def bootstrap(
    settings: Settings,
    *,
    registry: VersionSource | None = None,
    watcher: ModelWatcher | None = None,
    store: AlertRepository | None = None,
    run_sink: bool | None = None,
    run_metrics: RunMetricsSource | None = None,
    consumer_factory: ConsumerFactory | None = None,
    feedback: FeedbackPublisher | None = None,
    run_feedback: bool = True,
    producer_factory: ProducerFactory | None = None,
    mlflow_writer: MonitoringMlflowWriter | None = None,
    run_monitoring_sink: bool | None = None,
    monitoring_consumer_factory: ConsumerFactory | None = None,
) -> ApiServices:
    """Wire the API for ``settings``. Unset parts are the real ones: the MLflow registry named in the settings,
        the store at ``settings.alert_store``, the in-process sink when ``settings.api_run_sink``, and the publisher of
        verdicts to fraud-feedback (unless ``run_feedback`` is False). The monitoring sink runs beside the alert sink,
    and the MLflow writer of the monitoring windows when ``settings.monitor_to_mlflow``."""
    metrics = ApiMetrics()
    if watcher is None:
        if registry is None:
            from fraudstream.model.registry import ModelRegistry

            real = ModelRegistry(settings)
            registry = real
            run_metrics = run_metrics or MlflowRunMetrics(real.client)
        watcher = ModelWatcher(registry, settings.model_poll_interval_s)
    models = ModelService(watcher, settings.model_poll_interval_s, run_metrics, listener=metrics)
    store = store or AlertRepository.from_url(settings.alert_store)
    sink = monitoring = None
    writer = mlflow_writer
    if writer is None and settings.monitor_to_mlflow:
        writer = MonitoringMlflowWriter(settings, store)
    in_process = settings.api_run_sink if run_sink is None else run_sink
    if in_process:
        alert_sink = AlertSink(
            settings,
            store,
            observer=metrics,
            consumer_factory=consumer_factory or kafka_consumer,
            producer_factory=producer_factory or kafka_producer,
        )
        sink = SinkThread(alert_sink)
    if in_process if run_monitoring_sink is None else run_monitoring_sink:
        monitoring_sink = MonitoringSink(
            settings,
            store,
            consumer_factory=monitoring_consumer_factory or kafka_consumer,
            producer_factory=producer_factory or kafka_producer,
            on_stored=writer.wake if writer is not None else None,
        )
        monitoring = SinkThread(monitoring_sink, name="monitoring-sink")
    key = settings.api_key.get_secret_value().encode("utf-8") if settings.api_key else None
    publisher = feedback
    if publisher is None and run_feedback:
        publisher = FeedbackPublisher(settings, store.feedback)
    return ApiServices(
        settings=settings,
        models=models,
        store=store,
        metrics=metrics,
        sink=sink,
        api_key=key,
        feedback=publisher,
        monitoring_sink=monitoring,
        mlflow_writer=writer,
    )
