"""Stand-ins for Kafka messages and the ONNX engine, for unit tests of the scorer's logic."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from fraudstream.kafka.outage import OutageLog
from fraudstream.kafka.records import OutRecord
from fraudstream.kafka.watchdog import Watchdog
from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES, SEED_EXAMPLE
from scorer.transaction import Transactor

AMOUNT = FEATURES.index("Amount")
TOPIC = "transactions"


@dataclass
class FakeMessage:
    """Quacks like confluent_kafka.Message for what the scorer reads."""

    _value: bytes | None
    _offset: int = 0
    _partition: int = 0
    _key: bytes | None = None
    _topic: str = "transactions"
    _error: KafkaError | None = None
    _headers: list[tuple[str, bytes]] | None = None

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def error(self) -> KafkaError | None:
        return self._error


@dataclass
class AmountEngine:
    """Scores a transaction as Amount / 1000 (so tests choose who is flagged); counts its calls."""

    calls: list[int] = field(default_factory=list)

    def fraud_probability(self, features: np.ndarray) -> np.ndarray:
        assert features.dtype == np.float32
        self.calls.append(len(features))
        return features[:, AMOUNT].astype(np.float64) / 1000.0


def fake_model(version: str = "7", threshold: float = 0.5, engine: AmountEngine | None = None) -> FraudModel:
    return FraudModel(name="fraud-rf", version=version, threshold=threshold, engine=engine or AmountEngine())  # type: ignore[arg-type]


def transaction_bytes(index: int, amount: float, label: int | None = 0) -> bytes:
    body: dict[str, object] = {
        **SEED_EXAMPLE,
        "Amount": amount,
        "transaction_id": f"creditcard.csv:{index}",
        "event_time": datetime(2024, 5, 1, 12, 0, index % 60, tzinfo=timezone.utc).isoformat(),
    }
    if label is not None:
        body["label"] = label
    return orjson.dumps(body)


Refusal = Callable[[str, OutRecord], KafkaError | None]


class FakeProducer:
    """Records the transactional calls; ``fail[name]`` holds exceptions to raise on the next calls of ``name``.

    ``refuse_at_produce`` / ``refuse_at_delivery`` (topic, record) -> KafkaError or None play Kafka refusing a
    record: at ``produce()`` (raised there) or at delivery (reported to on_delivery during commit, which then
    fails with an abortable error, as librdkafka does).
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.produced: list[tuple[str, OutRecord]] = []
        self.committed: list[tuple[str, OutRecord]] = []
        self.offsets: list[TopicPartition] = []
        self.committed_positions: dict[int, int] = {}
        """partition -> offset, as the committed transactions left them (what a group coordinator would hold)."""
        self.fail: dict[str, deque[BaseException]] = {}
        self.full_queue_times = 0
        self.refuse_at_produce: Refusal = lambda topic, record: None
        self.refuse_at_delivery: Refusal = lambda topic, record: None
        self._pending: list[tuple[str, OutRecord, Any]] = []
        self.block: dict[str, threading.Event] = {}  # a call named here blocks until the event is set

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.block:
            self.block[name].wait()
        pending = self.fail.get(name)
        if pending:
            raise pending.popleft()

    def init_transactions(self, timeout: float) -> None:
        self._call("init")

    def begin_transaction(self) -> None:
        self._call("begin")
        self._pending = []

    def produce(self, topic: str, value: Any = None, key: Any = None, headers: Any = None, **kwargs: Any) -> None:
        if self.full_queue_times:
            self.full_queue_times -= 1
            raise BufferError("queue full")
        record = OutRecord(key, value, headers)
        refused = self.refuse_at_produce(topic, record)
        if refused is not None:
            raise KafkaException(refused)
        self.produced.append((topic, record))
        self._pending.append((topic, record, kwargs.get("on_delivery")))

    def poll(self, timeout: float) -> int:
        self.calls.append("poll")
        return 0

    def send_offsets_to_transaction(self, positions: list[TopicPartition], metadata: Any, timeout: float) -> None:
        self._call("send_offsets")
        assert metadata == "group-metadata"
        self.offsets = positions

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit")
        refused = None
        for topic, record, on_delivery in self._pending:
            error = self.refuse_at_delivery(topic, record)
            refused = refused or error
            if on_delivery is not None:
                on_delivery(error, None)
        if refused is not None:
            raise KafkaException(KafkaError(refused.code(), refused.str(), txn_requires_abort=True))
        self.committed += [(topic, record) for topic, record, _ in self._pending]
        self._pending = []
        self.committed_positions.update({tp.partition: tp.offset for tp in self.offsets})

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort")
        self._pending = []


