"""The loop's batch logic with fake clients: model wait before subscribing, hot reload between batches,
abort-and-retry, clients replaced in-process, readiness, and a stop honoured in every state."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass

import orjson
import pytest
from confluent_kafka import KafkaError

from fraudstream.kafka.health import ConsumerHealth
from fraudstream.kafka.outage import ClientEvents, OutageLog
from fraudstream.kafka.records import OutRecord
from fraudstream.kafka.watchdog import Watchdog
from fraudstream.model.explain import ExplainerLoader, ForestExplainer
from fraudstream.model.serving import FraudModel
from fraudstream.model.watcher import ModelWatcher
from scorer.batch import ScoredBatch
from scorer.loop import ScorerLoop, ScorerStatus
from scorer.metrics import ScorerMetrics

from ..kafka_stats import stats_json
from .fakes import (
    FakeConsumer,
    FakeMessage,
    FakeProducer,
    LogConsumer,
    fake_model,
    kafka_exception,
    make_transactor,
    transaction_bytes,
)


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


class CountingObserver:
    """Counts the scored rows it saw, made permanent only on commit, and adds one record per batch."""

    def __init__(self) -> None:
        self.permanent = 0
        self.seen: list[int] = []
        self.aborts = 0
        self.on_their_own: dict[bool, list[bytes]] = {False: [], True: []}
        """What pending() returns (final: on a clean stop; not final: when idle), once each."""
        self.committed_alone: list[int] = []

    def records(self, batch: ScoredBatch) -> list[tuple[str, OutRecord]]:
        assert batch.model is not None
        scored = 0 if batch.rows is None else len(batch.rows.scores)  # None: nothing valid (dead letters only)
        self.seen.append(scored)
        return [("monitoring", OutRecord(key=b"m", value=str(scored).encode()))]

    def committed(self, batch: ScoredBatch) -> None:
        self.permanent += batch.scored
        if not batch.consumed:
            self.committed_alone.append(len(batch.extra))

    def aborted(self, batch: ScoredBatch) -> None:
        self.aborts += 1

    def pending(self, *, final: bool) -> list[tuple[str, OutRecord]]:
        values, self.on_their_own[final] = self.on_their_own[final], []
        return [("monitoring", OutRecord(key=b"m", value=value)) for value in values]

    def prepare(self) -> None:
        return None


class Harness:
    def __init__(
        self,
        registry: FakeRegistry,
        *,
        margin_s: float = 2.0,
        observer: CountingObserver | None = None,
        consumer: FakeConsumer | None = None,
        producer: FakeProducer | None = None,
        **loop_options: object,
    ) -> None:
        self.stop = threading.Event()
        self.consumer = consumer or FakeConsumer()
        self.consumer.on_empty = self.stop.set  # stop once every queued batch is consumed
        self.consumers = [self.consumer]
        self.producer = producer or FakeProducer()
        self.registry = registry
        self.metrics = ScorerMetrics()
        self.statuses: list[ScorerStatus] = []
        self.outage = OutageLog("test")
        watchdog = Watchdog("test", stop=self.stop, margin_s=margin_s)
        transactor = make_transactor(self.producer, self.consumer, stop=self.stop, watchdog=watchdog)
        self.loop = ScorerLoop(
            consumer_factory=self._next_consumer,
            transactor=transactor,
            watchdog=watchdog,
            health=ConsumerHealth(self.outage, "transactions"),
            watcher=ModelWatcher(registry, interval_s=0.0),  # check the alias before every batch
            metrics=self.metrics,
            topic="transactions",
            batch_size=100,
            batch_timeout_s=loop_options.pop("batch_timeout_s", 0.01),  # type: ignore[arg-type]
            stop=self.stop,
            on_status=lambda status: self.statuses.append(dataclasses.replace(status)),
            status_interval_s=0.0,
            model_wait_s=0.001,
            observer=observer,
            **loop_options,  # type: ignore[arg-type]
        )

    def _next_consumer(self) -> FakeConsumer:
        """The first consumer, then a fresh one (with the same queued batches) for each replacement."""
        if self.consumer.subscribed:
            fresh = FakeConsumer()
            fresh.batches, fresh.on_empty = self.consumer.batches, self.consumer.on_empty
            self.consumer = fresh
            self.consumers.append(fresh)
        return self.consumer

    def alerts(self) -> list[dict[str, object]]:
        return [orjson.loads(record.value) for topic, record in self.producer.committed if topic == "alerts"]


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
    assert harness.metrics.value("fraudstream_scorer_lag") == -1  # no statistics from the fake: unknown


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


class SlowExplainerRegistry(FakeRegistry):
    """Its model's reason codes load until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__("1")
        self.release = threading.Event()

    def load(self, version: str) -> FraudModel:
        def build() -> ForestExplainer:
            self.release.wait(10)
            raise RuntimeError("no forest in this test")  # built (failed): alerts go out without reasons

        model = fake_model(version=version, threshold=0.5)
        return dataclasses.replace(model, explainer=ExplainerLoader(build, label=f"v{version}", wait_s=10))


