"""The transaction of one batch with fake clients: commit, abort-and-rewind, retries, producer replacement, and
records Kafka refuses (none of which may stop the scorer or loop on one record)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from fraudstream.kafka import dead_letter as dlq
from fraudstream.kafka.records import OutRecord, Source
from fraudstream.kafka.watchdog import Watchdog
from scorer.batch import ScoredBatch
from scorer.exceptions import FatalKafkaError, ProducerUnusableError
from scorer.transaction import CommitOutcome, Transactor

from .fakes import TOPIC, FakeConsumer, FakeProducer, kafka_exception, make_transactor, refusal


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def consumer() -> FakeConsumer:
    # partition 2 is assigned but nothing was read from it yet (position -1001: OFFSET_INVALID)
    return FakeConsumer(positions={0: 120, 1: 57, 2: -1001}, committed={0: 100})


@pytest.fixture
def transactor(producer: FakeProducer, consumer: FakeConsumer) -> Transactor:
    transactor = make_transactor(producer, consumer)
    assert transactor.start()
    producer.calls.clear()
    return transactor


def dead(value: bytes | None, offset: int = 7) -> OutRecord:
    return dlq.dead_letter(
        key=b"k",
        value=value,
        headers=[("trace", b"abc")],
        source=Source("transactions", 1, offset),
        reason="invalid JSON",
        kind="invalid_json",
    )


def a_batch() -> ScoredBatch:
    return ScoredBatch(
        consumed=3,
        scored=2,
        alerts=[OutRecord(b"tx:1", b"{alert}", source=Source("transactions", 0, 5))],
        dead_letters=[dead(b"junk")],
    )


def headers_of(record: OutRecord) -> dict[str, bytes]:
    return dict(record.headers or [])


def test_a_batch_commits_its_records_with_the_consumed_positions(
    transactor: Transactor, producer: FakeProducer
) -> None:
    assert transactor.commit(a_batch()) is CommitOutcome.COMMITTED
    assert producer.calls == ["begin", "send_offsets", "commit"]
    assert [topic for topic, _ in producer.committed] == ["alerts", "dlq"]
    letter = producer.committed[1][1]
    assert letter.headers is not None
    assert letter.headers[0] == ("trace", b"abc")
    assert headers_of(letter)["reason"] == b"invalid JSON"
    assert headers_of(letter)["original_size"] == b"4"
    assert [(tp.partition, tp.offset) for tp in producer.offsets] == [(0, 120), (1, 57)]  # never-read p2 left out
    assert transactor.in_transaction is False


def test_an_abortable_error_aborts_and_rewinds_to_the_committed_offsets(
    transactor: Transactor, producer: FakeProducer, consumer: FakeConsumer
) -> None:
    producer.fail["commit"] = deque([kafka_exception(abort=True)])
    assert transactor.commit(a_batch()) is CommitOutcome.ABORTED
    assert producer.calls == ["begin", "send_offsets", "commit", "poll", "abort", "poll"]
    assert consumer.seeks == [(0, 100), (1, OFFSET_BEGINNING)]  # p1 never committed: from its beginning
    assert transactor.in_transaction is False
    assert transactor.commit(a_batch()) is CommitOutcome.COMMITTED  # the next batch starts a fresh transaction


def test_a_retriable_error_repeats_the_same_call(transactor: Transactor, producer: FakeProducer) -> None:
    producer.fail["send_offsets"] = deque([kafka_exception(retriable=True)])
    producer.fail["commit"] = deque([kafka_exception(retriable=True), kafka_exception(retriable=True)])
    assert transactor.commit(a_batch()) is CommitOutcome.COMMITTED
    assert producer.calls == ["begin", "send_offsets", "send_offsets", "commit", "commit", "commit"]


def test_a_fatal_error_asks_for_a_new_producer_which_fences_the_old_and_rewinds(
    producer: FakeProducer, consumer: FakeConsumer
) -> None:
    second = FakeProducer()
    transactor = make_transactor(producer, consumer, producers=[producer, second])
    assert transactor.start()
    producer.fail["commit"] = deque([kafka_exception(fatal=True)])

    with pytest.raises(ProducerUnusableError, match="test error"):
        transactor.commit(a_batch())
    assert transactor.replace("fenced") is True

    assert second.calls == ["init"]  # the new producer registered the same transactional.id
    assert consumer.seeks == [(0, 100), (1, OFFSET_BEGINNING)]  # then the consumer went back to the truth
    assert transactor.commit(a_batch()) is CommitOutcome.COMMITTED
    assert [topic for topic, _ in second.committed] == ["alerts", "dlq"]


def test_a_commit_whose_outcome_is_unknown_is_settled_by_a_new_producer(
    transactor: Transactor, producer: FakeProducer
) -> None:
    lost = KafkaException(KafkaError(KafkaError._TRANSPORT, "connection lost"))  # not retriable, nor abortable
    producer.fail["commit"] = deque([lost])
    with pytest.raises(ProducerUnusableError, match="outcome is unknown"):
        transactor.commit(a_batch())
    assert "abort" not in producer.calls


def test_an_abort_that_fails_asks_for_a_new_producer(transactor: Transactor, producer: FakeProducer) -> None:
    producer.fail["commit"] = deque([kafka_exception(abort=True)])
    invalid_state = KafkaError(KafkaError.INVALID_TXN_STATE, "invalid state")
    producer.fail["abort"] = deque([kafka_exception(retriable=True), KafkaException(invalid_state)])
    with pytest.raises(ProducerUnusableError, match="cannot abort"):
        transactor.commit(a_batch())
    assert producer.calls.count("abort") == 2
    assert transactor.in_transaction is False


@dataclass
class Answered:
    """A committed() answer for one partition with its error (confluent-kafka's TopicPartition takes none)."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None = None


class UnstableConsumer(FakeConsumer):
    """committed() answers as a read_committed consumer does while a transaction holding the group's offsets is
    open (KIP-447): _TIMED_OUT, until ``settled()`` says it ended; or answers a partition with an error
    (``partition_errors`` times)."""

    def __init__(self, settled: Callable[[], bool], partition_errors: int = 0) -> None:
        super().__init__(positions={0: 120, 1: 57}, committed={0: 100, 1: 50})
        self.settled = settled
        self.partition_errors = partition_errors
        self.asked = 0

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.asked += 1
        if not self.settled():
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to get committed offsets", retriable=True))
        answer = super().committed(partitions, timeout)
        if self.partition_errors:
            self.partition_errors -= 1
            unstable = KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT, "unstable")
            answer[1] = Answered(TOPIC, 1, -1001, unstable)  # type: ignore[call-overload]
        return answer


