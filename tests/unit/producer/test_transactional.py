"""The transactional replay with fake transactional producers: commits by rows and by time, an abortable error
(abort, the same rows again), a producer that cannot go on (a new one, the same rows again), retries, a stop."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from fraudstream.data.source import synthetic_cache_path
from fraudstream.data.synth import write_synthetic
from fraudstream.kafka.outage import OutageLog
from fraudstream.settings import load_settings
from producer.bootstrap import bootstrap, build_transactional_producer
from producer.encode import Encoded
from producer.replay import ReplayOptions, ReplayStats
from producer.transactional import TRANSACTION_TIMEOUT_MS, TransactionalSender

Plan = dict[str, list[BaseException | None]]
"""call name -> what its successive calls do: None succeeds, an exception is raised."""


def abortable() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "records timed out", txn_requires_abort=True))


def fatal() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))


def timed_out() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._TIMED_OUT, "commit timed out", retriable=True))


@dataclass
class FakeCluster:
    """What the fake producers' transactions left on the topic (committed keys, in order) and who wrote them."""

    committed: list[bytes] = field(default_factory=list)
    producers: list[FakeTransactionalProducer] = field(default_factory=list)
    plans: deque[Plan] = field(default_factory=deque)
    refuse: set[bytes] = field(default_factory=set)
    """Keys refused at delivery (the transaction then needs an abort, as librdkafka does)."""
    log: list[bytes] = field(default_factory=list)
    """Every record produced, committed or not, at its offset (one partition)."""
    committed_offsets: set[int] = field(default_factory=set)
    checks: int = 0

    def check(self, topic: str, partition: int, offset: int, key: bytes) -> bool | None:
        """What a read_committed reader finds at ``offset``: the record itself when it was committed."""
        self.checks += 1
        return offset in self.committed_offsets and self.log[offset] == key

    def factory(self) -> FakeTransactionalProducer:
        producer = FakeTransactionalProducer(self, self.plans.popleft() if self.plans else {})
        self.producers.append(producer)
        return producer


class FakeTransactionalProducer:
    def __init__(self, cluster: FakeCluster, plan: Plan) -> None:
        self.cluster = cluster
        self.plan = {name: deque(steps) for name, steps in plan.items()}
        self.calls: list[str] = []
        self.open: list[dict[str, Any]] | None = None
        self.transactions: list[list[bytes]] = []
        self.refused = False
        self._unreported: list[dict[str, Any]] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        steps = self.plan.get(name)
        if steps:
            step = steps.popleft()
            if step is not None:
                raise step

    def init_transactions(self, timeout: float) -> None:
        self._call("init_transactions")
        for older in self.cluster.producers:  # fencing: an older producer's open transaction is aborted
            if older is not self:
                older.open = None

    def begin_transaction(self) -> None:
        self._call("begin_transaction")
        assert self.open is None, "begin_transaction with a transaction open"
        self.open = []
        self.refused = False

    def produce(self, topic: str, value: Any = None, key: Any = None, **kwargs: Any) -> None:
        self._call("produce")
        assert self.open is not None, "produce outside a transaction"
        record = {"topic": topic, "key": key, "value": value, "offset": len(self.cluster.log), **kwargs}
        self.cluster.log.append(key)
        self.open.append(record)
        self._unreported.append(record)

    def poll(self, timeout: float) -> int:
        self._report()
        return 0

    def _report(self) -> bool:
        """Deliver the queued records; False when one of the open transaction was refused."""
        for record in self._unreported:
            error = None
            if record["key"] in self.cluster.refuse:
                error, self.refused = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"), True
            record["on_delivery"](error, _Message(record["key"], record["offset"]))
        self._unreported = []
        return not self.refused

    def commit_transaction(self, timeout: float) -> None:
        delivered = self._report()
        steps = self.plan.get("commit_transaction")
        if steps and steps[0] == "commit-then-fatal":
            steps.popleft()
            self.calls.append("commit_transaction")
            self._commit()
            raise fatal()
        self._call("commit_transaction")
        if not delivered:
            raise abortable()
        self._commit()

    def _commit(self) -> None:
        assert self.open is not None
        keys = [record["key"] for record in self.open]
        self.cluster.committed += keys
        self.cluster.committed_offsets |= {record["offset"] for record in self.open}
        self.transactions.append(keys)
        self.open = None

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort_transaction")
        self.open = None
        self.refused = False