def test_the_group_is_joined_only_once_the_models_reason_codes_are_loaded() -> None:
    registry = SlowExplainerRegistry()
    harness = Harness(registry)
    harness.consumer.batches.append(messages(0, 5))
    subscribed_while_loading: list[list[str]] = []

    def release_later() -> None:
        time.sleep(0.3)
        subscribed_while_loading.append(list(harness.consumer.subscribed))
        registry.release.set()

    releaser = threading.Thread(target=release_later)
    releaser.start()
    status = harness.loop.run()
    releaser.join()

    assert subscribed_while_loading == [[]]  # no partition held while the explainer loaded
    assert harness.consumer.subscribed == ["transactions"]
    assert status.scored == 5


def test_a_stop_while_waiting_for_a_model_returns_without_subscribing() -> None:
    harness = Harness(FakeRegistry(None))
    harness.stop.set()
    status = harness.loop.run()
    assert status.model_version is None
    assert harness.consumer.subscribed == []  # never even built: no group was joined


def test_a_new_version_takes_over_between_batches() -> None:
    registry = FakeRegistry("1")
    harness = Harness(registry)
    harness.consumer.batches.extend([messages(0, 10), messages(10, 10), messages(20, 10)])
    original_commit = harness.loop.transactor.commit

    def commit_then_promote(batch, **options):  # type: ignore[no-untyped-def]
        committed = original_commit(batch, **options)
        registry.serving = "2"  # the alias moves while the first batch is being committed
        return committed

    harness.loop.transactor.commit = commit_then_promote  # type: ignore[method-assign]
    harness.loop.run()

    versions = {alert["transaction_id"]: alert["model_version"] for alert in harness.alerts()}
    assert [versions[f"creditcard.csv:{i}"] for i in (0, 5)] == ["1", "1"]
    # The second batch may be scored while the first commits (either version, but one for the whole batch);
    # the third is taken after the first's outcome is known, so after the alias moved.
    assert versions["creditcard.csv:10"] == versions["creditcard.csv:15"]
    assert [versions[f"creditcard.csv:{i}"] for i in (20, 25)] == ["2", "2"]


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


def test_an_observer_writes_in_the_batch_transaction_and_forgets_aborted_batches() -> None:
    observer = CountingObserver()
    harness = Harness(FakeRegistry("1"), observer=observer)
    harness.consumer.committed_offsets = {0: 0, 1: 0, 2: 0}
    harness.producer.fail["commit"] = deque([kafka_exception(abort=True)])
    harness.consumer.batches.extend([messages(0, 6), messages(0, 6), [FakeMessage(b"junk", _offset=50)]])

    status = harness.loop.run()

    # The second batch was taken while the first committed: dropped unseen when the first aborted (Kafka would
    # deliver both again after the rewind; this fake does not, see LogConsumer for that).
    assert (status.aborted, status.batches, status.scored) == (1, 1, 0)
    assert observer.seen == [6, 0]  # the aborted batch, then a dead letter alone
    assert (observer.aborts, observer.permanent) == (1, 0)
    assert [record.value for topic, record in harness.producer.committed if topic == "monitoring"] == [b"0"]


def test_an_observers_records_commit_on_their_own_when_idle_and_on_a_clean_stop() -> None:
    observer = CountingObserver()
    observer.on_their_own = {False: [b"idle"], True: [b"final"]}
    harness = Harness(FakeRegistry("1"), observer=observer)
    harness.consumer.batches.append(messages(0, 4))

    status = harness.loop.run()

    assert status.batches == 1
    assert observer.committed_alone == [1, 1]  # two transactions holding only the observer's record
    monitoring = [record.value for topic, record in harness.producer.committed if topic == "monitoring"]
    assert monitoring == [b"4", b"idle", b"final"]
    assert harness.producer.calls.count("commit") == 3


def test_a_crash_inside_a_transaction_aborts_it() -> None:
    harness = Harness(FakeRegistry("1"))
    harness.producer.fail["commit"] = deque([KeyboardInterrupt()])
    harness.consumer.batches.append(messages(0, 3))

    with pytest.raises(KeyboardInterrupt):
        harness.loop.run()

    assert harness.producer.calls[-1] == "abort"
    assert harness.consumer.closed


