"""Stand-ins for the parts the API unit tests keep out: the MLflow registry and the Kafka consumer."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from fraudstream.model.engine import OnnxEngine
from fraudstream.model.registry import VersionRef
from fraudstream.model.serving import FraudModel

from ..kafka_stats import stats_json

MODEL_NAME = "fraud-unit"
TOPIC = "fraud-alerts"


class FakeRegistry:
    """A registry whose alias the test moves by hand; loads real FraudModels built around one ONNX engine."""

    def __init__(self, engine: OnnxEngine | None, threshold: float = 0.5) -> None:
        self.engine = engine
        self.threshold = threshold
        self.alias_version: str | None = "1" if engine is not None else None
        self.loads: list[str] = []

    def serving_version(self) -> VersionRef | None:
        if self.alias_version is None:
            return None
        return VersionRef(name=MODEL_NAME, version=self.alias_version, run_id=f"run-{self.alias_version}")

    def load(self, version: str) -> FraudModel:
        assert self.engine is not None
        self.loads.append(version)
        return FraudModel(
            name=MODEL_NAME, version=version, threshold=self.threshold, engine=self.engine, run_id=f"run-{version}"
        )


class FakeRunMetrics:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def run_metrics(self, run_id: str) -> dict[str, float]:
        self.calls.append(run_id)
        return {"test_f1": 0.87, "test_precision": 0.9, "test_recall": 0.84}


class FakeMessage:
    def __init__(
        self,
        partition: int,
        offset: int,
        value: bytes | None,
        error: KafkaError | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self._partition, self._offset, self._value, self._error = partition, offset, value, error
        self._key, self._headers = key, headers

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def error(self) -> KafkaError | None:
        return self._error

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value


class FakeConsumer:
    """Hands out prepared batches; records commits and seeks the way the sink uses them. Like librdkafka, it
    serves its statistics (``stats_cb`` of its config) from inside consume(): positions and the end ``high``."""

    def __init__(self, batches: list[list[FakeMessage]], high: int = 0) -> None:
        self.batches = list(batches)
        self.high = high
        self.positions: dict[int, int] = {}
        self.commits: list[dict[int, int]] = []
        self.seeks: list[tuple[int, int]] = []
        self.config: dict[str, Any] = {}
        self.closed = False
        self.subscribed: list[str] = []

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed = topics

    def __call__(self, config: dict[str, Any]) -> FakeConsumer:
        """As a consumer factory: keep the configuration the sink built, hand out this consumer."""
        self.config = config
        return self

    def stats(self) -> str:
        positions = {tp.partition: tp.offset for tp in self.position(self.assignment())}
        return stats_json(TOPIC, {p: (offset, self.high) for p, offset in positions.items()})

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        if "stats_cb" in self.config:
            self.config["stats_cb"](self.stats())
        if not self.batches:
            time.sleep(min(timeout, 0.05))  # like a real consumer waiting for messages: no busy loop
            return []
        batch = self.batches.pop(0)
        for message in batch:
            if message.error() is None:
                self.positions[message.partition()] = message.offset() + 1
        return batch

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in range(3)]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, tp.partition, self.positions.get(tp.partition, -1001)) for tp in partitions]

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        """Batch commits are asynchronous (their outcome goes to on_commit), the final one on close synchronous."""
        self.commits.append({tp.partition: tp.offset for tp in offsets})
        if asynchronous and "on_commit" in self.config:
            self.config["on_commit"](None, offsets)

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.partition, tp.offset))
        self.positions[tp.partition] = tp.offset

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool) -> tuple[int, int]:
        return 0, self.high

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, tp.partition, -1001) for tp in partitions]

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """The sink's dead-letter producer: flush() delivers what was produced (failing while ``down``)."""

    def __init__(self) -> None:
        self.delivered: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self.down = False

    def produce(self, topic: str, value: Any = None, key: Any = None, **kwargs: Any) -> None:
        self._pending.append({"topic": topic, "value": value, "key": key, **kwargs})

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        pending, self._pending = self._pending, []
        for message in pending:
            error = KafkaError(KafkaError._MSG_TIMED_OUT, "broker down") if self.down else None
            if error is None:
                self.delivered.append(message)
            message["on_delivery"](error, None)
        return 0