@dataclass
class _Message:
    _key: bytes
    _offset: int

    def key(self) -> bytes:
        return self._key

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def rows(count: int) -> list[Encoded]:
    return [Encoded(key=f"t.csv:{i}".encode(), value=b"{}", timestamp_ms=i) for i in range(count)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sender(cluster: FakeCluster, stop: threading.Event | None = None, **options: Any) -> TransactionalSender:
    return TransactionalSender(
        cluster.factory,
        topic="transactions",
        stats=ReplayStats(),
        stop=stop or threading.Event(),
        outage=OutageLog("replay"),
        **options,
    )


def send_all(tx: TransactionalSender, records: list[Encoded]) -> None:
    for record in records:
        assert tx.send(record)
        tx.poll(0)


def keys(count: int) -> list[bytes]:
    return [record.key for record in rows(count)]


# ---- commits ----------------------------------------------------------------------------------------------------
def test_a_transaction_commits_every_rows_rows_and_the_rest_at_the_end() -> None:
    cluster = FakeCluster()
    tx = sender(cluster, rows=10, interval_s=3600)
    send_all(tx, rows(25))
    assert cluster.committed == keys(20)
    assert tx.stats.delivered == 20  # delivered means committed: the last 5 are not yet
    assert tx.finish() == 0

    assert cluster.committed == keys(25)
    assert [len(keys) for keys in cluster.producers[0].transactions] == [10, 10, 5]
    assert (tx.stats.delivered, tx.stats.transactions, tx.stats.aborted, tx.stats.replaced) == (25, 3, 0, 0)


def test_a_transaction_commits_interval_after_its_first_row_even_when_not_full() -> None:
    cluster = FakeCluster()
    clock = Clock()
    tx = sender(cluster, rows=500, interval_s=0.25, clock=clock)  # binary fractions: exact clock arithmetic
    send_all(tx, rows(3))
    clock.now += 0.125
    tx.poll(0)
    assert cluster.committed == []  # not yet its time
    clock.now += 0.125
    tx.poll(0)
    assert cluster.committed == keys(3)
    assert tx.stats.delivered == 3

    assert tx.send(rows(4)[3])  # a new transaction, with a timer of its own
    clock.now += 0.125
    tx.poll(0)
    assert tx.stats.transactions == 1
    clock.now += 0.125
    tx.poll(0)
    assert (tx.stats.transactions, tx.stats.delivered, cluster.committed) == (2, 4, keys(4))


# ---- failures ---------------------------------------------------------------------------------------------------
def test_an_abortable_error_aborts_and_sends_the_same_rows_again_in_a_new_transaction() -> None:
    cluster = FakeCluster(plans=deque([{"commit_transaction": [abortable()]}]))
    tx = sender(cluster, rows=5, interval_s=3600)
    send_all(tx, rows(12))
    assert tx.finish() == 0

    producer = cluster.producers[0]
    assert len(cluster.producers) == 1  # no new producer for an abortable error
    assert producer.calls.count("abort_transaction") == 1
    assert producer.calls.count("produce") == 12 + 5  # the aborted five went again
    assert cluster.committed == keys(12)  # once each, in order
    assert (tx.stats.delivered, tx.stats.aborted, tx.stats.transactions, tx.stats.resent_uncertain) == (12, 1, 3, 0)


def test_a_fatal_error_builds_a_new_producer_that_sends_the_uncommitted_rows_again() -> None:
    # the 8th produce finds the producer fenced: rows 5..7 are in the open transaction
    cluster = FakeCluster(plans=deque([{"produce": [None] * 7 + [fatal()]}]))
    tx = sender(cluster, rows=5, interval_s=3600)
    send_all(tx, rows(12))
    assert tx.finish() == 0

    old, new = cluster.producers
    assert old.calls[-1] == "produce"  # nothing more was asked of the fenced one
    assert new.calls[:2] == ["init_transactions", "begin_transaction"]
    assert new.transactions[0] == keys(10)[5:]  # the uncommitted rows first, then the rest
    assert cluster.committed == keys(12)
    assert (tx.stats.delivered, tx.stats.replaced, tx.stats.aborted, tx.stats.resent_uncertain) == (12, 1, 0, 0)


def test_a_producer_lost_after_its_commit_went_through_is_replaced_and_the_topic_says_the_rows_are_in() -> None:
    cluster = FakeCluster(plans=deque([{"commit_transaction": ["commit-then-fatal"]}]))  # type: ignore[list-item]
    tx = sender(cluster, rows=4, interval_s=3600, check_committed=cluster.check)
    send_all(tx, rows(8))
    assert tx.finish() == 0

    assert len(cluster.producers) == 2
    assert cluster.checks == 1
    assert cluster.committed == keys(8)  # rows 0-3 once: not sent again
    assert (tx.stats.delivered, tx.stats.transactions, tx.stats.replaced, tx.stats.resent_uncertain) == (8, 2, 1, 0)


def test_a_producer_lost_in_a_commit_that_did_not_go_through_has_its_rows_sent_again() -> None:
    cluster = FakeCluster(plans=deque([{"commit_transaction": [fatal()]}]))
    tx = sender(cluster, rows=4, interval_s=3600, check_committed=cluster.check)
    send_all(tx, rows(8))
    assert tx.finish() == 0

    assert cluster.checks == 1
    assert cluster.committed == keys(8)
    assert (tx.stats.delivered, tx.stats.replaced, tx.stats.resent_uncertain) == (8, 1, 0)


def test_without_an_answer_from_the_topic_the_rows_in_doubt_go_again_counted_as_maybe_written_twice() -> None:
    cluster = FakeCluster(plans=deque([{"commit_transaction": ["commit-then-fatal"]}]))  # type: ignore[list-item]
    tx = sender(cluster, rows=4, interval_s=3600, check_committed=lambda *where: None)
    send_all(tx, rows(8))
    assert tx.finish() == 0

    assert cluster.committed == keys(4) + keys(8)  # rows 0-3 twice: what resent_uncertain warns of
    assert (tx.stats.delivered, tx.stats.replaced, tx.stats.resent_uncertain) == (8, 1, 4)


def test_a_retriable_commit_error_is_retried_on_the_same_producer_and_logged_as_an_outage() -> None:
    cluster = FakeCluster(plans=deque([{"commit_transaction": [timed_out(), timed_out()]}]))
    outage = OutageLog("replay")
    tx = TransactionalSender(
        cluster.factory,
        topic="transactions",
        stats=ReplayStats(),
        stop=threading.Event(),
        outage=outage,
        rows=3,
        interval_s=3600,
    )
    send_all(tx, rows(3))
    assert tx.finish() == 0
    assert cluster.producers[0].calls.count("commit_transaction") == 3
    assert (tx.stats.delivered, tx.stats.aborted, tx.stats.replaced) == (3, 0, 0)
    assert outage.outages == 1
    assert outage.reachable  # the commit closed it


def test_a_record_refused_at_delivery_is_counted_failed_and_left_out_of_the_retried_transaction() -> None:
    cluster = FakeCluster(refuse={b"t.csv:2"})
    tx = sender(cluster, rows=5, interval_s=3600)
    send_all(tx, rows(5))
    assert tx.finish() == 0
    assert cluster.committed == [key for key in keys(5) if key != b"t.csv:2"]
    assert (tx.stats.delivered, tx.stats.failed, tx.stats.aborted) == (4, 1, 1)
    assert tx.stats.first_error is not None
    assert "too large" in tx.stats.first_error


def test_once_stopped_an_uncommittable_transaction_is_given_up_after_flush_timeout() -> None:
    cluster = FakeCluster(plans=deque([{"commit_transaction": [timed_out()] * 1000}]))
    stop = threading.Event()
    tx = sender(cluster, stop, rows=500, interval_s=3600, flush_timeout_s=0.3)
    send_all(tx, rows(6))
    stop.set()
    assert tx.finish() == 6  # undelivered
    assert tx.stats.delivered == 0
    assert cluster.committed == []
    assert cluster.producers[0].calls[-1] == "abort_transaction"  # left aborted, not hanging


# ---- wiring -----------------------------------------------------------------------------------------------------
def test_bootstrap_replays_in_transactions_when_the_setting_says_so(tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path,
        data_path=tmp_path / "absent.csv",
        topic_transactions="tx-test",
        replay_transactional=True,
        replay_transaction_rows=7,
        replay_transaction_ms=60_000,
    )
    write_synthetic(synthetic_cache_path(settings), rows=40, seed=1)
    cluster = FakeCluster()
    replayer = bootstrap(
        settings,
        ReplayOptions(limit=20),
        stop=threading.Event(),
        create_topics=False,
        transactional_producer=cluster.factory,
    )
    stats = replayer.run()
    assert (stats.sent, stats.delivered, stats.transactions, stats.undelivered) == (20, 20, 3, 0)
    assert len(cluster.committed) == len(set(cluster.committed)) == 20


def test_the_transactional_producer_has_the_derived_id_and_a_message_timeout_within_the_transactions() -> None:
    settings = load_settings(kafka_bootstrap="127.0.0.1:1", topic_transactions="tx-test")
    assert settings.replay_transaction_id.startswith("fraudstream-replay@")
    assert settings.replay_transaction_id.endswith(":tx-test")
    assert load_settings(replay_transactional_id="mine").replay_transaction_id == "mine"
    seen: dict[str, Any] = {}

    def capture(config: dict[str, Any]) -> Callable[[], None]:
        seen.update(config)
        return lambda: None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("confluent_kafka.Producer", capture)
        build_transactional_producer(settings)
    assert seen["transactional.id"] == settings.replay_transaction_id
    assert 0 < seen["message.timeout.ms"] <= seen["transaction.timeout.ms"] == TRANSACTION_TIMEOUT_MS
    build_transactional_producer(settings)  # librdkafka itself accepts it (it refuses message.timeout.ms 0 here)


def test_init_transactions_is_retried_while_the_cluster_does_not_answer() -> None:
    cluster = FakeCluster(plans=deque([{"init_transactions": [timed_out(), timed_out()]}]))
    tx = sender(cluster, rows=2, interval_s=3600)
    send_all(tx, rows(2))
    assert tx.finish() == 0
    assert len(cluster.producers) == 1  # a timed-out init_transactions is called again on the same producer
    assert cluster.producers[0].calls[:3] == ["init_transactions"] * 3
    assert cluster.committed == keys(2)
