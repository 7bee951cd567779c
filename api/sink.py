"""The alert sink: materialise the ``fraud-alerts`` topic into the alert store.

Loop: ``consume(num_messages, timeout)`` a batch (``read_committed``: an aborted scorer transaction is never seen),
validate each message with the kernel's Alert schema (an invalid one is logged with its partition and offset,
counted, and skipped, never fatal), upsert the batch, and only *then* commit the consumer's positions. A store
failure commits nothing and rewinds to the batch's first offsets, so it is retried: at-least-once delivery plus
an idempotent upsert stores each alert exactly once, and a restart resumes from the committed offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from api.exceptions import SinkError, StoreError
from api.sink_decode import decode_alert
from api.store import AlertRepository
from fraudstream.kafka.clients import consumer_config
from fraudstream.schemas import Alert
from fraudstream.settings import Settings

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 2.0
MAX_BACKOFF_S = 30.0
ERROR_LOG_INTERVAL_S = 30.0
ConsumerFactory = Callable[[dict[str, Any]], Any]


class StopFlag(Protocol):
    """threading.Event and fraudstream.shutdown.GracefulStop both fit."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


class SinkObserver(Protocol):
    """Told what the sink does (the API's Prometheus metrics implement it)."""

    def stored(self, count: int) -> None: ...

    def invalid(self, count: int) -> None: ...

    def lag(self, value: int) -> None: ...


@dataclass(frozen=True)
class SinkStatus:
    running: bool = False
    assigned: int = 0
    lag: int | None = None
    stored: int = 0
    invalid: int = 0
    batches: int = 0
    last_error: str | None = None
    """The error of the last failed batch while it is being retried; None once a batch succeeds."""
    failed: str | None = None
    """Why the sink stopped for good (a fatal Kafka error); None while it runs."""


def kafka_consumer(config: dict[str, Any]) -> Any:
    from confluent_kafka import Consumer

    return Consumer(config)