def test_a_rewind_waits_for_the_committed_offsets_and_says_once_when_a_transaction_seems_to_hang(
    producer: FakeProducer, caplog: pytest.LogCaptureFixture
) -> None:
    # committed() times out while a transaction holding the offsets is open (KIP-447); the rewind asks until it
    # answers, and after HANGING_AFTER_S tells the operator once what to look for.
    now = [0.0]
    asked = [0]

    def clock() -> float:
        return now[0]

    def settled() -> bool:
        asked[0] += 1
        now[0] += 25.0  # each timed-out ask
        return asked[0] > 4

    consumer = UnstableConsumer(settled=settled)
    transactor = make_transactor(producer, consumer, clock=clock)
    assert transactor.start()
    assert transactor.rewind() is True
    assert consumer.seeks == [(0, 100), (1, 50)]
    hanging = [r for r in caplog.records if "hanging" in r.getMessage()]
    assert len(hanging) == 1
    assert "kafka-transactions" in hanging[0].getMessage()
    assert producer.calls == ["init"]  # waiting replaces nothing


def test_a_partition_the_coordinator_answers_with_an_error_is_asked_again_never_read_from_its_start(
    transactor: Transactor,
) -> None:
    consumer = UnstableConsumer(settled=lambda: True, partition_errors=1)
    transactor.consumer = consumer
    assert transactor.rewind() is True
    assert consumer.asked == 2
    assert consumer.seeks == [(0, 100), (1, 50)]  # not (1, OFFSET_BEGINNING): that would score it all again


