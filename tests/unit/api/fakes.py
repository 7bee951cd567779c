"""Stand-ins for the parts the API unit tests keep out: the MLflow registry and the Kafka consumer."""

from __future__ import annotations

import time
import zlib
from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from fraudstream.model.engine import OnnxEngine
from fraudstream.model.explain import ExplainerLoader, ExplainPolicy, ForestExplainer
from fraudstream.model.registry import VersionRef
from fraudstream.model.serving import FraudModel

from ..kafka_stats import stats_json

MODEL_NAME = "fraud-unit"
TOPIC = "fraud-alerts"


class FakeRegistry:
    """A registry whose alias the test moves by hand; loads real FraudModels built around one ONNX engine."""

    def __init__(self, engine: OnnxEngine | None, threshold: float = 0.5, forest: Any = None) -> None:
        self.engine = engine
        self.threshold = threshold
        self.forest = forest  # the fitted pipeline: each loaded version explains with it, as the real registry does
        self.alias_version: str | None = "1" if engine is not None else None
        self.loads: list[str] = []

    def serving_version(self) -> VersionRef | None:
        if self.alias_version is None:
            return None
        return VersionRef(name=MODEL_NAME, version=self.alias_version, run_id=f"run-{self.alias_version}")

    def load(self, version: str) -> FraudModel:
        assert self.engine is not None
        self.loads.append(version)
        explainer = None
        if self.forest is not None:
            forest = self.forest
            explainer = ExplainerLoader(
                lambda: ForestExplainer(forest, ExplainPolicy(exact_budget_s=60.0)), label=f"{MODEL_NAME} v{version}"
            )
        return FraudModel(
            name=MODEL_NAME,
            version=version,
            threshold=self.threshold,
            engine=self.engine,
            run_id=f"run-{version}",
            explainer=explainer,
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


class FakeFeedbackTopic:
    """An in-memory fraud-feedback topic with the producer and consumer the verdicts' publisher uses.

    ``lose_reports`` next records are written but their delivery report never comes (the process "died" after the
    produce); ``refuse`` next records are not written and reported failed (the broker said no).
    """

    def __init__(self, partitions: int = 3) -> None:
        self.partitions: list[list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = [[] for _ in range(partitions)]
        self.lose_reports = 0
        self.refuse = 0
        self.producers: list[FakeFeedbackProducer] = []

    def records(self) -> list[tuple[int, int, bytes, bytes]]:
        """(partition, offset, key, value) of every record, partition by partition."""
        return [
            (partition, offset, key, value)
            for partition, log in enumerate(self.partitions)
            for offset, (key, value, _) in enumerate(log)
        ]

    def producer(self, config: dict[str, Any]) -> FakeFeedbackProducer:
        producer = FakeFeedbackProducer(self)
        self.producers.append(producer)
        return producer

    def consumer(self, config: dict[str, Any]) -> FakeFeedbackConsumer:
        return FakeFeedbackConsumer(self)


class _Delivered:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeFeedbackProducer:
    def __init__(self, topic: FakeFeedbackTopic) -> None:
        self.topic = topic
        self.queue: list[tuple[bytes, bytes, list[tuple[str, bytes]], Any]] = []

    def produce(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]], on_delivery: Any) -> None:
        self.queue.append((key, value, headers, on_delivery))

    def flush(self, timeout: float) -> int:
        while self.queue:
            key, value, headers, report = self.queue.pop(0)
            if self.topic.refuse:
                self.topic.refuse -= 1
                report("KafkaError{code=REQUEST_TIMED_OUT}", None)
                continue
            partition = zlib.crc32(key) % len(self.topic.partitions)
            log = self.topic.partitions[partition]
            log.append((key, value, headers))
            if self.topic.lose_reports:
                self.topic.lose_reports -= 1
                continue
            report(None, _Delivered(partition, len(log) - 1))
        return 0

    def purge(self, in_queue: bool = True, in_flight: bool = True) -> None:
        self.queue.clear()

    def __len__(self) -> int:
        return len(self.queue)


class _Record:
    def __init__(self, partition: int, offset: int, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self._partition, self._offset, self._key, self._value, self._headers = partition, offset, key, value, headers

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers


class FakeFeedbackConsumer:
    def __init__(self, topic: FakeFeedbackTopic) -> None:
        self.topic = topic
        self.positions: dict[int, int] = {}

    def list_topics(self, topic: str, timeout: float) -> Any:
        partitions = dict.fromkeys(range(len(self.topic.partitions)))
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions=partitions)})

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, len(self.topic.partitions[tp.partition])

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = {tp.partition: tp.offset for tp in partitions}

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.positions]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, tp.partition, self.positions[tp.partition]) for tp in partitions]

    def consume(self, num_messages: int, timeout: float) -> list[_Record]:
        out: list[_Record] = []
        for partition, offset in self.positions.items():
            log = self.topic.partitions[partition]
            for index in range(offset, len(log)):
                out.append(_Record(partition, index, *log[index]))
            self.positions[partition] = len(log)
        return out

    def close(self) -> None:
        pass


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