class AlertSink:
    """Consumes alerts into an AlertRepository. ``run(stop)`` blocks until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        store: AlertRepository,
        *,
        observer: SinkObserver | None = None,
        consumer_factory: ConsumerFactory = kafka_consumer,
        client_id: str = "fraudstream-alert-sink",
    ) -> None:
        self.topic = settings.topic_alerts
        self.batch_size = settings.sink_batch_size
        self.batch_timeout_s = settings.sink_batch_timeout_s
        self.store = store
        self.observer = observer
        self._config = consumer_config(
            settings.kafka(), group_id=settings.sink_group_id, client_id=client_id, read_committed=True
        )
        self._consumer_factory = consumer_factory
        self._consumer: Any = None
        self._committed: dict[tuple[str, int], int] = {}
        self._status = SinkStatus()
        self._lock = threading.Lock()
        self._next_lag_at = 0.0
        self._error_logged_at: dict[str, float] = {}

    def status(self) -> SinkStatus:
        with self._lock:
            return self._status

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def run(self, stop: StopFlag) -> None:
        """Consume, store, commit until ``stop`` is set; close the consumer (leaving the group) on the way out."""
        self._consumer = self._consumer_factory(self._config)
        self._consumer.subscribe([self.topic])
        self._update(running=True, failed=None)
        log.info("alert sink started", extra={"topic": self.topic, "group": self._config["group.id"]})
        backoff = 0.5
        try:
            while not stop.is_set():
                messages = self._consumer.consume(num_messages=self.batch_size, timeout=self.batch_timeout_s)
                try:
                    self.process(messages)
                except SinkError:
                    raise
                except Exception as exc:  # the store is down, or a bug: keep the batch and try it again later
                    if isinstance(exc, StoreError):
                        log.error("storing alerts failed, retrying in %.1f s: %s", backoff, exc)
                    else:
                        log.exception("processing an alert batch failed, retrying in %.1f s", backoff)
                    self._update(last_error=f"{exc.__class__.__name__}: {exc}")
                    self._rewind(messages)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                if backoff > 0.5:
                    self._update(last_error=None)
                backoff = 0.5
                self._measure_lag()
        except Exception as exc:
            self._update(failed=f"{exc.__class__.__name__}: {exc}")
            raise
        finally:
            self._update(running=False)
            self._consumer.close()
            status = self.status()
            log.info("alert sink stopped", extra={"stored": status.stored, "invalid": status.invalid})

    def process(self, messages: Sequence[Any]) -> int:
        """Validate and store one batch, then commit the positions past it; returns the alerts stored."""
        alerts: list[Alert] = []
        invalid = 0
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_kafka_error(error)
                continue
            alert = decode_alert(message)
            if alert is None:
                invalid += 1
            else:
                alerts.append(alert)
        try:
            stored = self.store.upsert_many(alerts)
        except StoreError as exc:
            if exc.transient:
                raise
            stored, refused = self._store_one_by_one(alerts)
            invalid += refused
        self._commit(messages)
        with self._lock:
            self._status = replace(
                self._status,
                stored=self._status.stored + stored,
                invalid=self._status.invalid + invalid,
                batches=self._status.batches + (1 if messages else 0),
            )
        if self.observer is not None:
            if stored:
                self.observer.stored(stored)
            if invalid:
                self.observer.invalid(invalid)
        return stored

    def _store_one_by_one(self, alerts: Sequence[Alert]) -> tuple[int, int]:
        """After the store refused a batch's data: store each alert alone, setting aside (logged) those refused."""
        stored = refused = 0
        for alert in alerts:
            try:
                stored += self.store.upsert_many([alert])
            except StoreError as exc:
                if exc.transient:
                    raise
                refused += 1
                log.error("the store refused alert %s, skipped: %s", alert.transaction_id, exc)
        return stored, refused

    def _on_kafka_error(self, error: Any) -> None:
        if error.fatal():
            raise SinkError(f"fatal Kafka error: {error}")
        now = time.monotonic()
        if now - self._error_logged_at.get(error.name(), float("-inf")) >= ERROR_LOG_INTERVAL_S:
            self._error_logged_at[error.name()] = now
            log.warning("Kafka error on the alerts topic (retrying): %s", error)

    def _commit(self, messages: Sequence[Any]) -> None:
        """Commit each assigned partition's position (past the messages just stored and any control records)."""
        from confluent_kafka import KafkaException, TopicPartition

        wanted: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is None:
                key = (message.topic(), message.partition())
                wanted[key] = max(wanted.get(key, -1), message.offset() + 1)
        for tp in self._consumer.position(self._consumer.assignment()):
            if tp.offset >= 0:
                key = (tp.topic, tp.partition)
                wanted[key] = max(wanted.get(key, -1), tp.offset)
        changed = {key: offset for key, offset in wanted.items() if self._committed.get(key) != offset}
        if not changed:
            return
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in changed.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. a rebalance: the batch comes again and the upsert absorbs it
            log.warning("committing sink offsets failed (the alerts may be redelivered): %s", exc)
            return
        self._committed.update(changed)

    def _rewind(self, messages: Sequence[Any]) -> None:
        """Seek every partition of a failed batch back to its first message, so the batch is consumed again."""
        from confluent_kafka import KafkaException, TopicPartition

        first: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is None:
                first.setdefault((message.topic(), message.partition()), message.offset())
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:  # revoked meanwhile: its new owner starts from the committed offset
                log.warning("cannot rewind %s[%d] to %d: %s", topic, partition, offset, exc)

    def _measure_lag(self) -> None:
        """Sum of (high watermark - position) over the assigned partitions, every LAG_INTERVAL_S at most."""
        now = time.monotonic()
        if now < self._next_lag_at:
            return
        self._next_lag_at = now + LAG_INTERVAL_S
        from confluent_kafka import KafkaException, TopicPartition

        try:
            assignment = self._consumer.assignment()
            total = 0
            for tp in self._consumer.position(assignment):
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=2.0, cached=False
                )
                offset = tp.offset if tp.offset >= 0 else self._committed_offset(tp.topic, tp.partition, low)
                total += max(0, high - offset)
        except KafkaException as exc:
            log.debug("cannot measure the sink lag: %s", exc)
            return
        self._update(assigned=len(assignment), lag=total if assignment else None)
        if self.observer is not None and assignment:
            self.observer.lag(total)

    def _committed_offset(self, topic: str, partition: int, low: int) -> int:
        from confluent_kafka import TopicPartition

        if (topic, partition) in self._committed:
            return self._committed[(topic, partition)]
        (found,) = self._consumer.committed([TopicPartition(topic, partition)], timeout=2.0)
        return found.offset if found.offset >= 0 else low
