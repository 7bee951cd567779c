"""Analysts' verdicts onto the compacted ``fraud-feedback`` topic (keyed by transaction id), exactly once each.

The store is the outbox: POST /alerts/{id}/feedback stores the verdict first (history and current verdict in one
transaction), then waits up to FRAUD_FEEDBACK_PUBLISH_TIMEOUT_S for this publisher to put it on the topic. The call
can fail, or the process die, between the two; the verdict is safe in the store either way and is produced later.

What makes it exactly once, across failures and API replicas:

* one publisher at a time: a lease row in the store, renewed every round, taken over when it expires;
* a verdict counts as published only once the topic's partition and offset are recorded beside it;
* whenever what reached the topic is in doubt (first round, a lease taken over, a delivery report that failed or
  never came), the publisher first reads each partition past its last recorded offset and records the verdicts it
  finds there, so a record whose report was lost is not produced again. Nothing is left in flight while it reads:
  queued records are purged first (a purged record is certainly not on the topic);
* per transaction, a verdict is produced only after the one before it is recorded, so the topic's order per key is
  the order of the verdicts and compaction keeps the latest.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from api.store.feedback import FeedbackRepository, StoredFeedback
from fraudstream.kafka.clients import consumer_config, producer_config
from fraudstream.kafka.errors import kafka_error
from fraudstream.kafka.topics import ensure_feedback_topic
from fraudstream.schemas import Feedback
from fraudstream.settings import Settings

log = logging.getLogger(__name__)

LEASE = "fraud-feedback-publisher"
FEEDBACK_ID_HEADER = "feedback_id"
CLIENT_ID = "fraudstream-feedback"
ClientFactory = Callable[[dict[str, Any]], Any]


def kafka_producer(config: dict[str, Any]) -> Any:
    from confluent_kafka import Producer

    return Producer(config)


def kafka_consumer(config: dict[str, Any]) -> Any:
    from confluent_kafka import Consumer

    return Consumer(config)


@dataclass(frozen=True)
class PublisherStatus:
    running: bool
    holds_lease: bool
    last_error: str | None


class FeedbackPublisher:
    """Publishes the store's unpublished verdicts in rounds: on ``wake()`` and every ``interval_s``."""

    def __init__(
        self,
        settings: Settings,
        repository: FeedbackRepository,
        *,
        producer_factory: ClientFactory = kafka_producer,
        consumer_factory: ClientFactory = kafka_consumer,
        holder: str | None = None,
        interval_s: float = 1.0,
        lease_ttl_s: float = 15.0,
        create_topic: bool = True,
    ) -> None:
        self.topic = settings.topic_feedback
        self.repository = repository
        self.holder = holder or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.interval_s = interval_s
        self.lease_ttl_s = lease_ttl_s
        self.flush_s = settings.feedback_publish_timeout_s
        self._settings = settings
        self._producer_factory = producer_factory
        self._consumer_factory = consumer_factory
        self._producer: Any = None
        self._topic_ready = not create_topic
        self._in_doubt = True  # nothing is known of the topic yet: read it before producing
        self._holds_lease = False
        self._last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._round_lock = threading.Lock()

    # ---- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="feedback-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._producer is not None:
            self._producer.flush(min(timeout, self.flush_s))
        if self._holds_lease:
            try:
                self.repository.release_lease(LEASE, self.holder)
            except Exception as exc:  # the lease expires by itself
                log.warning("cannot release the feedback publisher's lease: %s", exc)

    def status(self) -> PublisherStatus:
        alive = self._thread is not None and self._thread.is_alive()
        return PublisherStatus(running=alive, holds_lease=self._holds_lease, last_error=self._last_error)

    def wake(self) -> None:
        self._wake.set()

    def wait_published(self, feedback_id: int, timeout: float) -> StoredFeedback | None:
        """The verdict once on the topic (by whichever replica publishes), or None when not yet after ``timeout``."""
        self.wake()
        deadline = time.monotonic() + timeout
        while True:
            found = self.repository.get(feedback_id)
            if found is not None and found.published:
                return found
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_round()
                self._last_error = None
            except Exception as exc:  # the broker or the store is away: keep the verdicts and try again
                self._in_doubt = True
                if self._last_error is None:
                    log.warning("publishing verdicts to %s failed, retrying: %s", self.topic, exc)
                self._last_error = f"{exc.__class__.__name__}: {exc}"
            self._wake.wait(self.interval_s)
            self._wake.clear()

    # ---- one round --------------------------------------------------------------------------------------------
    def run_round(self) -> int:
        """Publish what is pending if this process holds the lease; returns the verdicts recorded as published."""
        with self._round_lock:
            self._holds_lease = self.repository.acquire_lease(LEASE, self.holder, self.lease_ttl_s)
            if not self._holds_lease:
                self._in_doubt = True  # another replica publishes; if we take over, read the topic first
                return 0
            if not self.repository.pending(limit=1):
                return 0  # nothing to publish: no Kafka call at all
            if not self._topic_ready:
                ensure_feedback_topic(self._settings)
                self._topic_ready = True
            recorded = 0
            if self._in_doubt:
                if not self._settle():
                    return 0
                recorded += self._reconcile()
                self._in_doubt = False
            while batch := self._next_verdicts(self.repository.pending()):  # a newer verdict goes in the next pass
                if not self.repository.acquire_lease(LEASE, self.holder, self.lease_ttl_s):  # a long read: renew
                    self._holds_lease, self._in_doubt = False, True
                    break
                produced = self._produce(batch)
                if not produced:
                    break
                recorded += produced
            return recorded

    @staticmethod
    def _next_verdicts(pending: Sequence[StoredFeedback]) -> list[StoredFeedback]:
        """The oldest pending verdict of each transaction (a newer one waits until it is recorded)."""
        chosen: dict[str, StoredFeedback] = {}
        for feedback in pending:
            chosen.setdefault(feedback.transaction_id, feedback)
        return list(chosen.values())

    def _produce(self, verdicts: Sequence[StoredFeedback]) -> int:
        if not verdicts:
            return 0
        producer = self._ensure_producer()
        reports: dict[int, tuple[int, int] | str] = {}

        def delivered(feedback_id: int) -> Callable[[Any, Any], None]:
            def report(error: Any, message: Any) -> None:
                reports[feedback_id] = str(error) if error is not None else (message.partition(), message.offset())

            return report

        for feedback in verdicts:
            producer.produce(
                self.topic,
                key=feedback.transaction_id.encode(),
                value=feedback.message().model_dump_json().encode(),
                headers=[(FEEDBACK_ID_HEADER, str(feedback.feedback_id).encode())],
                on_delivery=delivered(feedback.feedback_id),
            )
        producer.flush(self.flush_s)
        marks = [(fid, *where) for fid, where in reports.items() if isinstance(where, tuple)]
        if len(marks) < len(verdicts):
            # A failed or missing report leaves the record in doubt (it may be on the topic): record nothing of
            # this round; the next one reads the topic first and records what is really there.
            self._in_doubt = True
            failed = sorted(set(f.feedback_id for f in verdicts) - {m[0] for m in marks})
            log.warning("verdicts %s not confirmed by %s: the topic is checked before any retry", failed, self.topic)
            return 0
        self.repository.mark_published(marks)
        return len(marks)

    def _settle(self) -> bool:
        """Nothing of ours in flight, so the topic cannot change behind a read: wait for what was sent, purge what
        never left the queue (certainly not on the topic), and start the next produce on a new producer."""
        if self._producer is None or len(self._producer) == 0:
            return True
        self._producer.flush(self.flush_s)
        if len(self._producer):
            self._producer.purge(in_queue=True, in_flight=False)
            self._producer.flush(self.flush_s)
        if len(self._producer):
            return False  # still in flight: try again next round
        self._producer = None
        return True

    def _reconcile(self) -> int:
        """Record the pending verdicts that the topic holds past the last recorded offset of each partition."""
        from confluent_kafka import TopicPartition

        pending = {feedback.feedback_id for feedback in self.repository.pending(limit=1_000_000)}
        if not pending:
            return 0
        last = self.repository.last_offsets()
        config = consumer_config(
            self._settings.kafka(), group_id=f"{CLIENT_ID}-check", client_id=f"{CLIENT_ID}-check", read_committed=False
        )
        consumer = self._consumer_factory(config)
        found: dict[int, tuple[int, int]] = {}
        try:
            metadata = consumer.list_topics(self.topic, timeout=self.flush_s)
            ends: dict[int, int] = {}
            starts = []
            for partition in metadata.topics[self.topic].partitions:
                low, high = self._watermarks(consumer, TopicPartition(self.topic, partition))
                start = max(low, last.get(partition, -1) + 1)
                if start < high:
                    ends[partition] = high
                    starts.append(TopicPartition(self.topic, partition, start))
            if starts:
                consumer.assign(starts)
                found = self._read_until(consumer, ends)
        finally:
            consumer.close()
        marks = [(fid, *where) for fid, where in found.items() if fid in pending]
        self.repository.mark_published(marks)
        if marks:
            log.info("recorded %d verdicts found on %s (their delivery reports were lost)", len(marks), self.topic)
        return len(marks)

    def _watermarks(self, consumer: Any, partition: Any) -> tuple[int, int]:
        """(low, high) offsets of a partition, retried while a just-created topic's leaders settle."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + max(10.0, self.flush_s)
        while True:
            try:
                low, high = consumer.get_watermark_offsets(partition, timeout=self.flush_s)
                return int(low), int(high)
            except KafkaException as exc:
                retriable = kafka_error(exc).retriable() or "leader" in str(exc).lower()
                if not retriable or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _read_until(self, consumer: Any, ends: dict[int, int]) -> dict[int, tuple[int, int]]:
        found: dict[int, tuple[int, int]] = {}
        deadline = time.monotonic() + max(30.0, self.flush_s)
        remaining = dict(ends)
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {self.topic} to its end took longer than expected")
            for message in consumer.consume(500, 0.5):
                if message.error() is not None:
                    continue
                fid = _feedback_id(message)
                if fid is not None:
                    found[fid] = (message.partition(), message.offset())
                if message.offset() + 1 >= remaining.get(message.partition(), 0):
                    remaining.pop(message.partition(), None)
            for tp in consumer.position([*consumer.assignment()]):
                if tp.partition in remaining and tp.offset >= remaining[tp.partition]:
                    remaining.pop(tp.partition)
        return found

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            config = producer_config(
                self._settings.kafka(), client_id=CLIENT_ID, **{"message.timeout.ms": 60_000, "linger.ms": 1}
            )
            self._producer = self._producer_factory(config)
        return self._producer


def _feedback_id(message: Any) -> int | None:
    for name, value in message.headers() or []:
        if name == FEEDBACK_ID_HEADER and value:
            try:
                return int(value)
            except ValueError:
                return None
    try:  # a record written without the header: its value names it too
        return Feedback.model_validate_json(message.value() or b"").feedback_id
    except ValueError:
        return None