def test_a_call_that_never_returns_is_abandoned_and_the_producer_replaced(consumer: FakeConsumer) -> None:
    stuck, fresh = FakeProducer(), FakeProducer()
    stuck.block["send_offsets"] = threading.Event()  # never set: librdkafka #5456
    transactor = make_transactor(
        stuck,
        consumer,
        producers=[stuck, fresh],
        watchdog=Watchdog("test", stop=threading.Event(), margin_s=0.2),
        timeout_s=1,
    )
    assert transactor.start()

    started = time.monotonic()
    with pytest.raises(ProducerUnusableError, match="did not return"):
        transactor.commit(a_batch())
    assert time.monotonic() - started < 1.0 + 0.2 + 1  # its 1 s timeout, the margin, and some slack
    assert transactor.replace("stuck") is True
    assert transactor.commit(a_batch()) is CommitOutcome.COMMITTED
    assert fresh.calls[0] == "init"
    stuck.block["send_offsets"].set()


def test_a_full_local_queue_is_served_then_the_record_sent_again(
    transactor: Transactor, producer: FakeProducer
) -> None:
    producer.full_queue_times = 2
    assert transactor.commit(a_batch()) is CommitOutcome.COMMITTED
    assert producer.calls.count("poll") == 2
    assert len(producer.committed) == 2


def test_init_is_retried_while_the_broker_is_away_and_misconfiguration_is_fatal(
    producer: FakeProducer, consumer: FakeConsumer
) -> None:
    transactor = make_transactor(producer, consumer)
    producer.fail["init"] = deque([kafka_exception(retriable=True), kafka_exception()])
    assert transactor.start() is True
    assert producer.calls.count("init") == 3

    denied = KafkaError(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "not allowed")
    producer.fail["init"] = deque([KafkaException(denied)])
    with pytest.raises(FatalKafkaError, match="TRANSACTIONAL_ID_AUTHORIZATION_FAILED"):
        make_transactor(producer, consumer).start()


def test_a_stop_while_initialising_returns_false(producer: FakeProducer, consumer: FakeConsumer) -> None:
    stop = threading.Event()
    transactor = make_transactor(producer, consumer, stop=stop)
    producer.fail["init"] = deque([kafka_exception(retriable=True)] * 50)
    threading.Timer(0.3, stop.set).start()
    assert transactor.start() is False


# ---- records Kafka refuses --------------------------------------------------------------------------------------
def test_a_dead_letter_over_the_limit_is_cut_to_fit_keeping_key_headers_and_the_value_head(
    producer: FakeProducer, consumer: FakeConsumer
) -> None:
    transactor = make_transactor(producer, consumer, dead_letter_limit=10_000)
    assert transactor.start()
    big = b"x" * 1_030_598
    batch = ScoredBatch(consumed=1, dead_letters=[dead(big)])

    assert transactor.commit(batch) is CommitOutcome.COMMITTED

    ((topic, letter),) = producer.committed
    assert topic == "dlq"
    assert dlq.record_size(letter) <= 10_000
    assert letter.key == b"k"
    assert letter.value is not None
    assert big.startswith(letter.value)
    assert len(letter.value) > 8_000
    headers = headers_of(letter)
    assert headers["trace"] == b"abc"  # the original header survives
    assert headers["original_size"] == b"1030598"
    assert headers["value_kept"] == b"part"
    assert b"value cut to its first" in headers["dlq_note"]
    assert headers["reason"] == b"invalid JSON"


