"""One batch, one Kafka transaction: alerts, dead letters and the consumed offsets commit together or not at all.

The sequence is the consume-transform-produce loop of KIP-98/KIP-447::

    begin_transaction -> produce alerts and DLQ records
    -> send_offsets_to_transaction(consumer.position(assignment), consumer group metadata)
    -> commit_transaction

Errors are handled as librdkafka classifies them:

* ``txn_requires_abort()``: abort the transaction and rewind the consumer to the committed offsets, so the
  batch is read and scored again (its alerts were never visible to ``read_committed`` readers);
* ``retriable()``: call the same operation again, until the transaction timeout has passed;
* anything else (``fatal()``, e.g. fenced by a newer producer with the same transactional.id): raise
  :class:`~scorer.exceptions.FatalKafkaError`; a restart resumes from the last committed batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from scorer.batch import OutRecord, ScoredBatch
from scorer.exceptions import FatalKafkaError

log = logging.getLogger(__name__)

T = TypeVar("T")


class TransactionalProducer(Protocol):
    def init_transactions(self, timeout: float) -> None: ...

    def begin_transaction(self) -> None: ...

    def produce(self, topic: str, value: Any = None, key: Any = None, headers: Any = None) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def send_offsets_to_transaction(self, positions: list[TopicPartition], metadata: Any, timeout: float) -> None: ...

    def commit_transaction(self, timeout: float) -> None: ...

    def abort_transaction(self, timeout: float) -> None: ...


class TransactionalConsumer(Protocol):
    def assignment(self) -> list[TopicPartition]: ...

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]: ...

    def seek(self, partition: TopicPartition) -> None: ...

    def consumer_group_metadata(self) -> Any: ...


def kafka_error(exc: KafkaException) -> KafkaError:
    """The KafkaError inside a KafkaException (librdkafka always puts one there; be safe anyway)."""
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else KafkaError(KafkaError._FAIL, str(exc))


class Transactor:
    """Commits scored batches transactionally for one producer/consumer pair."""

    def __init__(
        self,
        producer: TransactionalProducer,
        consumer: TransactionalConsumer,
        *,
        alerts_topic: str,
        dlq_topic: str,
        timeout_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._consumer = consumer
        self._alerts_topic = alerts_topic
        self._dlq_topic = dlq_topic
        self._timeout = timeout_s
        self._sleep = sleep
        self._clock = clock
        self.in_transaction = False

    def init(self) -> None:
        """Register the transactional.id with the coordinator, fencing (and aborting) any older instance's work."""
        try:
            self._retrying("init_transactions", lambda: self._producer.init_transactions(self._timeout))
        except KafkaException as exc:
            raise FatalKafkaError(f"cannot initialise Kafka transactions: {kafka_error(exc).str()}") from exc

    def commit(self, batch: ScoredBatch) -> bool:
        """Produce the batch's records and commit them with the consumed offsets.

        True when committed; False when Kafka asked for an abort, in which case the transaction was aborted
        and the consumer rewound to the committed offsets (the batch will be consumed again).
        """
        positions = [tp for tp in self._consumer.position(self._consumer.assignment()) if tp.offset >= 0]
        try:
            self._producer.begin_transaction()
            self.in_transaction = True
            for record in batch.alerts:
                self._produce(self._alerts_topic, record)
            for record in batch.dead_letters:
                self._produce(self._dlq_topic, record)
            metadata = self._consumer.consumer_group_metadata()
            self._retrying(
                "send_offsets_to_transaction",
                lambda: self._producer.send_offsets_to_transaction(positions, metadata, self._timeout),
            )
            self._retrying("commit_transaction", lambda: self._producer.commit_transaction(self._timeout))
            self.in_transaction = False
            return True
        except KafkaException as exc:
            error = kafka_error(exc)
            if not error.txn_requires_abort():
                raise FatalKafkaError(f"Kafka transaction failed and cannot be retried: {error.str()}") from exc
            log.warning("transaction must be aborted (%s): aborting and rewinding to committed offsets", error.str())
            self.abort()
            self.rewind()
            return False

    def abort(self) -> None:
        """Abort the open transaction (nothing it produced becomes visible; its offsets are not committed)."""
        try:
            self._retrying("abort_transaction", lambda: self._producer.abort_transaction(self._timeout))
        except KafkaException as exc:
            raise FatalKafkaError(f"cannot abort the Kafka transaction: {kafka_error(exc).str()}") from exc
        finally:
            self.in_transaction = False

    def rewind(self) -> None:
        """Seek every partition this consumer has read from back to its committed offset."""
        consumed = [tp for tp in self._consumer.position(self._consumer.assignment()) if tp.offset >= 0]
        if not consumed:
            return
        try:
            committed = self._retrying("committed", lambda: self._consumer.committed(consumed, timeout=self._timeout))
            for tp in committed:
                start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING  # never committed: from the start
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, start))
                log.info("rewound %s[%d] to offset %s", tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0)
        except KafkaException as exc:
            # Skipping a rewind would lose the aborted batch: stop instead, a restart resumes from the commit.
            raise FatalKafkaError(f"cannot rewind to the committed offsets: {kafka_error(exc).str()}") from exc

    # ---- helpers ------------------------------------------------------------------------------------------
    def _produce(self, topic: str, record: OutRecord) -> None:
        while True:
            try:
                self._producer.produce(topic, value=record.value, key=record.key, headers=record.headers)
                return
            except BufferError:  # the local queue is full: let librdkafka send, then try again
                self._producer.poll(0.1)

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, again after a back-off while Kafka says the error is retriable (up to the timeout)."""
        deadline = self._clock() + self._timeout
        delay = 0.1
        while True:
            try:
                return call()
            except KafkaException as exc:
                error = kafka_error(exc)
                if error.fatal() or error.txn_requires_abort() or not error.retriable() or self._clock() > deadline:
                    raise
                log.warning("%s failed (%s): retrying in %.1f s", what, error.str(), delay)
                self._sleep(delay)
                delay = min(delay * 2, 2.0)
