"""AlertSink with fake Kafka clients (the real broker is in tests/integration): validate, store, dead-letter what
cannot be stored, then commit; ride out Kafka errors and replace a consumer that cannot go on."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError

from api.exceptions import StoreError
from api.sink.alerts import AlertSink
from api.sink.thread import SinkThread
from api.store.alerts import AlertRepository
from fraudstream.schemas import Alert
from fraudstream.settings import load_settings

from .fakes import TOPIC, FakeConsumer, FakeMessage, FakeProducer


class FlakyStore(AlertRepository):
    """A real store that fails its next ``failures`` writes, as if the database were down."""

    def __init__(self, inner: AlertRepository, failures: int) -> None:
        super().__init__(inner.engine)
        self.failures = failures

    def upsert_many(self, alerts: Any, **kwargs: Any) -> int:
        if self.failures:
            self.failures -= 1
            raise StoreError("database is down", transient=True)
        return super().upsert_many(alerts, **kwargs)


class Observer:
    def __init__(self) -> None:
        self.counts = {"stored": 0, "invalid": 0}
        self.lags: list[int] = []

    def stored(self, count: int) -> None:
        self.counts["stored"] += count

    def invalid(self, count: int) -> None:
        self.counts["invalid"] += count

    def lag(self, value: int) -> None:
        self.lags.append(value)


@pytest.fixture
def store(tmp_path: Path) -> AlertRepository:
    repository = AlertRepository.from_url(f"sqlite:///{tmp_path / 'alerts.db'}")
    repository.create_schema()
    return repository


def _sink(
    store: AlertRepository,
    consumer: FakeConsumer,
    observer: Observer | None = None,
    producer: FakeProducer | None = None,
    replacements: list[FakeConsumer] = (),  # type: ignore[assignment]
    **settings: Any,
) -> AlertSink:
    config = load_settings(kafka_bootstrap="127.0.0.1:1", sink_group_id="unit-sink", **settings)
    consumers = [consumer, *replacements]

    def factory(config: dict[str, Any]) -> FakeConsumer:
        chosen = consumers.pop(0) if consumers else FakeConsumer([])
        chosen.config = config
        return chosen

    dlq = producer or FakeProducer()
    return AlertSink(config, store, observer=observer, consumer_factory=factory, producer_factory=lambda _: dlq)


def _message(alert: Alert, partition: int = 0) -> FakeMessage:
    return FakeMessage(partition, alert.offset, alert.model_dump_json().encode())


class StopAfter:
    """A stop flag that is set once the consumer has no batch left."""

    def __init__(self, consumer: FakeConsumer) -> None:
        self.consumer = consumer

    def is_set(self) -> bool:
        return not self.consumer.batches

    def wait(self, timeout: float) -> bool:
        return self.is_set()


def test_valid_alerts_are_stored_then_committed_and_invalid_ones_counted(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    good = [alert(i) for i in range(4)]
    batch = [
        _message(good[0]),
        FakeMessage(0, 1, b"{not json", key=b"k-1", headers=[("trace", b"t")]),
        _message(good[1], partition=1),
        FakeMessage(0, 2, b'{"transaction_id": "x"}'),
        FakeMessage(1, 3, json.dumps({**alert(9).model_dump(mode="json"), "amount": float("nan")}).encode()),
        FakeMessage(2, 4, None),
        _message(good[2], partition=2),
    ]
    consumer = FakeConsumer([batch, [_message(good[3])], [_message(good[0])]])  # the last one: a redelivery
    observer = Observer()
    producer = FakeProducer()
    sink = _sink(store, consumer, observer, producer)

    sink.run(StopAfter(consumer))

    assert consumer.config["isolation.level"] == "read_committed"
    assert consumer.config["enable.auto.commit"] is False
    assert consumer.subscribed == [TOPIC]
    assert consumer.closed
    assert store.count() == 4
    assert {a.transaction_id for a in store.page(limit=10).alerts} == {a.transaction_id for a in good}
    assert consumer.commits[0] == {0: 3, 1: 4, 2: 5}  # past the invalid messages too
    status = sink.status()
    assert (status.stored, status.invalid, status.running) == (5, 4, False)  # 5 writes, 4 rows: a redelivery
    assert observer.counts == {"stored": 5, "invalid": 4}
    # what the store cannot hold is in the sink's dead-letter topic, with the reason and the original bytes
    assert [m["topic"] for m in producer.delivered] == ["fraud-alerts.dlq"] * 4
    first = producer.delivered[0]
    assert (first["key"], first["value"]) == (b"k-1", b"{not json")
    headers = dict(first["headers"])
    assert first["headers"][0] == ("trace", b"t")  # the original headers are kept, first
    assert headers["error_kind"] == b"invalid_alert"
    assert headers["reason"].startswith(b"field 'message': Invalid JSON") or b"JSON" in headers["reason"]
    assert (headers["source_topic"], headers["source_partition"], headers["source_offset"]) == (
        TOPIC.encode(),
        b"0",
        b"1",
    )
    assert status.dead_lettered == 4


def test_nothing_is_committed_when_the_store_fails_and_the_batch_is_retried(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    alerts = [alert(5), alert(6)]
    consumer = FakeConsumer([[_message(alerts[0]), _message(alerts[1], partition=1)], [], []])
    flaky = FlakyStore(store, failures=1)
    sink = _sink(flaky, consumer)

    with pytest.raises(StoreError):
        sink.process(consumer.consume(10, 0.1))
    assert consumer.commits == []

    sink._consumer = consumer
    sink._rewind([_message(alerts[0]), _message(alerts[1], partition=1)])
    assert consumer.seeks == [(0, 5), (1, 6)]
    assert sink.process([_message(alerts[0]), _message(alerts[1], partition=1)]) == 2
    assert consumer.commits == [{0: 6, 1: 7}]


def test_the_run_loop_rewinds_and_retries_after_a_store_failure(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    first = _message(alert(5))
    consumer = FakeConsumer([[first], [first], []])  # the broker hands the batch out again after the seek
    sink = _sink(FlakyStore(store, failures=1), consumer)

    sink.run(StopAfter(consumer))

    assert consumer.seeks == [(0, 5)]
    assert store.count() == 1
    assert consumer.commits == [{0: 6}]
    assert sink.status().last_error is None


def test_a_row_the_store_refuses_is_set_aside_and_the_rest_stored(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    class Picky(AlertRepository):
        def upsert_many(self, alerts: Any, **kwargs: Any) -> int:
            if any(a.transaction_id == "tx-00002" for a in alerts):
                raise StoreError("value too long", transient=False)
            return super().upsert_many(alerts, **kwargs)

    consumer = FakeConsumer([])
    sink = _sink(Picky(store.engine), consumer)
    sink._consumer = consumer
    messages = [_message(alert(i)) for i in range(1, 4)]
    consumer.positions[0] = 4

    assert sink.process(messages) == 2
    assert store.count() == 2
    assert sink.status().invalid == 1
    assert consumer.commits == [{0: 4}]
    (letter,) = sink._producer.delivered  # type: ignore[union-attr]
    assert dict(letter["headers"])["error_kind"] == b"store_refused"
    assert b"value too long" in dict(letter["headers"])["reason"]


def test_a_batch_whose_dead_letters_are_not_delivered_is_not_committed_and_comes_again(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    bad = FakeMessage(0, 1, b"{not json")
    consumer = FakeConsumer([[_message(alert(0)), bad], [_message(alert(0)), bad], []])
    producer = FakeProducer()
    producer.down = True
    sink = _sink(store, consumer, producer=producer)
    original_send = sink._send

    def recover_after_one_failure(records: Any) -> Any:
        try:
            return original_send(records)
        finally:
            producer.down = False

    sink._send = recover_after_one_failure  # type: ignore[method-assign]
    sink._producer_factory = lambda _: producer
    sink.run(StopAfter(consumer))

    assert consumer.seeks == [(0, 0)]  # rewound to the batch's first message
    assert consumer.commits == [{0: 2}]  # committed only once the dead letter was delivered
    assert len(producer.delivered) == 1
    assert store.count() == 1


def test_a_fatal_kafka_error_replaces_the_consumer_and_the_sink_goes_on(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    consumer = FakeConsumer([[FakeMessage(0, -1, None, error=fatal)]])
    replacement = FakeConsumer([[_message(alert(1))], []])
    sink = _sink(store, consumer, replacements=[replacement])

    sink.run(StopAfter(replacement))

    assert consumer.closed
    assert replacement.subscribed == [TOPIC]
    assert store.count() == 1
    assert sink.status().replaced == 1
    assert sink.status().failed is None


def test_static_membership_and_session_timeout_come_from_the_settings(store: AlertRepository) -> None:
    consumer = FakeConsumer([[]])
    sink = _sink(store, consumer, sink_instance_id="api-0", sink_session_timeout_ms=7000)
    sink.run(StopAfter(consumer))
    assert consumer.config["group.instance.id"] == "api-0"
    assert consumer.config["session.timeout.ms"] == 7000


def test_a_transient_kafka_error_is_logged_and_skipped(store: AlertRepository, alert: Callable[..., Alert]) -> None:
    transient = KafkaError(KafkaError._TRANSPORT, "broker down")
    consumer = FakeConsumer([[FakeMessage(0, -1, None, error=transient), _message(alert(1))], []])
    sink = _sink(store, consumer)

    sink.run(StopAfter(consumer))

    assert store.count() == 1


def test_lag_is_the_end_offset_minus_the_position_over_the_assignment(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    consumer = FakeConsumer([[_message(alert(3))], []], high=10)
    observer = Observer()
    sink = _sink(store, consumer, observer)

    sink.run(StopAfter(consumer))

    # partition 0 is at 4 (lag 6); 1 and 2 have no position nor commit: from the low watermark 0 (lag 10 each)
    assert sink.status().lag == 26
    assert observer.lags[-1] == 26
    assert sink.status().assigned == 0  # stopped: the consumer is closed, so it is not ready any more
    assert any("holds no partitions" in problem for problem in sink.status().problems)


def test_the_sink_thread_starts_and_stops_cleanly(store: AlertRepository, alert: Callable[..., Alert]) -> None:
    consumer = FakeConsumer([[_message(alert(1))]])
    stored = threading.Event()

    class Signalling(Observer):
        def stored(self, count: int) -> None:
            stored.set()

    thread = SinkThread(_sink(store, consumer, Signalling()))
    thread.start()
    assert stored.wait(10)
    assert thread.alive
    thread.stop()
    assert not thread.alive
    assert consumer.closed
