"""The alert sink: materialise the ``fraud-alerts`` topic into the alert store.

Loop: ``consume(num_messages, timeout)`` a batch (``read_committed``: an aborted scorer transaction is never seen),
validate each message with the kernel's Alert schema, upsert the valid ones, send what the store cannot hold (an
invalid alert, a time beyond UTC's range, a row the store refuses) to the sink's dead-letter topic
(``FRAUD_TOPIC_SINK_DLQ``) with the reason in a header, and only *then* commit the consumer's positions. A store
failure, or a dead letter Kafka did not take, commits nothing and rewinds to the batch's first offsets, so it is
retried: at-least-once delivery plus an idempotent upsert stores each alert exactly once (after such a retry a
dead letter may be written twice), and a restart resumes from the committed offsets.

Availability: a broker outage is ridden out and logged in a bounded number of lines (the kernel's
:class:`~fraudstream.kafka.outage.OutageLog`); a consumer that cannot go on (a fatal error, e.g. fenced as a static
member, or a call that got stuck) is replaced in-process and rejoins the group; batch commits are asynchronous,
and every call that could block (the dead letters' flush, the final commit, close) runs under the kernel's
watchdog. :meth:`AlertSink.status` gives readiness the facts: the partitions held, whether the broker answers,
and the measured lag (or why it cannot be measured).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from api.exceptions import StoreError
from api.sink.decode import STORE_REFUSED, AlertProblem, decode_alert
from api.store.alerts import AlertRepository
from fraudstream.kafka import dead_letter as dlq
from fraudstream.kafka.clients import PRODUCER_MESSAGE_MAX_BYTES, consumer_config, producer_config
from fraudstream.kafka.errors import describe, kafka_error, means_unreachable, refuses_record
from fraudstream.kafka.health import ConsumerHealth
from fraudstream.kafka.outage import ClientEvents, OutageLog
from fraudstream.kafka.produce import produce
from fraudstream.kafka.records import OutRecord, Source
from fraudstream.kafka.topics import BROKER_MAX_MESSAGE_BYTES
from fraudstream.kafka.watchdog import CallAbandoned, Watchdog
from fraudstream.settings import Settings
from fraudstream.shutdown import Stop

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
CALL_TIMEOUT_S = 5.0
"""Longest a commit, a dead-letter flush or a close may block before it is abandoned."""
ConsumerFactory = Callable[[dict[str, Any]], Any]
ProducerFactory = Callable[[dict[str, Any]], Any]


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
    """Messages the store could not hold (each sent to the sink's dead-letter topic)."""
    dead_lettered: int = 0
    batches: int = 0
    replaced: int = 0
    """Consumers replaced in-process after they could not go on."""
    last_error: str | None = None
    """The error of the last failed batch while it is being retried; None once a batch succeeds."""
    failed: str | None = None
    """Why the sink stopped (a bug: Kafka errors never stop it); None while it runs."""
    problems: tuple[str, ...] = ()
    """What keeps it from being ready: no partitions, broker unreachable, lag not measurable."""


class _ConsumerUnusableError(Exception):
    """The consumer cannot go on: replace it."""


class _UndeliveredError(Exception):
    """Dead letters of the batch were not delivered: the batch is retried, uncommitted."""


def kafka_consumer(config: dict[str, Any]) -> Any:
    from confluent_kafka import Consumer

    return Consumer(config)


def kafka_producer(config: dict[str, Any]) -> Any:
    from confluent_kafka import Producer

    return Producer(config)


class AlertSink:
    """Consumes alerts into an AlertRepository. ``run(stop)`` blocks until ``stop`` is set.

    The loop knows nothing of alerts beyond three hooks a sink of another topic overrides (api/sink/monitoring.py):
    :meth:`decode` (a message to an item, or the problem that dead-letters it), :meth:`upsert` (store items,
    idempotently) and :meth:`after_batch` (work once a batch is stored and committed).
    """

    label = "alert sink"
    item = "alert"

    def __init__(
        self,
        settings: Settings,
        store: AlertRepository,
        *,
        observer: SinkObserver | None = None,
        consumer_factory: ConsumerFactory = kafka_consumer,
        producer_factory: ProducerFactory = kafka_producer,
        client_id: str = "fraudstream-alert-sink",
        topic: str | None = None,
        group_id: str | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.topic = topic or settings.topic_alerts
        self.dlq_topic = settings.topic_sink_dlq
        self.batch_size = settings.sink_batch_size
        self.batch_timeout_s = settings.sink_batch_timeout_s
        self.store = store
        self.observer = observer
        self.outage = OutageLog(self.label)
        self._events = ClientEvents(self.outage)
        self.health = ConsumerHealth(self.outage, self.topic)
        self._config = consumer_config(
            settings.kafka(),
            group_id=group_id or settings.sink_group_id,
            client_id=client_id,
            read_committed=True,
            group_instance_id=instance_id if group_id else settings.sink_instance_id,
            session_timeout_ms=settings.sink_session_timeout_ms,
            events=self._events,
            stats=self.health.on_stats,
            on_commit=self._on_commit,
        )
        self._producer_events = ClientEvents(self.outage)
        self._producer_config = producer_config(
            settings.kafka(), client_id=f"{client_id}-dlq", events=self._producer_events
        )
        self._dlq_limit = dlq.dead_letter_limit(PRODUCER_MESSAGE_MAX_BYTES, BROKER_MAX_MESSAGE_BYTES)
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._consumer: Any = None
        self._producer: Any = None
        self._watchdog = Watchdog(
            self.label,
            margin_s=2.0,
            on_slow=lambda what, seconds: self.outage.failed(f"{what} has not returned for {seconds:.0f} s"),
        )
        self._committed: dict[tuple[str, int], int] = {}
        self._status = SinkStatus()
        self._lock = threading.Lock()

    def status(self) -> SinkStatus:
        with self._lock:
            status = self._status
        report = self.health.report()
        return replace(status, assigned=report.partitions, lag=report.lag, problems=tuple(report.problems))

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    @property
    def group_id(self) -> str:
        return str(self._config["group.id"])

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, stop: Stop) -> None:
        """Consume, store, commit until ``stop`` is set; close the consumer on the way out (bounded)."""
        self._watchdog.stop = stop
        self._join()
        self._update(running=True, failed=None)
        log.info("%s started", self.label, extra={"topic": self.topic, "group": self._config["group.id"]})
        backoff = 0.5
        try:
            while not stop.is_set():
                messages: list[Any] = []
                try:
                    messages = self._consume()
                    self.process(messages)
                except _ConsumerUnusableError as exc:
                    self._rejoin(str(exc), stop)
                    continue
                except Exception as exc:  # store down, dead letters undelivered, or a bug: retry the batch later
                    self._failed_batch(exc, backoff)
                    self._rewind(messages)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                if backoff > 0.5:
                    self._update(last_error=None)
                backoff = 0.5
                self._measure()
        except Exception as exc:
            self._update(failed=f"{exc.__class__.__name__}: {exc}")
            raise
        finally:
            self._update(running=False)
            self._close_clients()
            status = self.status()
            log.info("%s stopped", self.label, extra={"stored": status.stored, "invalid": status.invalid})

    def _failed_batch(self, exc: Exception, backoff: float) -> None:
        if isinstance(exc, StoreError):
            log.error("%s: storing failed, retrying in %.1f s: %s", self.label, backoff, exc)
        elif isinstance(exc, _UndeliveredError):
            self.outage.failed(str(exc))
        else:
            log.exception("%s: processing a batch failed, retrying in %.1f s", self.label, backoff)
        self._update(last_error=f"{exc.__class__.__name__}: {exc}")

    def process(self, messages: Sequence[Any]) -> int:
        """Validate and store one batch, dead-letter what cannot be stored, then commit the positions past it;
        returns the alerts stored."""
        alerts: list[tuple[Any, Any]] = []
        problems: list[tuple[Any, AlertProblem]] = []
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_kafka_error(error)
                continue
            decoded = self.decode(message)
            if isinstance(decoded, AlertProblem):
                problems.append((message, decoded))
            else:
                alerts.append((decoded, message))
        try:
            stored = self.upsert([alert for alert, _ in alerts])
        except StoreError as exc:
            if exc.transient:
                raise
            stored, refused = self._store_one_by_one(alerts)
            problems += refused
        if problems:
            self._dead_letter(problems)
        self._commit(messages)
        with self._lock:
            self._status = replace(
                self._status,
                stored=self._status.stored + stored,
                invalid=self._status.invalid + len(problems),
                dead_lettered=self._status.dead_lettered + len(problems),
                batches=self._status.batches + (1 if messages else 0),
            )
        if self.observer is not None:
            if stored:
                self.observer.stored(stored)
            if problems:
                self.observer.invalid(len(problems))
        self.after_batch()
        return stored

    # ---- what a sink of another topic overrides ---------------------------------------------------------------
    def decode(self, message: Any) -> Any:
        """The message as the item to store, or the AlertProblem that sends it to the DLQ."""
        return decode_alert(message)

    def upsert(self, items: Sequence[Any]) -> int:
        """Store the items in one transaction, idempotently (StoreError when the store fails or refuses them)."""
        return self.store.upsert_many(items)

    def after_batch(self) -> None:
        """Called once a batch (possibly empty) is stored and its positions committed; must not raise."""

    def _store_one_by_one(self, alerts: Sequence[tuple[Any, Any]]) -> tuple[int, list[tuple[Any, AlertProblem]]]:
        """After the store refused a batch's data: store each alert alone; those refused go to the DLQ."""
        stored = 0
        refused: list[tuple[Any, AlertProblem]] = []
        for alert, message in alerts:
            try:
                stored += self.upsert([alert])
            except StoreError as exc:
                if exc.transient:
                    raise
                refused.append((message, AlertProblem(STORE_REFUSED, self.item, f"the store refused it: {exc}"[:400])))
        return stored, refused

    # ---- the dead-letter topic --------------------------------------------------------------------------------
    def _dead_letter(self, problems: Sequence[tuple[Any, AlertProblem]]) -> None:
        """Write each problem to the sink's DLQ and wait for Kafka to take them all (else _UndeliveredError)."""
        for message, problem in problems:
            log.warning(
                "%s: message not stored, sent to %s",
                self.label,
                self.dlq_topic,
                extra={"partition": message.partition(), "offset": message.offset(), "reason": problem.reason},
            )
        records = [self._record(message, problem) for message, problem in problems]
        refused = self._send(records)
        if not refused:
            return
        # Too large or invalid for Kafka as they are: once more as minimal dead letters, and never a third time
        # (a record Kafka always refuses must not hold the sink back).
        for record, reason in self._send([dlq.minimal(record, reason) for record, reason in refused]):
            source = record.source
            log.error(
                "Kafka refused even the minimal dead letter of %s (%s): left out",
                f"{source.topic}[{source.partition}]@{source.offset}" if source else "an alert",
                reason,
            )

    def _record(self, message: Any, problem: AlertProblem) -> OutRecord:
        source = Source(message.topic() or self.topic, message.partition() or 0, message.offset())
        record = dlq.dead_letter(
            key=message.key(),
            value=message.value(),
            headers=message.headers(),
            source=source,
            reason=problem.reason,
            kind=problem.kind,
        )
        return dlq.fit(record, self._dlq_limit)

    def _send(self, records: Sequence[OutRecord]) -> list[tuple[OutRecord, str]]:
        """Produce and flush ``records``; returns those Kafka refused as records. Raises _UndeliveredError when
        some were not delivered for any other reason (the broker is away)."""
        if self._producer_events.take_fatal() is not None:
            self._drop_producer()  # librdkafka gave up on it: a new one
        if self._producer is None:
            self._producer = self._producer_factory(self._producer_config)
        producer = self._producer
        failures: list[tuple[OutRecord, KafkaError]] = []
        for record in records:
            produce(
                producer,
                self.dlq_topic,
                value=record.value,
                key=record.key,
                headers=record.headers,
                on_delivery=partial(_delivered, failures, record),
            )
        try:
            remaining = self._watchdog.call(
                "flushing dead letters", partial(producer.flush, CALL_TIMEOUT_S), timeout_s=CALL_TIMEOUT_S
            )
        except CallAbandoned as exc:
            self._producer = None  # left with its blocked worker
            raise _UndeliveredError(str(exc)) from exc
        other = [error for _, error in failures if not refuses_record(error)]
        if remaining or other:
            self._drop_producer()  # its queue would deliver them again next to the retried ones
            reason = describe(other[0]) if other else f"{remaining} still queued after {CALL_TIMEOUT_S:g} s"
            raise _UndeliveredError(f"dead letters of the {self.label} not delivered ({reason})")
        return [(record, describe(error)) for record, error in failures]

    def _drop_producer(self) -> None:
        if self._producer is not None:
            holder: list[Any] = [self._producer]
            self._producer = None
            self._watchdog.dispose("dead-letter producer", holder)

    # ---- the consumer -----------------------------------------------------------------------------------------
    def _join(self) -> None:
        self._consumer = self._consumer_factory(self._config)
        self._consumer.subscribe([self.topic])

    def _consume(self) -> list[Any]:
        try:
            messages = self._consumer.consume(num_messages=self.batch_size, timeout=self.batch_timeout_s)
        except KafkaException as exc:
            error = kafka_error(exc)
            if error.fatal():
                raise _ConsumerUnusableError(f"the consumer cannot go on: {describe(error)}") from exc
            self._events.error(error)
            return []
        fatal = self._events.take_fatal()
        if fatal is not None:  # told through error_cb only (e.g. fenced while rejoining after a session timeout)
            raise _ConsumerUnusableError(f"fatal Kafka error: {describe(fatal)}")
        return messages  # type: ignore[no-any-return]

    def _on_kafka_error(self, error: Any) -> None:
        if error.fatal():
            raise _ConsumerUnusableError(f"fatal Kafka error: {describe(error)}")
        if error.code() == KafkaError._PARTITION_EOF:
            return
        self._events.error(error)  # the outage log when the broker is away, else a rate-limited line

    def _rejoin(self, reason: str, stop: Stop) -> None:
        log.warning("replacing the %s's consumer (%s)", self.label, reason)
        self._update(replaced=self.status().replaced + 1)
        self._close_consumer()
        if not stop.wait(1.0):
            self._join()

    def _close_clients(self) -> None:
        if self._consumer is not None and self.outage.reachable:
            self._final_commit()
        self._close_consumer()
        self._drop_producer()

    def _close_consumer(self) -> None:
        if self._consumer is None:
            return
        self._committed.clear()  # a new consumer commits what it reads, from wherever the group resumes
        holder: list[Any] = [self._consumer]
        self._consumer = None
        self.health.assigned(0)
        try:
            self._watchdog.call(
                "closing the consumer", holder[0].close, timeout_s=CALL_TIMEOUT_S, margin_s=0.0, stop_grace_s=2.5
            )
        except CallAbandoned:
            log.warning("the %s's consumer did not close in time: left behind", self.label)
            return
        except KafkaException as exc:
            log.warning("closing the %s's consumer failed: %s", self.label, describe(exc))
        self._watchdog.dispose("consumer", holder)

    def _commit(self, messages: Sequence[Any]) -> None:
        """Commit each assigned partition's position (past the messages just stored and any control records)."""
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
        try:  # asynchronous: a commit never blocks the loop (its outcome comes to _on_commit from consume())
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # e.g. a rebalance or an outage: the batch comes again, the upsert absorbs it
            self._commit_failed(kafka_error(exc))
            return
        self._committed.update(changed)  # asked for; a failure reported later makes the next batch ask again

    def _on_commit(self, error: Any, partitions: list[TopicPartition]) -> None:
        """The consumer's ``on_commit`` (served inside consume() and close())."""
        if error is not None:
            self._commit_failed(error)
            for tp in partitions:  # commit them again with the next batch
                self._committed.pop((tp.topic, tp.partition), None)
            return
        if any(tp.error is None for tp in partitions):
            self.outage.recovered()

    def _commit_failed(self, error: KafkaError) -> None:
        if error.code() == KafkaError._NO_OFFSET:
            return
        if means_unreachable(error):
            self.outage.failed(f"committing sink offsets: {describe(error)}")
        elif not self.outage.absorb(f"committing sink offsets: {describe(error)}"):
            log.warning("committing sink offsets failed (the alerts may be redelivered): %s", describe(error))

    def _final_commit(self) -> None:
        """On the way out: one synchronous commit of the positions, bounded, so a clean stop leaves nothing to redo."""
        consumer = self._consumer
        offsets = [
            tp
            for tp in consumer.position(consumer.assignment())
            if tp.offset >= 0 and self._committed.get((tp.topic, tp.partition)) != tp.offset
        ]
        if not offsets:  # asked for already (close() waits for commits still in flight)
            return
        try:
            self._watchdog.call(
                "the final commit",
                partial(consumer.commit, offsets=offsets, asynchronous=False),
                timeout_s=2.0,
                margin_s=0.0,
                stop_grace_s=2.0,
            )
        except (KafkaException, CallAbandoned) as exc:
            log.info("the final commit did not complete (the last alerts may be redelivered): %s", exc)

    def _rewind(self, messages: Sequence[Any]) -> None:
        """Seek every partition of a failed batch back to its first message, so the batch is consumed again."""
        if self._consumer is None:
            return
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is None:
                first.setdefault((message.topic(), message.partition()), message.offset())
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:  # revoked meanwhile: its new owner starts from the committed offset
                log.warning("cannot rewind %s[%d] to %d: %s", topic, partition, offset, exc)

    def _measure(self) -> None:
        """Partitions held now (a local call); the lag comes with the consumer's statistics."""
        if self._consumer is None:
            return
        self.health.assigned(len(self._consumer.assignment()))
        lag = self.health.lag
        if lag is not None and self.observer is not None:
            self.observer.lag(lag)


def _delivered(failures: list[tuple[OutRecord, KafkaError]], record: OutRecord, error: Any, _: Any) -> None:
    if error is not None:
        failures.append((record, error))
