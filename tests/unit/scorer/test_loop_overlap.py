"""The overlapped loop with fake clients: batch n+1 is scored while batch n commits, yet one transaction at a
time; an abort drops the batch taken meanwhile and both come again; rebalance callbacks never run inside a
transaction; the observer hears of a batch only after its predecessor's outcome; batches close when idle."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from fraudstream.kafka.records import OutRecord
from scorer.batch import ScoredBatch

from .fakes import TOPIC, AmountEngine, FakeProducer, LogConsumer, fake_model, kafka_exception
from .test_loop import FakeRegistry, Harness, messages


class EngineRegistry(FakeRegistry):
    """Every version scores with one engine, so a test sees each scoring call."""

    def __init__(self, engine: AmountEngine) -> None:
        super().__init__("1")
        self.engine = engine

    def load(self, version: str) -> Any:
        return fake_model(version=version, threshold=0.5, engine=self.engine)


class OrderObserver:
    """Writes down every call, to check their order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def records(self, batch: ScoredBatch) -> list[tuple[str, OutRecord]]:
        self.events.append(("records", _first(batch)))
        return []

    def committed(self, batch: ScoredBatch) -> None:
        self.events.append(("committed", _first(batch)))

    def aborted(self, batch: ScoredBatch) -> None:
        self.events.append(("aborted", _first(batch)))

    def pending(self, *, final: bool) -> list[tuple[str, OutRecord]]:
        return []  # nothing of its own to publish when idle

    def prepare(self) -> None:
        return None


def _first(batch: ScoredBatch) -> int:
    return batch.consumed


def log_harness(log: list[Any], *, per_call: int, **options: Any) -> tuple[Harness, LogConsumer, FakeProducer]:
    producer = FakeProducer()
    consumer = LogConsumer(log, producer, per_call=per_call)
    harness = Harness(FakeRegistry("1"), consumer=consumer, producer=producer, **options)
    consumer.on_empty = lambda: consumer.all_committed() and harness.stop.set()  # stop once all is committed
    return harness, consumer, producer


def alert_ids(harness: Harness) -> list[str]:
    return [str(alert["transaction_id"]) for alert in harness.alerts()]


def test_the_next_batch_is_scored_while_the_previous_commits_but_transactions_never_overlap() -> None:
    engine = AmountEngine()
    producer = FakeProducer()
    consumer = LogConsumer(messages(0, 30), producer, per_call=10)
    harness = Harness(EngineRegistry(engine), consumer=consumer, producer=producer)
    consumer.on_empty = lambda: consumer.all_committed() and harness.stop.set()
    release = producer.block["commit"] = threading.Event()
    scored_while_blocked: list[int] = []

    def watch() -> None:  # while the first commit is held: the loop goes on scoring the second batch
        while len(engine.calls) < 2:
            threading.Event().wait(0.005)
        scored_while_blocked.extend(engine.calls)
        release.set()

    threading.Thread(target=watch, daemon=True).start()
    status = harness.loop.run()

    assert scored_while_blocked == [10, 10]
    assert (status.batches, status.scored, status.aborted) == (3, 30, 0)
    transaction_calls = [c for c in producer.calls if c in ("begin", "commit", "abort")]
    assert transaction_calls == ["begin", "commit"] * 3  # one transaction at a time
    assert alert_ids(harness) == [f"creditcard.csv:{i}" for i in range(0, 30, 5)]


def test_an_abort_drops_the_batch_taken_meanwhile_and_both_are_scored_again_once() -> None:
    harness, consumer, producer = log_harness(messages(0, 30), per_call=10)
    producer.fail["commit"] = deque([kafka_exception(abort=True)])

    status = harness.loop.run()

    assert (status.aborted, status.batches, status.scored) == (1, 3, 30)
    assert alert_ids(harness) == [f"creditcard.csv:{i}" for i in range(0, 30, 5)]  # each once, in order
    assert sorted(consumer.seeks) == [
        (0, OFFSET_BEGINNING),
        (1, OFFSET_BEGINNING),
        (2, OFFSET_BEGINNING),
    ]  # never committed
    assert producer.committed_positions == {0: 28, 1: 29, 2: 30}


def test_the_observer_hears_of_a_batch_only_after_the_previous_outcome() -> None:
    observer = OrderObserver()
    harness, _, producer = log_harness(messages(0, 30), per_call=10, observer=observer)
    producer.fail["commit"] = deque([kafka_exception(abort=True)])

    harness.loop.run()

    kinds = [kind for kind, _ in observer.events]
    # records(1) aborted(1): batch 2 (taken meanwhile) is dropped unheard of; then 1, 2, 3 each committed.
    assert kinds == ["records", "aborted"] + ["records", "committed"] * 3


def test_a_fenced_producer_drops_the_batch_taken_meanwhile_and_all_is_scored_once() -> None:
    harness, _, producer = log_harness(messages(0, 30), per_call=10)
    producer.fail["commit"] = deque([kafka_exception(fatal=True)])

    status = harness.loop.run()

    assert status.replaced == 1
    assert (status.batches, status.scored) == (3, 30)
    assert alert_ids(harness) == [f"creditcard.csv:{i}" for i in range(0, 30, 5)]


