"""The session's broker is a real Kafka: keyed messages round-trip, and topic creation is idempotent."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, Producer

from fraudstream.kafka.clients import consumer_config, producer_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.topics import admin_client, delete_topics, ensure_topics

MESSAGES = 1000


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_thousand_keyed_messages_round_trip(kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic("roundtrip", partitions=3)
    conn = KafkaConnection(bootstrap_servers=kafka_bootstrap)
    sent = {f"card-{i:04d}".encode(): f'{{"amount": {i}.5}}'.encode() for i in range(MESSAGES)}

    _produce(conn, topic, sent)
    received, partitions = _consume(conn, topic, expected=MESSAGES)

    assert received == sent
    assert partitions == {0, 1, 2}  # keys spread over every partition


def test_ensure_topics_is_idempotent_and_keeps_partition_counts(kafka_bootstrap: str) -> None:
    conn = KafkaConnection(bootstrap_servers=kafka_bootstrap)
    two, five = unique_name("idem-two"), unique_name("idem-five")
    try:
        first = ensure_topics(conn, {two: 2, five: 5})
        second = ensure_topics(conn, [two, five], partitions=7)

        assert sorted(first.created) == sorted([two, five])
        assert first.existing == []
        assert second.created == []
        assert sorted(second.existing) == sorted([two, five])
        assert second.partitions == {two: 2, five: 5}
        metadata = admin_client(conn).list_topics(timeout=10)
        assert {name: len(metadata.topics[name].partitions) for name in (two, five)} == {two: 2, five: 5}
    finally:
        delete_topics(conn, [two, five])


def _produce(conn: KafkaConnection, topic: str, messages: dict[bytes, bytes]) -> None:
    """Send with an idempotent producer: poll(0) in the loop, flush once at the end; fail on any delivery error."""
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            errors.append(error)

    producer = Producer(producer_config(conn, client_id="test-roundtrip"))
    for key, value in messages.items():
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []


def _consume(conn: KafkaConnection, topic: str, *, expected: int) -> tuple[dict[bytes, bytes], set[int]]:
    """Read in batches (consume(num_messages, timeout)) until ``expected`` messages arrived or 60 s passed."""
    consumer = Consumer(consumer_config(conn, group_id=unique_name("roundtrip"), client_id=f"test-{uuid.uuid4().hex}"))
    consumer.subscribe([topic])
    received: dict[bytes, bytes] = {}
    partitions: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(received) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                assert message.error() is None, message.error()
                received[message.key()] = message.value()
                partitions.add(message.partition())
    finally:
        consumer.close()
    return received, partitions
