"""The scorer's main loop: wait for a model, subscribe, then consume -> score -> commit one batch at a time.

Invariants that make it exactly once and rebalance-safe:

* a transaction is open only between ``consume()`` calls, so when a rebalance callback runs (librdkafka calls
  them from inside ``consume()`` and ``close()``) every batch read so far is committed or aborted: partitions
  are handed over with their offsets committed, and the next owner starts right after them;
* the model may change only between batches (the watcher is polled before ``consume()``), and each batch is
  scored by one model whose version every alert names;
* a stop request (Ctrl-C, SIGTERM) is honoured between batches: the current batch commits, then the consumer
  leaves the group.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from fraudstream.model.watcher import ModelWatcher
from scorer.batch import score_batch
from scorer.exceptions import FatalKafkaError
from scorer.metrics import ScorerMetrics
from scorer.transaction import TransactionalConsumer, Transactor, kafka_error

log = logging.getLogger(__name__)


class Stop(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


class Consumer(TransactionalConsumer, Protocol):
    def subscribe(self, topics: list[str], **callbacks: Any) -> None: ...

    def consume(self, num_messages: int, timeout: float) -> list[Any]: ...

    def close(self) -> None: ...


@dataclass
class ScorerStatus:
    """Running totals of committed work, for status lines and the final summary."""

    model_version: str | None = None
    waiting_for_model: bool = False
    batches: int = 0
    consumed: int = 0
    scored: int = 0
    alerts: int = 0
    dead_letters: int = 0
    aborted: int = 0
    partitions: set[tuple[str, int]] = field(default_factory=set)


class ScorerLoop:
    """Consume, score and commit until stopped. Build it with :func:`scorer.bootstrap.bootstrap`."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        transactor: Transactor,
        watcher: ModelWatcher,
        metrics: ScorerMetrics,
        topic: str,
        batch_size: int,
        batch_timeout_s: float,
        stop: Stop,
        on_status: Callable[[ScorerStatus], None] | None = None,
        status_interval_s: float = 5.0,
        model_wait_s: float = 1.0,
    ) -> None:
        self.consumer = consumer
        self.transactor = transactor
        self.watcher = watcher
        self.metrics = metrics
        self.topic = topic
        self.batch_size = batch_size
        self.batch_timeout_s = batch_timeout_s
        self.stop = stop
        self.status = ScorerStatus()
        self._on_status = on_status
        self._status_interval = status_interval_s
        self._next_status = 0.0
        self._model_wait = model_wait_s

    def run(self) -> ScorerStatus:
        """Run until ``stop`` is set; returns the totals. Raises FatalKafkaError when Kafka gives up on us."""
        try:
            self.transactor.init()
            if not self._wait_for_model():
                return self.status
            self.consumer.subscribe(
                [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            log.info("scoring %s with %s", self.topic, self.watcher.current.label)  # type: ignore[union-attr]
            while not self.stop.is_set():
                self._follow_model()
                messages = self._consume()
                if messages:
                    self._process(messages)
                self._report()
        except BaseException:
            if self.transactor.in_transaction:  # e.g. a second Ctrl-C in the middle of a commit
                log.warning("stopping inside a transaction: aborting it")
                try:
                    self.transactor.abort()
                except Exception:  # best effort: the broker aborts it after transaction.timeout.ms anyway
                    log.exception("the open transaction could not be aborted")
            raise
        finally:
            self.consumer.close()  # leaves the group at once (on_revoke runs here, with nothing in flight)
            self._report(force=True)
        return self.status

    # ---- the model --------------------------------------------------------------------------------------------
    def _wait_for_model(self) -> bool:
        """Poll the registry until a production model exists; no partitions are held while waiting."""
        self.watcher.poll()
        while self.watcher.current is None:
            self.status.waiting_for_model = True
            self._report()
            if self.stop.wait(self._model_wait):  # the watcher itself asks the registry once per interval
                return False
            self.watcher.poll()
        self.status.waiting_for_model = False
        self._serving()
        return True

    def _follow_model(self) -> None:
        if self.watcher.poll():
            self._serving()

    def _serving(self) -> None:
        model = self.watcher.current
        assert model is not None
        self.status.model_version = model.version
        self.metrics.serving(model.version)

    def _consume(self) -> list[Any]:
        try:
            return self.consumer.consume(self.batch_size, self.batch_timeout_s)
        except KafkaException as exc:  # raised only for fatal consumer errors (e.g. fenced, bad configuration)
            raise FatalKafkaError(f"the consumer cannot go on: {kafka_error(exc).str()}") from exc

    # ---- one batch --------------------------------------------------------------------------------------------
    def _process(self, messages: list[Any]) -> None:
        started = time.perf_counter()
        model = self.watcher.current
        assert model is not None
        batch = score_batch(messages, model)
        for error in batch.errors:
            self._consumer_error(error)
        if not batch.consumed:
            return
        if not self.transactor.commit(batch):
            self.status.aborted += 1
            self.metrics.aborts.inc()
            return
        committed_at = datetime.now(timezone.utc)
        self.metrics.committed(
            consumed=batch.consumed,
            scored=batch.scored,
            alerts=len(batch.alerts),
            dlq_kinds=batch.dead_letter_kinds,
            seconds=time.perf_counter() - started,
        )
        self.metrics.alert_latencies(batch.alert_event_times, committed_at)
        status = self.status
        status.batches += 1
        status.consumed += batch.consumed
        status.scored += batch.scored
        status.alerts += len(batch.alerts)
        status.dead_letters += len(batch.dead_letters)

    def _consumer_error(self, error: Any) -> None:
        if isinstance(error, KafkaError) and error.fatal():
            raise FatalKafkaError(f"the consumer hit a fatal Kafka error: {error.str()}")
        if isinstance(error, KafkaError) and error.code() == KafkaError._PARTITION_EOF:
            return
        log.warning("consumer error: %s", error.str() if isinstance(error, KafkaError) else error)

    # ---- rebalance callbacks (run inside consume()/close(), never inside a transaction) -------------------------
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if not partitions:  # an incremental rebalance that gave this member nothing new
            return
        self.status.partitions |= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.rebalances.labels(event="assign").inc()
        log.info("partitions assigned: %s", _names(partitions))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        if self.transactor.in_transaction:  # cannot happen with this loop; keep the guarantee if it ever does
            log.error("partitions revoked inside a transaction: aborting it so the next owner re-reads the batch")
            self.transactor.abort()
            self.transactor.rewind()
        self.status.partitions -= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.rebalances.labels(event="revoke").inc()
        log.info("partitions revoked: %s", _names(partitions))

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Lost (not revoked): another member may already own them, and the broker rejects our offsets for them.
        self.status.partitions -= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.rebalances.labels(event="lost").inc()
        log.warning("partitions lost (session timed out?): %s", _names(partitions))

    # ---- status -----------------------------------------------------------------------------------------------
    def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._on_status is None or (not force and now < self._next_status):
            return
        self._next_status = now + self._status_interval
        self._on_status(self.status)


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "none"
