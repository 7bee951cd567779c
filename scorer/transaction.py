"""One batch, one Kafka transaction: alerts, dead letters and the consumed offsets commit together or not at all.

The sequence is the consume-transform-produce loop of KIP-98/KIP-447::

    begin_transaction -> produce alerts and DLQ records
    -> send_offsets_to_transaction(consumer.position(assignment), consumer group metadata)
    -> commit_transaction

Every blocking call runs under the service's :class:`~fraudstream.kafka.watchdog.Watchdog` (it cannot block past
its timeout plus a margin, nor past a stop request plus a second). What happens on each kind of failure:

* **a record Kafka refuses** (too large, invalid): never fatal, and never a loop. Before producing, a dead letter
  is cut to :func:`~scorer.dead_letter.dead_letter_limit`. Refused by ``produce()`` itself, its stand-in goes into
  the same transaction at once. Refused at delivery, the transaction becomes abortable; the refusal is remembered
  by the record's source offset, and the retried batch writes the stand-in: an alert becomes a dead letter, a
  dead letter a minimal one (no value), and a minimal one Kafka still refuses is left out with an ERROR line.
  Each retry moves one step down that list, so no batch can meet the same refusal twice.
* ``txn_requires_abort()``: abort, rewind the consumer to the committed offsets, and the loop consumes the batch
  again (its records were never visible to ``read_committed`` readers).
* ``retriable()`` (e.g. the broker is away): the same call again until the transaction's time is up, then abort.
* a producer that cannot go on (fatal, fenced, a call the watchdog abandoned, an abort that fails, a commit whose
  outcome is unknown): :class:`~scorer.exceptions.ProducerUnusableError`. The loop then calls :meth:`replace`:
  a new producer with the same ``transactional.id``, whose ``init_transactions`` fences the old one and settles
  its open transaction (committed or aborted), then a rewind to the committed offsets, which are now the truth.
* **a rewind whose committed offsets do not answer**: ``committed()`` (read_committed, so KIP-447's stable
  offsets) waits while a transaction holding the group's offsets is open and only ever reports _TIMED_OUT; the
  rewind asks until it answers, and says once when that looks like a hanging transaction
  (:meth:`Transactor.rewind`). A partition answered with an error is asked again, never read from its start.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from fraudstream.kafka import dead_letter as dlq
from fraudstream.kafka.clients import PRODUCER_MESSAGE_MAX_BYTES
from fraudstream.kafka.errors import (
    describe,
    kafka_error,
    means_unreachable,
    misconfigured,
    producer_unusable,
    refuses_record,
)
from fraudstream.kafka.outage import OutageLog
from fraudstream.kafka.produce import produce
from fraudstream.kafka.records import OutRecord, Source
from fraudstream.kafka.topics import BROKER_MAX_MESSAGE_BYTES
from fraudstream.kafka.watchdog import CallAbandoned, Watchdog
from fraudstream.shutdown import Stop
from scorer.batch import ScoredBatch
from scorer.exceptions import ConsumerUnusableError, FatalKafkaError, ProducerUnusableError

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CALL_TIMEOUT_S = 3.0
"""Timeout given to one blocking call; a longer wait is several calls (librdkafka: "retry call to resume").
With the watchdog's margin (``WATCHDOG_MARGIN_S``) it bounds how long a stuck call delays the recovery after a
broker comes back: a call stuck since just before the return is abandoned 5 s later, then a new producer starts.
On the three-node cluster, a kill -9 of the node that was both the scorer's transaction coordinator and its
group's coordinator stalled scoring 14.6 and 14.8 s (2 of 3 such runs) with 5 s here, 6.3-12.1 s (5 of 5) with
3 s: the stuck ``send_offsets_to_transaction`` of librdkafka #5511 is given up 2 s sooner."""
WATCHDOG_MARGIN_S = 2.0
STOP_CALL_TIMEOUT_S = 1.0
HANGING_AFTER_S = 60.0
"""How long the rewind waits for the committed offsets before it logs that a transaction holding them hangs
(longer than a crashed replica's transaction lasts: its timeout plus Kafka's 10 s sweep)."""


