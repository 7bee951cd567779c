"""The monitoring sink: materialise ``fraud-monitoring`` into the alert store's database (``monitoring_windows``).

A second :class:`~api.sink.AlertSink` with its own consumer group, rather than the alert sink subscribed to both
topics: the two streams differ by orders of magnitude in volume (one record per version and window against one
per alert), a monitoring record the store refuses must not hold alerts back (nor the reverse), and each has its
own lag and readiness. The loop is the alert sink's, word for word: ``read_committed`` (an aborted scorer
transaction's window is never seen), decode, idempotent upsert, the sink's DLQ with the reason for what cannot be
stored, then commit; a store failure rewinds and retries the batch. Only the three hooks differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from api.sink.alerts import AlertSink, ConsumerFactory, ProducerFactory, SinkObserver, kafka_consumer, kafka_producer
from api.sink.decode import AlertProblem
from api.store.alerts import AlertRepository, utc
from fraudstream.monitoring import MonitoringRecord
from fraudstream.settings import Settings

INVALID_RECORD = "invalid_monitoring_record"
UNSTORABLE_TIME = "unstorable_time"
GROUP_SUFFIX = ".monitoring"
"""The monitoring sink's group (and static instance id) is the alert sink's with this suffix."""


def monitoring_group(settings: Settings) -> tuple[str, str | None]:
    """The consumer group and static instance id of the monitoring sink, derived from the alert sink's."""
    instance = settings.sink_instance_id
    return settings.sink_group_id + GROUP_SUFFIX, (instance + GROUP_SUFFIX) if instance else None


def decode_record(message: Any) -> MonitoringRecord | AlertProblem:
    """The message as a MonitoringRecord, or the problem that sends it to the sink's dead-letter topic."""
    try:
        record = MonitoringRecord.model_validate_json(message.value() or b"")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "message"
        return AlertProblem(INVALID_RECORD, field, f"field {field!r}: {first['msg']}"[:400])
    for name in ("window_start", "window_end"):
        try:
            utc(getattr(record, name))
        except OverflowError:
            return AlertProblem(UNSTORABLE_TIME, name, f"field {name!r} is out of the range of UTC timestamps")
    return record


class MonitoringSink(AlertSink):
    """Consumes monitoring records into ``repository.monitoring``; ``on_stored`` is told when new windows landed
    (the MLflow writer's wake-up)."""

    label = "monitoring sink"
    item = "record"

    def __init__(
        self,
        settings: Settings,
        store: AlertRepository,
        *,
        observer: SinkObserver | None = None,
        consumer_factory: ConsumerFactory = kafka_consumer,
        producer_factory: ProducerFactory = kafka_producer,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        group, instance = monitoring_group(settings)
        super().__init__(
            settings,
            store,
            observer=observer,
            consumer_factory=consumer_factory,
            producer_factory=producer_factory,
            client_id="fraudstream-monitoring-sink",
            topic=settings.topic_monitoring,
            group_id=group,
            instance_id=instance,
        )
        self.on_stored = on_stored
        self._new = 0

    def decode(self, message: Any) -> MonitoringRecord | AlertProblem:
        return decode_record(message)

    def upsert(self, items: Sequence[Any]) -> int:
        stored = self.store.monitoring.upsert_many(items)
        self._new += stored
        return stored

    def after_batch(self) -> None:
        if self._new and self.on_stored is not None:
            self.on_stored()
        self._new = 0
