"""The loop's batch logic with fake clients: model wait before subscribing, hot reload between batches,
abort-and-retry, clean stop."""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from dataclasses import dataclass

import orjson
import pytest

from fraudstream.model.serving import FraudModel
from fraudstream.model.watcher import ModelWatcher
from scorer.exceptions import FatalKafkaError
from scorer.loop import ScorerLoop, ScorerStatus
from scorer.metrics import ScorerMetrics
from scorer.transaction import Transactor

from .fakes import FakeConsumer, FakeMessage, FakeProducer, fake_model, kafka_exception, transaction_bytes


@dataclass(frozen=True)
class Ref:
    version: str


class FakeRegistry:
    """The alias points to ``serving`` (None: no production model yet)."""

    def __init__(self, serving: str | None) -> None:
        self.serving = serving
        self.asked = 0

    def serving_version(self) -> Ref | None:
        self.asked += 1
        return Ref(self.serving) if self.serving else None

    def load(self, version: str) -> FraudModel:
        return fake_model(version=version, threshold=0.5)


class Harness:
    def __init__(self, registry: FakeRegistry) -> None:
        self.stop = threading.Event()
        self.consumer = FakeConsumer()
        self.consumer.on_empty = self.stop.set  # stop once every queued batch is consumed
        self.producer = FakeProducer()
        self.registry = registry
        self.metrics = ScorerMetrics()
        self.statuses: list[ScorerStatus] = []
        transactor = Transactor(
            self.producer, self.consumer, alerts_topic="alerts", dlq_topic="dlq", timeout_s=5, sleep=lambda _: None
        )
        self.loop = ScorerLoop(
            consumer=self.consumer,
            transactor=transactor,
            watcher=ModelWatcher(registry, interval_s=0.0),  # check the alias before every batch
            metrics=self.metrics,
            topic="transactions",
            batch_size=100,
            batch_timeout_s=0.01,
            stop=self.stop,
            on_status=lambda status: self.statuses.append(dataclasses.replace(status)),
            status_interval_s=0.0,
            model_wait_s=0.001,
        )

    def alerts(self) -> list[dict[str, object]]:
        return [orjson.loads(record.value) for topic, record in self.producer.produced if topic == "alerts"]


def messages(start: int, count: int, fraud_every: int = 5) -> list[FakeMessage]:
    return [
        FakeMessage(transaction_bytes(i, 900.0 if i % fraud_every == 0 else 10.0), _offset=i, _partition=i % 3)
        for i in range(start, start + count)
    ]


def test_batches_are_scored_committed_and_counted() -> None:
    harness = Harness(FakeRegistry("3"))
    harness.consumer.batches.extend([messages(0, 10), [*messages(10, 5), FakeMessage(b"junk", _offset=99)]])

    status = harness.loop.run()

    assert harness.consumer.subscribed == ["transactions"]
    assert harness.producer.calls.count("commit") == 2
    assert (status.batches, status.consumed, status.scored, status.alerts, status.dead_letters) == (2, 16, 15, 3, 1)
    assert {alert["model_version"] for alert in harness.alerts()} == {"3"}
    assert harness.metrics.value("fraudstream_scorer_alerts_total") == 3
    assert harness.metrics.value("fraudstream_scorer_dlq_total", kind="invalid_json") == 1
    assert harness.metrics.value("fraudstream_scorer_model_version") == 3
    assert harness.consumer.closed


def test_no_partition_is_held_while_waiting_for_a_production_model() -> None:
    registry = FakeRegistry(None)
    harness = Harness(registry)
    harness.consumer.batches.append(messages(0, 5))

    subscribed_while_waiting: list[list[str]] = []

    def promote_later() -> None:
        while registry.asked < 5:
            harness.stop.wait(0.001)
        subscribed_while_waiting.append(list(harness.consumer.subscribed))
        registry.serving = "1"

    promoter = threading.Thread(target=promote_later)
    promoter.start()
    status = harness.loop.run()
    promoter.join()

    assert subscribed_while_waiting == [[]]  # not in the group while there was no model
    assert harness.statuses[0].waiting_for_model
    assert status.model_version == "1"
    assert status.scored == 5


def test_a_stop_while_waiting_for_a_model_returns_without_subscribing() -> None:
    harness = Harness(FakeRegistry(None))
    harness.stop.set()
    status = harness.loop.run()
    assert status.model_version is None
    assert harness.consumer.subscribed == []
    assert harness.consumer.closed


def test_a_new_version_takes_over_between_batches() -> None:
    registry = FakeRegistry("1")
    harness = Harness(registry)
    harness.consumer.batches.extend([messages(0, 10), messages(10, 10)])
    original_commit = harness.loop.transactor.commit

    def commit_then_promote(batch):  # type: ignore[no-untyped-def]
        committed = original_commit(batch)
        registry.serving = "2"  # the alias moves while the first batch is being committed
        return committed

    harness.loop.transactor.commit = commit_then_promote  # type: ignore[method-assign]
    harness.loop.run()

    versions = [(alert["transaction_id"], alert["model_version"]) for alert in harness.alerts()]
    assert versions == [
        ("creditcard.csv:0", "1"),
        ("creditcard.csv:5", "1"),
        ("creditcard.csv:10", "2"),
        ("creditcard.csv:15", "2"),
    ]


def test_an_aborted_batch_is_rewound_counted_and_not_reported_as_committed() -> None:
    harness = Harness(FakeRegistry("1"))
    harness.consumer.committed_offsets = {0: 0, 1: 0, 2: 0}
    harness.producer.fail["commit"] = deque([kafka_exception(abort=True)])
    harness.consumer.batches.append(messages(0, 6))

    status = harness.loop.run()

    assert status.aborted == 1
    assert (status.batches, status.consumed, status.alerts) == (0, 0, 0)
    assert sorted(harness.consumer.seeks) == [(0, 0), (1, 0), (2, 0)]
    assert harness.metrics.value("fraudstream_scorer_aborted_batches_total") == 1


def test_a_crash_inside_a_transaction_aborts_it() -> None:
    harness = Harness(FakeRegistry("1"))
    harness.producer.fail["commit"] = deque([KeyboardInterrupt()])
    harness.consumer.batches.append(messages(0, 3))

    with pytest.raises(KeyboardInterrupt):
        harness.loop.run()

    assert harness.producer.calls[-1] == "abort"
    assert harness.consumer.closed


def test_a_fatal_consumer_error_stops_the_loop_with_a_clear_error() -> None:
    harness = Harness(FakeRegistry("1"))

    def fenced(num_messages: int, timeout: float) -> list[FakeMessage]:
        raise kafka_exception(fatal=True)

    harness.consumer.consume = fenced  # type: ignore[method-assign]
    with pytest.raises(FatalKafkaError, match="the consumer cannot go on: test error"):
        harness.loop.run()
    assert harness.consumer.closed