class TransactionalProducer(Protocol):
    def init_transactions(self, timeout: float) -> None: ...

    def begin_transaction(self) -> None: ...

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None: ...

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


class CommitOutcome(enum.Enum):
    COMMITTED = "committed"
    ABORTED = "aborted"
    """Aborted and rewound to the committed offsets: the loop consumes the batch again."""


@dataclass(frozen=True)
class _Refusal:
    """Kafka refused ``failed`` (written to ``failed_topic`` for a record first meant for ``original_topic``)."""

    original_topic: str
    failed_topic: str
    failed: OutRecord
    reason: str


class _StoppedError(Exception):
    """A stop request came while the producer's queue was full: the batch cannot complete."""


class Transactor:
    """Commits scored batches transactionally for one consumer, through a producer it builds and replaces."""

    def __init__(
        self,
        producer_factory: Callable[[], TransactionalProducer],
        consumer: TransactionalConsumer,
        *,
        alerts_topic: str,
        dlq_topic: str,
        timeout_s: float,
        watchdog: Watchdog,
        outage: OutageLog,
        stop: Stop,
        dead_letter_limit: int | None = None,
        on_fallback: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self._factory = producer_factory
        self._producer: TransactionalProducer | None = None
        self._alerts_topic = alerts_topic
        self._dlq_topic = dlq_topic
        self._timeout = timeout_s
        self._call_timeout = min(timeout_s, MAX_CALL_TIMEOUT_S)
        self._watchdog = watchdog
        self._outage = outage
        self._stop = stop
        self.dead_letter_limit = dead_letter_limit or dlq.dead_letter_limit(
            PRODUCER_MESSAGE_MAX_BYTES, BROKER_MAX_MESSAGE_BYTES
        )
        self._on_fallback = on_fallback or (lambda how: None)
        self._clock = clock
        self._refused: dict[Source, _Refusal] = {}
        self.in_transaction = False
        self.replacements = 0

    @property
    def ready(self) -> bool:
        """True while a producer with initialised transactions is in place."""
        return self._producer is not None

    # ---- the producer's life ----------------------------------------------------------------------------------
    def start(self) -> bool:
        """Build the producer and register its transactional.id (fencing any older instance and settling its
        open transaction), retrying while the cluster is away. False when stopped first.

        A timed-out ``init_transactions`` is called again on the same producer (librdkafka: "retry call to
        resume"); only a producer that cannot go on, or whose call got stuck, is replaced by a new one.
        """
        delay = 0.5
        holder: list[Any] = []
        while not self._stop.is_set():
            if not holder:
                holder.append(self._factory())
            try:
                self._watchdog.call(
                    "init_transactions",
                    partial(holder[0].init_transactions, self._call_timeout),
                    timeout_s=self._call_timeout,
                )
            except CallAbandoned:
                holder.clear()  # its blocked worker keeps it alive: leaked, never destroyed under librdkafka
                continue
            except KafkaException as exc:
                error = kafka_error(exc)
                if misconfigured(error):
                    raise FatalKafkaError(f"cannot initialise Kafka transactions: {describe(error)}") from exc
                self._note_failure("init_transactions", error)
                if error.fatal() or not (error.retriable() or means_unreachable(error)):
                    self._watchdog.dispose("producer", holder)
                if self._stop.wait(delay):
                    self._watchdog.dispose("producer", holder)
                    return False
                delay = min(delay * 2, 5.0)
                continue
            self._producer = holder.pop()
            self._outage.recovered()
            return True
        self._watchdog.dispose("producer", holder)
        return False

    def replace(self, reason: str) -> bool:
        """Give up the current producer for a new one (same transactional.id), then rewind the consumer to the
        committed offsets. False when stopped first."""
        self.replacements += 1
        log.warning("replacing the transactional producer (%s)", reason)
        self.in_transaction = False
        self.close()
        return self.start() and self.rewind()

    def close(self) -> None:
        """Dispose of the producer (its destructor runs in the watchdog's worker, so it cannot block us)."""
        if self._producer is not None:
            holder: list[Any] = [self._producer]
            self._producer = None
            self._watchdog.dispose("producer", holder)

    # ---- one batch --------------------------------------------------------------------------------------------
    def positions(self) -> list[TopicPartition]:
        """The consumer's positions (the offsets a transaction commits): read them in the consumer's thread, right
        after the batch's last ``consume()``."""
        return [tp for tp in self.consumer.position(self.consumer.assignment()) if tp.offset >= 0]

    def commit(
        self,
        batch: ScoredBatch,
        *,
        positions: list[TopicPartition] | None = None,
        metadata: Any = None,
        rewind: bool = True,
    ) -> CommitOutcome:
        """Produce the batch's records and commit them with the consumed offsets (see the module docstring).

        ``positions`` and ``metadata`` (the consumer group metadata) are read from the consumer when not given.
        Given both and ``rewind=False``, the call makes no consumer call at all, so it may run in another thread
        while the consumer reads the next batch (:mod:`scorer.loop`); the caller then rewinds after an abort.
        Raises ProducerUnusableError when the producer must be replaced (then call :meth:`replace`).
        """
        producer = self._producer
        if producer is None:
            raise ProducerUnusableError("no producer (its start was interrupted)")
        batch.finish_alerts()  # reason codes from a worker process: collected before the transaction begins
        if positions is None:
            positions = self.positions()
        deadline = self._clock() + self._timeout
        refusals: list[_Refusal] = []
        stage = "begin_transaction"
        try:
            producer.begin_transaction()
            self.in_transaction = True
            stage = "produce"
            for topic, original_topic, record in self._outgoing(batch):
                self._produce(producer, topic, original_topic, record, refusals)
            if metadata is None:
                metadata = self.consumer.consumer_group_metadata()
            stage = "send_offsets_to_transaction"
            self._retrying(
                stage,
                lambda: producer.send_offsets_to_transaction(positions, metadata, self._call_timeout),
                deadline,
            )
            stage = "commit_transaction"
            self._retrying(stage, lambda: producer.commit_transaction(self._call_timeout), deadline)
        except CallAbandoned as exc:
            self._producer, self.in_transaction = None, False  # left with its blocked worker
            raise ProducerUnusableError(str(exc)) from exc
        except _StoppedError:
            self.abort_quietly()
            return CommitOutcome.ABORTED
        except KafkaException as exc:
            error = kafka_error(exc)
            self._learn(producer, refusals)
            if error.fatal() or (producer_unusable(error) and not error.txn_requires_abort()):
                raise ProducerUnusableError(f"{stage}: {describe(error)}") from exc
            if stage == "commit_transaction" and not error.txn_requires_abort():
                # committed or not? Only fencing tells: a new producer settles it, then the committed offsets say.
                raise ProducerUnusableError(f"commit_transaction's outcome is unknown: {describe(error)}") from exc
            self._note_failure(stage, error)
            self._abort(producer, reason=describe(error))
            self._learn(producer, refusals)
            if rewind:
                self.rewind()
            return CommitOutcome.ABORTED
        self.in_transaction = False
        for record in (*batch.alerts, *batch.dead_letters):
            if record.source is not None:
                self._refused.pop(record.source, None)
        self._outage.recovered()
        return CommitOutcome.COMMITTED

    def abort_quietly(self) -> None:
        """Best-effort abort on the way out (stopping): a second at most; the broker aborts it later anyway."""
        producer = self._producer
        if not self.in_transaction or producer is None:
            return
        try:
            self._watchdog.call(
                "abort_transaction",
                lambda: producer.abort_transaction(STOP_CALL_TIMEOUT_S),
                timeout_s=STOP_CALL_TIMEOUT_S,
            )
        except (KafkaException, CallAbandoned) as exc:
            log.info("the open transaction was left to the broker to abort (%s)", exc)
        finally:
            self.in_transaction = False

    def rewind(self) -> bool:
        """Seek every partition this consumer has read from back to its committed offset, asking the group
        coordinator until it answers. False when stopped first (the next owner starts from the committed
        offsets anyway).

        A ``read_committed`` consumer's ``committed()`` does not answer while a transaction holding offsets of the
        group is open (KIP-447: librdkafka retries the broker's UNSTABLE_OFFSET_COMMIT until the call times out, so
        the caller only ever sees _TIMED_OUT). That ends when the transaction does (e.g. a crashed replica's, when
        Kafka times it out); one whose end marker the broker dropped never ends (measured on a combined KRaft
        broker and controller restarted after ``kill -9``, before the local broker got a controller process of its
        own), and this says so once, with the way out, after ``HANGING_AFTER_S``. A partition answered with an
        error is asked again, never read from its start (which would score it all again).
        """
        consumed = [tp for tp in self.consumer.position(self.consumer.assignment()) if tp.offset >= 0]
        if not consumed:
            return True
        delay = 0.2
        since = self._clock()
        told = False
        while True:
            try:
                committed = self._committed(consumed)
                break
            except CallAbandoned as exc:
                raise ConsumerUnusableError(str(exc), abandoned=True) from exc
            except KafkaException as exc:
                error = kafka_error(exc)
                self._note_failure("reading the committed offsets", error)
                if not told and error.code() == KafkaError._TIMED_OUT and self._clock() - since >= HANGING_AFTER_S:
                    told = True
                    log.error(
                        "the committed offsets of %s have not answered for %.0f s: a transaction holding them is "
                        "still open. If no replica of this group is in the middle of one, it hangs (a broker that "
                        "restarted dropped its end marker): `fraudstream kafka tool kafka-transactions find-hanging "
                        "--broker-id <the group coordinator>` names it; aborting it (`kafka-transactions abort`) "
                        "lets scoring resume from the offsets committed before it, so that batch may be scored twice",
                        ", ".join(sorted({tp.topic for tp in consumed})),
                        self._clock() - since,
                    )
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 2.0)
        for tp in committed:
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING  # never committed: from the start
            try:
                self.consumer.seek(TopicPartition(tp.topic, tp.partition, start))
            except KafkaException as exc:  # revoked meanwhile: its new owner starts from the committed offset
                log.info("not rewinding %s[%d]: %s", tp.topic, tp.partition, describe(exc))
                continue
            log.info("rewound %s[%d] to offset %s", tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0)
        return True

    def _committed(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The committed offsets of ``partitions``; a partition the coordinator answered with an error raises
        (never taken for "nothing committed yet")."""
        committed: list[TopicPartition] = self._watchdog.call(
            "committed",
            lambda: self.consumer.committed(partitions, timeout=self._call_timeout),
            timeout_s=self._call_timeout,
        )
        for tp in committed:
            if tp.error is not None:
                raise KafkaException(tp.error)
        return committed

    # ---- records ----------------------------------------------------------------------------------------------
    def _outgoing(self, batch: ScoredBatch) -> Iterator[tuple[str, str, OutRecord]]:
        """(topic, topic first meant, record) for each record of the batch, in the form Kafka will take."""
        for original_topic, records in ((self._alerts_topic, batch.alerts), (self._dlq_topic, batch.dead_letters)):
            for record in records:
                known = self._refused.get(record.source) if record.source is not None else None
                if known is None or known.original_topic != original_topic:
                    if original_topic == self._dlq_topic:
                        record = self._fit(record)
                    yield original_topic, original_topic, record
                    continue
                stand_in = self._stand_in(known.failed_topic, known.failed, known.reason)
                if stand_in is not None:
                    yield stand_in[0], original_topic, stand_in[1]
        for topic, record in batch.extra:  # an observer's records (e.g. monitoring), produced as they are
            yield topic, topic, record

    def _fit(self, record: OutRecord) -> OutRecord:
        fitted = dlq.fit(record, self.dead_letter_limit)
        if fitted is not record:
            self._on_fallback("cut_to_fit")
        return fitted

    def _stand_in(self, topic: str, record: OutRecord, refusal: str) -> tuple[str, OutRecord] | None:
        """What to write instead of ``record`` once Kafka refused it, or None when nothing smaller is left."""
        if topic == self._alerts_topic:
            self._on_fallback("alert_to_dlq")
            log.error("Kafka refused an alert (%s): it goes to the DLQ instead", refusal)
            return self._dlq_topic, self._fit(dlq.refused_alert(record, refusal))
        if record.value is not None or record.original_headers or len(record.key or b"") > dlq.MINIMAL_KEY_BYTES:
            self._on_fallback("minimal")
            log.warning("Kafka refused a dead letter (%s): writing a minimal one instead", refusal)
            return self._dlq_topic, dlq.minimal(record, refusal)
        self._on_fallback("left_out")
        source = record.source
        log.error(
            "Kafka refused even the minimal dead letter of %s (%s): left out",
            f"{source.topic}[{source.partition}]@{source.offset}" if source else "a message",
            refusal,
            extra={"key": repr((record.key or b"")[:100]), "headers": repr(record.headers)[:1000]},
        )
        return None

    def _produce(
        self,
        producer: TransactionalProducer,
        topic: str,
        original_topic: str,
        record: OutRecord,
        refusals: list[_Refusal],
    ) -> None:
        while True:
            try:
                queued = produce(
                    producer,
                    topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    on_delivery=partial(self._delivered, refusals, original_topic, topic, record),
                    stop=self._stop,
                )
            except KafkaException as exc:
                error = kafka_error(exc)
                if not refuses_record(error):
                    raise
                stand_in = self._stand_in(topic, record, describe(error))  # refused at once: replace it at once
                if stand_in is None:
                    return
                topic, record = stand_in
                continue
            if not queued:
                raise _StoppedError
            return

    @staticmethod
    def _delivered(
        refusals: list[_Refusal], original_topic: str, topic: str, record: OutRecord, error: Any, _: Any
    ) -> None:
        # Runs in whichever thread serves the producer's events (inside commit_transaction's flush).
        if error is not None and refuses_record(error):
            refusals.append(_Refusal(original_topic, topic, record, describe(error)))

    def _learn(self, producer: TransactionalProducer, refusals: list[_Refusal]) -> None:
        """Remember the records Kafka refused at delivery, so the retried batch writes their stand-ins."""
        try:
            producer.poll(0)  # serve delivery reports still queued
        except KafkaException as exc:  # a fatal state poll() reports: the caller's own error says what to do
            log.debug("poll after a failed transaction: %s", describe(exc))
        for refusal in refusals:
            if refusal.failed.source is not None:
                self._refused[refusal.failed.source] = refusal
        refusals.clear()

    # ---- calls ------------------------------------------------------------------------------------------------
    def _abort(self, producer: TransactionalProducer, *, reason: str) -> None:
        deadline = self._clock() + self._timeout
        try:
            self._retrying("abort_transaction", lambda: producer.abort_transaction(self._call_timeout), deadline)
        except CallAbandoned as exc:
            self._producer = None
            raise ProducerUnusableError(str(exc)) from exc
        except KafkaException as exc:
            raise ProducerUnusableError(f"cannot abort after {reason}: {describe(exc)}") from exc
        finally:
            self.in_transaction = False

    def _retrying(self, what: str, call: Callable[[], T], deadline: float) -> T:
        """``call()`` under the watchdog, again after a back-off while Kafka says the error is retriable and the
        transaction still has time."""
        delay = 0.1
        while True:
            try:
                return self._watchdog.call(what, call, timeout_s=self._call_timeout)
            except KafkaException as exc:
                error = kafka_error(exc)
                if error.fatal() or error.txn_requires_abort() or not error.retriable():
                    raise
                if self._clock() + delay >= deadline:
                    raise
                self._note_failure(what, error)
                if self._stop.wait(delay):
                    raise
                delay = min(delay * 2, 1.0)

    def _note_failure(self, what: str, error: KafkaError) -> None:
        if means_unreachable(error):
            self._outage.failed(f"{what}: {describe(error)}")
        elif not self._outage.absorb(f"{what}: {describe(error)}"):
            log.warning("%s failed: %s", what, describe(error))
