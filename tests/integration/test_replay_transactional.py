"""The transactional replay on the session's real broker: N rows sent, N records read_committed (each once), N
delivered, and the topic's end offsets beyond N (the commit markers: the rows really went in transactions); and
the check it makes after losing a producer during a commit (committed or aborted?)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from fraudstream.data.synth import write_synthetic
from fraudstream.kafka.clients import consumer_config, producer_config
from fraudstream.settings import Settings
from producer.bootstrap import replay
from producer.commit_check import record_committed
from producer.pacing import Pace
from producer.replay import ReplayOptions

from .conftest import SettingsFactory
from .stream_support import end_offsets, read_topic

ROWS = 3000
TRANSACTION_ROWS = 200


def read_committed_keys(settings: Settings, at_least: int) -> list[bytes]:
    return [m.key() for m in read_topic(settings, settings.topic_transactions, at_least=at_least)]


def test_a_transactional_replay_writes_every_row_once_and_counts_it_delivered_when_committed(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_factory(replay_transactional=True, replay_transaction_rows=TRANSACTION_ROWS)
    csv = write_synthetic(tmp_path / "creditcard_synthetic.csv", rows=ROWS, seed=3)

    stats = replay(settings, ReplayOptions(data=csv), stop=threading.Event())

    assert (stats.sent, stats.delivered, stats.failed, stats.undelivered) == (ROWS, ROWS, 0, 0), stats
    assert (stats.aborted, stats.replaced, stats.resent_uncertain) == (0, 0, 0), stats
    assert stats.transactions >= ROWS // TRANSACTION_ROWS  # more when the 100 ms came first
    keys = read_committed_keys(settings, at_least=ROWS)
    assert len(keys) == ROWS
    assert set(keys) == {f"creditcard_synthetic.csv:{row}".encode() for row in range(ROWS)}
    ends = end_offsets(settings)
    assert sum(ends) > ROWS  # one commit marker per transaction and partition


def test_a_slow_replay_commits_its_transactions_by_time_and_a_consumer_reads_past_the_last_marker(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    """At 100 rows/s with 500-row transactions, the 100 ms bound commits them; a read_committed consumer that
    read everything stands at the end offsets (after the last commit marker), which is what the scorer commits."""
    settings = settings_factory(replay_transactional=True, replay_transaction_rows=500, replay_transaction_ms=100)
    csv = write_synthetic(tmp_path / "creditcard_synthetic.csv", rows=150, seed=4)

    stats = replay(settings, ReplayOptions(data=csv, pace=Pace(rate=100)), stop=threading.Event())

    assert (stats.sent, stats.delivered, stats.undelivered) == (150, 150, 0), stats
    # 150 rows never fill a 500-row transaction: only the 100 ms bound commits them (1.5 s of rows; each commit
    # also takes a few tens of ms, measured 9 transactions)
    assert stats.transactions >= 5, stats
    assert len(read_committed_keys(settings, at_least=150)) == 150
    ends = end_offsets(settings)
    consumer = Consumer(consumer_config(settings.kafka(), group_id="txn-position", client_id="txn-position"))
    partitions = [TopicPartition(settings.topic_transactions, p, 0) for p in range(settings.topic_partitions)]
    consumer.assign(partitions)
    try:
        seen = 0
        for _ in range(100):
            seen += sum(1 for m in consumer.consume(500, 0.2) if m.error() is None)
            positions = [tp.offset for tp in consumer.position(partitions)]
            if seen == 150 and positions == ends:
                break
        assert seen == 150
        assert positions == ends
    finally:
        consumer.close()


def test_the_topic_tells_whether_the_transaction_of_a_delivered_record_committed(
    settings_factory: SettingsFactory,
) -> None:
    """What the replay asks after losing a producer during its commit: committed, or aborted?"""
    settings = settings_factory()
    conn, topic = settings.kafka(), settings.topic_transactions
    producer = Producer(producer_config(conn, client_id="commit-check", transactional_id=f"check-{topic}"))
    producer.init_transactions(30)
    located: dict[bytes, tuple[int, int]] = {}

    def delivered(error: object, message: Any) -> None:
        assert error is None, error
        located[message.key()] = (message.partition(), message.offset())

    for key, commit in ((b"kept", True), (b"dropped", False)):
        producer.begin_transaction()
        producer.produce(topic, key=key, value=b"{}", partition=1, on_delivery=delivered)
        producer.flush(30)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    producer.begin_transaction()  # one more after them, committed: an aborted record is skipped, not the end
    producer.produce(topic, key=b"after", value=b"{}", partition=1, on_delivery=delivered)
    producer.commit_transaction(30)

    assert record_committed(conn, topic, *located[b"kept"], b"kept") is True
    assert record_committed(conn, topic, *located[b"dropped"], b"dropped") is False
    assert record_committed(conn, topic, *located[b"kept"], b"another key") is False
