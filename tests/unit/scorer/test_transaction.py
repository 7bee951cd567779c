"""The transaction of one batch: commit, abort-and-rewind, retry, and fatal errors, with fake clients."""

from __future__ import annotations

from collections import deque

import pytest
from confluent_kafka import OFFSET_BEGINNING

from scorer.batch import OutRecord, ScoredBatch
from scorer.exceptions import FatalKafkaError
from scorer.transaction import Transactor

from .fakes import FakeConsumer, FakeProducer, kafka_exception


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def consumer() -> FakeConsumer:
    # partition 2 is assigned but nothing was read from it yet (position -1001: OFFSET_INVALID)
    return FakeConsumer(positions={0: 120, 1: 57, 2: -1001}, committed={0: 100})


@pytest.fixture
def transactor(producer: FakeProducer, consumer: FakeConsumer) -> Transactor:
    return Transactor(producer, consumer, alerts_topic="alerts", dlq_topic="dlq", timeout_s=5, sleep=lambda _: None)


def a_batch() -> ScoredBatch:
    return ScoredBatch(
        consumed=3,
        scored=2,
        alerts=[OutRecord(b"tx:1", b"{alert}")],
        dead_letters=[OutRecord(None, b"junk", [("reason", b"invalid JSON")])],
    )


def test_a_batch_commits_its_records_with_the_consumed_positions(
    transactor: Transactor, producer: FakeProducer
) -> None:
    assert transactor.commit(a_batch()) is True
    assert producer.calls == ["begin", "send_offsets", "commit"]
    assert [topic for topic, _ in producer.produced] == ["alerts", "dlq"]
    assert producer.produced[1][1].headers == [("reason", b"invalid JSON")]
    assert [(tp.partition, tp.offset) for tp in producer.offsets] == [(0, 120), (1, 57)]  # never-read p2 left out
    assert transactor.in_transaction is False


def test_an_abortable_error_aborts_and_rewinds_to_the_committed_offsets(
    transactor: Transactor, producer: FakeProducer, consumer: FakeConsumer
) -> None:
    producer.fail["commit"] = deque([kafka_exception(abort=True)])
    assert transactor.commit(a_batch()) is False
    assert producer.calls == ["begin", "send_offsets", "commit", "abort"]
    assert consumer.seeks == [(0, 100), (1, OFFSET_BEGINNING)]  # p1 never committed: from its beginning
    assert transactor.in_transaction is False
    assert transactor.commit(a_batch()) is True  # the next batch starts a fresh transaction


def test_a_retriable_error_repeats_the_same_call(transactor: Transactor, producer: FakeProducer) -> None:
    producer.fail["send_offsets"] = deque([kafka_exception(retriable=True)])
    producer.fail["commit"] = deque([kafka_exception(retriable=True), kafka_exception(retriable=True)])
    assert transactor.commit(a_batch()) is True
    assert producer.calls == ["begin", "send_offsets", "send_offsets", "commit", "commit", "commit"]


def test_a_fatal_error_stops_the_scorer_with_a_clear_error(transactor: Transactor, producer: FakeProducer) -> None:
    producer.fail["commit"] = deque([kafka_exception(fatal=True)])
    with pytest.raises(FatalKafkaError, match="cannot be retried: test error"):
        transactor.commit(a_batch())


def test_a_full_local_queue_is_served_then_the_record_sent_again(
    transactor: Transactor, producer: FakeProducer
) -> None:
    producer.full_queue_times = 2
    assert transactor.commit(a_batch()) is True
    assert producer.calls.count("poll") == 2
    assert len(producer.produced) == 2


def test_init_failures_are_fatal_errors(transactor: Transactor, producer: FakeProducer) -> None:
    producer.fail["init"] = deque([kafka_exception(retriable=True), kafka_exception(fatal=True)])
    with pytest.raises(FatalKafkaError, match="cannot initialise Kafka transactions"):
        transactor.init()
    assert producer.calls == ["init", "init"]