def test_a_dead_letter_refused_at_delivery_is_retried_once_as_a_minimal_one_never_again(
    transactor: Transactor, producer: FakeProducer, consumer: FakeConsumer
) -> None:
    refused_once: list[OutRecord] = []

    def broker(topic: str, record: OutRecord) -> KafkaError | None:
        if topic == "dlq" and record.value is not None:  # e.g. the DLQ topic's limit was lowered since start-up
            refused_once.append(record)
            return refusal()
        return None

    producer.refuse_at_delivery = broker
    assert transactor.commit(a_batch()) is CommitOutcome.ABORTED  # librdkafka makes the transaction abortable
    assert transactor.commit(a_batch()) is CommitOutcome.COMMITTED  # the same batch again, consumed anew

    assert len(refused_once) == 1
    (alert, letter) = producer.committed
    assert alert[0] == "alerts"
    assert letter[0] == "dlq"
    assert letter[1].value is None
    headers = headers_of(letter[1])
    assert headers["value_kept"] == b"none"
    assert b"MSG_SIZE_TOO_LARGE" in headers["dlq_note"]
    assert (headers["reason"], headers["source_offset"], headers["original_size"]) == (b"invalid JSON", b"7", b"4")
    assert "trace" not in headers


def test_a_record_refused_by_produce_is_replaced_in_the_same_transaction(
    transactor: Transactor, producer: FakeProducer
) -> None:
    producer.refuse_at_produce = lambda topic, record: refusal() if record.value == b"junk" else None
    assert transactor.commit(a_batch()) is CommitOutcome.COMMITTED
    assert [(topic, record.value) for topic, record in producer.committed] == [("alerts", b"{alert}"), ("dlq", None)]


def test_an_alert_kafka_refuses_goes_to_the_dlq_and_nothing_loops(
    transactor: Transactor, producer: FakeProducer
) -> None:
    producer.refuse_at_delivery = lambda topic, record: (
        refusal(KafkaError.INVALID_RECORD, "bad") if topic == "alerts" else None
    )
    outcomes = [transactor.commit(a_batch()) for _ in range(2)]
    assert outcomes == [CommitOutcome.ABORTED, CommitOutcome.COMMITTED]
    letters = [record for topic, record in producer.committed if topic == "dlq"]
    kinds = sorted(headers_of(record)["error_kind"] for record in letters)
    assert kinds == [b"alert_refused", b"invalid_json"]
    refused = next(record for record in letters if headers_of(record)["error_kind"] == b"alert_refused")
    assert refused.value == b"{alert}"
    assert refused.key == b"tx:1"
    assert headers_of(refused)["source_offset"] == b"5"


def test_a_minimal_dead_letter_kafka_still_refuses_is_left_out_and_the_batch_commits(
    transactor: Transactor, producer: FakeProducer
) -> None:
    producer.refuse_at_delivery = lambda topic, record: refusal() if topic == "dlq" else None
    outcomes = [transactor.commit(a_batch()) for _ in range(3)]
    assert outcomes == [CommitOutcome.ABORTED, CommitOutcome.ABORTED, CommitOutcome.COMMITTED]
    assert [topic for topic, _ in producer.committed] == ["alerts"]  # the refusal could not loop forever


def test_cutting_keeps_a_long_key_short_and_drops_headers_that_cannot_fit() -> None:
    record = dlq.dead_letter(
        key=b"K" * 50_000,
        value=b"v" * 50_000,
        headers=[("huge", b"h" * 40_000), ("small", b"s")],
        source=Source("t", 0, 1),
        reason="r",
        kind="k",
    )
    fitted = dlq.fit(record, 20_000)
    assert dlq.record_size(fitted) <= 20_000
    assert fitted.key is not None
    assert len(fitted.key) < 5_000
    headers = headers_of(fitted)
    assert "huge" not in headers
    assert headers["small"] == b"s"
    assert b"1 of 2 original headers left out" in headers["dlq_note"]
    assert dlq.fit(dead(b"tiny"), 20_000) == dead(b"tiny")  # within the limit: untouched