class FakeConsumer:
    """The consumer calls the scorer makes; ``batches`` are returned by successive consume() calls."""

    def __init__(self, positions: dict[int, int] | None = None, committed: dict[int, int] | None = None) -> None:
        self.positions = positions if positions is not None else {}
        self.committed_offsets = committed or {}
        self.seeks: list[tuple[int, int]] = []
        self.batches: deque[list[FakeMessage]] = deque()
        self.subscribed: list[str] = []
        self.callbacks: dict[str, Any] = {}
        self.closed = False
        self.on_empty: Any = None  # called when no batch is left (e.g. to set the stop flag)

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.subscribed = topics
        self.callbacks = callbacks
        partitions = [TopicPartition(TOPIC, p) for p in (0, 1, 2)]
        self.positions = {p: -1001 for p in (0, 1, 2)}
        callbacks["on_assign"](self, partitions)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        if not self.batches:
            if self.on_empty:
                self.on_empty()
            return []
        batch = self.batches.popleft()[:num_messages]
        for message in batch:
            self.positions[message.partition()] = message.offset() + 1
        return batch

    def close(self) -> None:
        self.closed = True
        if self.callbacks:
            self.callbacks["on_revoke"](self, [TopicPartition(TOPIC, p) for p in self.positions])

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.positions]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, tp.partition, self.positions[tp.partition]) for tp in partitions]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        offsets = self.committed_offsets
        return [TopicPartition(TOPIC, tp.partition, offsets.get(tp.partition, -1001)) for tp in partitions]

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append((partition.partition, partition.offset))

    def consumer_group_metadata(self) -> str:
        return "group-metadata"

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float, cached: bool) -> tuple[int, int]:
        return 0, self.high_watermark

    high_watermark = 100


class LogConsumer(FakeConsumer):
    """A consumer over a log of messages: it serves them from its positions, at most ``per_call`` a consume(), and
    a seek moves the position back (so a rewind delivers the messages again, as Kafka does). Committed offsets
    are those ``producer``'s committed transactions sent; ``on_empty`` runs when nothing is left to read."""

    def __init__(self, log: list[FakeMessage], producer: FakeProducer, per_call: int = 1_000_000) -> None:
        super().__init__()
        self.log = log
        self.producer = producer
        self.per_call = per_call
        self.calls: list[tuple[int, float]] = []

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.calls.append((num_messages, timeout))
        batch = [m for m in self.log if m.offset() >= max(0, self.positions.get(m.partition(), 0))]
        batch = batch[: min(num_messages, self.per_call)]
        if not batch and self.on_empty:
            self.on_empty()
        for message in batch:
            self.positions[message.partition()] = message.offset() + 1
        return batch

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        offsets = self.producer.committed_positions
        return [TopicPartition(TOPIC, tp.partition, offsets.get(tp.partition, -1001)) for tp in partitions]

    def seek(self, partition: TopicPartition) -> None:
        super().seek(partition)
        self.positions[partition.partition] = partition.offset

    def all_committed(self) -> bool:
        ends: dict[int, int] = {}
        for message in self.log:
            ends[message.partition()] = max(ends.get(message.partition(), 0), message.offset() + 1)
        return all(self.producer.committed_positions.get(p, -1) >= end for p, end in ends.items())


def kafka_exception(*, fatal: bool = False, retriable: bool = False, abort: bool = False) -> KafkaException:
    code = KafkaError._FENCED if fatal else KafkaError._TIMED_OUT if retriable else KafkaError._STATE
    return KafkaException(KafkaError(code, "test error", fatal=fatal, retriable=retriable, txn_requires_abort=abort))


def refusal(code: int = KafkaError.MSG_SIZE_TOO_LARGE, text: str = "Broker: Message size too large") -> KafkaError:
    return KafkaError(code, text)


def make_transactor(
    producer: FakeProducer,
    consumer: FakeConsumer,
    *,
    stop: threading.Event | None = None,
    watchdog: Watchdog | None = None,
    producers: list[FakeProducer] | None = None,
    **options: Any,
) -> Transactor:
    """A Transactor over fakes; ``producers`` (if given) are handed out one per start(), else ``producer`` always."""
    stop = stop or threading.Event()
    queue = deque(producers or [])

    def factory() -> FakeProducer:
        return queue.popleft() if queue else producer

    return Transactor(
        factory,  # type: ignore[arg-type]
        consumer,
        alerts_topic="alerts",
        dlq_topic="dlq",
        timeout_s=options.pop("timeout_s", 5),
        watchdog=watchdog or Watchdog("test", stop=stop, margin_s=2.0),
        outage=OutageLog("test"),
        stop=stop,
        **options,
    )