def test_a_fatal_consumer_error_replaces_the_consumer_and_scoring_goes_on() -> None:
    harness = Harness(FakeRegistry("1"))
    first = harness.consumer

    def fenced(num_messages: int, timeout: float) -> list[FakeMessage]:
        raise kafka_exception(fatal=True)  # e.g. FENCED_INSTANCE_ID

    first.consume = fenced  # type: ignore[method-assign]
    first.batches.append(messages(0, 5))

    status = harness.loop.run()

    assert first.closed
    assert len(harness.consumers) == 2
    assert harness.consumers[1].subscribed == ["transactions"]
    assert status.replaced == 1
    assert status.scored == 5
    assert harness.metrics.value("fraudstream_scorer_replaced_clients_total", client="consumer") == 1


def test_a_fatal_error_told_only_through_error_cb_replaces_the_consumer() -> None:
    harness = Harness(FakeRegistry("1"))
    events = ClientEvents(harness.outage)
    harness.loop._events = events
    first = harness.consumer
    original = first.consume

    def fenced_while_rejoining(num_messages: int, timeout: float) -> list[FakeMessage]:
        # librdkafka, after a session timeout: "Static consumer fenced by other consumer with same
        # group.instance.id", reported to error_cb as _FATAL (without the fatal flag), nothing from consume()
        events.error(KafkaError(KafkaError._FATAL, "Static consumer fenced"))
        first.consume = original  # type: ignore[method-assign]
        return []

    first.consume = fenced_while_rejoining  # type: ignore[method-assign]
    first.batches.append(messages(0, 5))

    status = harness.loop.run()

    assert first.closed
    assert status.replaced == 1
    assert status.scored == 5


def test_a_fenced_producer_is_replaced_in_process_and_the_batch_scored_again() -> None:
    producer = FakeProducer()
    consumer = LogConsumer(messages(0, 10), producer)  # after the rewind the batch comes again
    harness = Harness(FakeRegistry("1"), consumer=consumer, producer=producer)
    consumer.on_empty = lambda: consumer.all_committed() and harness.stop.set()
    harness.producer.fail["commit"] = deque([kafka_exception(fatal=True)])

    status = harness.loop.run()

    assert harness.producer.calls.count("init") == 2  # the replacement registered the same transactional.id
    assert status.replaced == 1
    assert (status.batches, status.scored, status.alerts) == (1, 10, 2)
    assert [a["transaction_id"] for a in harness.alerts()] == ["creditcard.csv:0", "creditcard.csv:5"]


def test_a_stop_is_honoured_within_seconds_while_a_kafka_call_is_stuck() -> None:
    harness = Harness(FakeRegistry("1"), margin_s=600.0)  # the watchdog alone would wait ten minutes
    harness.consumer.on_empty = None
    stuck = threading.Event()
    harness.producer.block["send_offsets"] = stuck
    harness.consumer.batches.append(messages(0, 3))
    runner = threading.Thread(target=harness.loop.run)
    runner.start()
    while "send_offsets" not in harness.producer.calls:
        time.sleep(0.01)

    asked = time.monotonic()
    harness.stop.set()
    runner.join(10)

    assert not runner.is_alive()
    assert time.monotonic() - asked < 3.0
    assert harness.consumer.closed
    stuck.set()


def test_readiness_says_what_is_missing_then_ready() -> None:
    harness = Harness(FakeRegistry("1"))
    report = harness.loop.readiness()
    assert not report.ready
    assert "no production model yet" in report.problems
    assert any("holds no partitions" in problem for problem in report.problems)

    harness.consumer.batches.append(messages(0, 3))
    harness.consumer.on_empty = None
    harness.stop.clear()
    readiness: list[object] = []

    def stop_when_scored() -> None:
        while harness.loop.status.scored < 3:
            time.sleep(0.01)
        harness.loop.health.on_stats(stats_json("transactions", {0: (3, 3), 1: (0, 0), 2: (0, 0)}))
        readiness.append(harness.loop.readiness())
        harness.outage.failed("test outage")
        readiness.append(harness.loop.readiness())
        harness.stop.set()

    watcher = threading.Thread(target=stop_when_scored)
    watcher.start()
    harness.loop.run()
    watcher.join()

    ready, outage = readiness
    assert ready.ready, ready.problems  # type: ignore[attr-defined]
    assert ready.partitions == 3  # type: ignore[attr-defined]
    assert ready.lag == 0  # type: ignore[attr-defined]
    assert any("cannot reach the broker" in problem for problem in outage.problems)  # type: ignore[attr-defined]


def test_on_started_runs_once_after_the_model_and_the_group_before_the_first_batch() -> None:
    seen: list[tuple[bool, list[str], int]] = []

    def started() -> None:
        loaded = harness.loop.watcher.current is not None
        seen.append((loaded, list(harness.consumer.subscribed), harness.producer.calls.count("commit")))

    harness = Harness(FakeRegistry("3"), on_started=started)
    harness.consumer.batches.extend([messages(0, 10), messages(10, 10)])

    harness.loop.run()

    assert seen == [(True, ["transactions"], 0)]
    assert harness.producer.calls.count("commit") == 2