class RevokingConsumer(LogConsumer):
    """Revokes partition 2 during its second consume() (as librdkafka runs on_revoke inside consume())."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_transaction_at_revoke: bool | None = None
        self.producer_calls_at_revoke: list[str] = []
        self.transactor: Any = None

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        if len(self.calls) == 1:
            self.callbacks["on_revoke"](self, [TopicPartition(TOPIC, 2)])
            self.in_transaction_at_revoke = self.transactor.in_transaction
            self.producer_calls_at_revoke = list(self.producer.calls)
            del self.positions[2]
            self.log = [m for m in self.log if m.partition() != 2]
        return super().consume(num_messages, timeout)


def test_a_revoke_waits_for_the_transaction_in_flight() -> None:
    producer = FakeProducer()
    consumer = RevokingConsumer(messages(0, 30), producer, per_call=15)
    harness = Harness(FakeRegistry("1"), consumer=consumer, producer=producer)
    consumer.transactor = harness.loop.transactor
    consumer.on_empty = lambda: consumer.all_committed() and harness.stop.set()
    release = producer.block["commit"] = threading.Event()
    threading.Timer(0.2, release.set).start()  # the first commit is slow: the revoke must wait for it

    harness.loop.run()

    assert consumer.in_transaction_at_revoke is False
    assert consumer.producer_calls_at_revoke.count("commit") == 1  # the first transaction had ended
    assert producer.committed_positions[2] == 15  # partition 2 handed over with its first batch committed


class MidBatchRevoke(LogConsumer):
    """Revokes partition 2 during the second consume() call of the first batch (after handing out some of its
    messages in the first call)."""

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        if len(self.calls) == 1:
            self.callbacks["on_revoke"](self, [TopicPartition(TOPIC, 2)])
            del self.positions[2]
            self.log = [m for m in self.log if m.partition() != 2]
        return super().consume(num_messages, timeout)


def test_messages_of_a_partition_revoked_while_a_batch_is_taken_are_left_to_its_next_owner() -> None:
    producer = FakeProducer()
    consumer = MidBatchRevoke(messages(0, 9), producer, per_call=3)
    harness = Harness(FakeRegistry("1"), consumer=consumer, producer=producer, linger_s=0.05)
    consumer.on_empty = lambda: consumer.all_committed() and harness.stop.set()

    status = harness.loop.run()

    # The first call took 0, 1, 2 (partition 2 holds 2): 2 is dropped, its offset never committed by this member.
    assert consumer.calls[:2] == [(100, 0.0), (97, 0.05)]
    assert (status.consumed, status.scored) == (6, 6)
    assert 2 not in producer.committed_positions
    assert producer.committed_positions == {0: 7, 1: 8}


class MidBatchLostAndBack(LogConsumer):
    """Loses partition 2 during the second consume() call of the first batch and gets it straight back (a session
    timeout, then the same static member rejoining): like librdkafka, the position restarts from the committed
    offset, so that call hands out partition 2's messages again."""

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        if len(self.calls) == 1:
            self.callbacks["on_lost"](self, [TopicPartition(TOPIC, 2)])
            self.callbacks["on_assign"](self, [TopicPartition(TOPIC, 2)])
            self.positions[2] = self.producer.committed_positions.get(2, 0)
        return super().consume(num_messages, timeout)


def test_a_partition_lost_and_assigned_back_while_a_batch_is_taken_loses_no_message() -> None:
    producer = FakeProducer()
    log = messages(0, 12)
    consumer = MidBatchLostAndBack(log, producer, per_call=3)
    harness = Harness(FakeRegistry("1"), consumer=consumer, producer=producer, linger_s=0.05)
    consumer.on_empty = lambda: consumer.all_committed() and harness.stop.set()

    status = harness.loop.run()

    # Every message scored in a committed batch exactly once: none skipped by a position past dropped messages.
    assert (status.consumed, status.scored) == (12, 12)
    assert producer.committed_positions == {0: 10, 1: 11, 2: 12}
    assert consumer.seeks  # the batch taken across the rebalance was dropped and the consumer rewound


def test_a_batch_closes_as_soon_as_nothing_more_is_buffered() -> None:
    harness, consumer, _ = log_harness(messages(0, 7), per_call=1_000, batch_timeout_s=0.3)

    harness.loop.run()

    assert consumer.calls[0] == (100, 0.0)  # what is buffered, without waiting
    assert harness.loop.status.batches == 1


def test_an_idle_consumer_waits_for_a_first_message_then_takes_what_came_with_it() -> None:
    producer = FakeProducer()
    consumer = LogConsumer([], producer)
    harness = Harness(FakeRegistry("1"), consumer=consumer, producer=producer, batch_timeout_s=0.3, linger_s=0.02)
    arrivals = deque([messages(0, 4)])

    def empty() -> None:
        if arrivals:
            consumer.log += arrivals.popleft()  # arrives during the wait for a first message
        elif consumer.all_committed():
            harness.stop.set()

    consumer.on_empty = empty
    harness.loop.run()

    assert consumer.calls[:3] == [(100, 0.0), (1, 0.3), (99, 0.02)]
    assert (harness.loop.status.batches, harness.loop.status.scored) == (1, 4)  # the first, and what came with it


def test_with_the_rule_off_a_batch_waits_for_the_timeout() -> None:
    harness, consumer, _ = log_harness(messages(0, 7), per_call=1_000, close_when_idle=False, batch_timeout_s=0.3)

    harness.loop.run()

    assert consumer.calls[0] == (100, 0.3)


def test_without_overlap_each_batch_commits_in_the_loop_thread() -> None:
    threads: set[str] = set()
    harness, _, producer = log_harness(messages(0, 20), per_call=10, overlap=False)
    original = producer.commit_transaction

    def commit(timeout: float) -> None:
        threads.add(threading.current_thread().name)
        original(timeout)

    producer.commit_transaction = commit  # type: ignore[method-assign]
    status = harness.loop.run()

    assert (status.batches, status.scored) == (2, 20)
    assert all(not name.startswith("scorer-commit") for name in threads)
