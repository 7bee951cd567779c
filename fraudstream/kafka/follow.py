"""Follow a topic from outside the services: each committed record as it appears, decoded, with when it was seen.

The one reader the command line's followers share (``fraudstream alerts tail``, the demo's alert collector, and
whatever else watches a topic for a person): a private consumer group that never commits, so following moves no
one's offsets, reading committed records only (``read_committed``). It assigns every partition itself, at the
oldest offset or at the end as it is now, so "from now on" means exactly that (no group join, no offset reset
racing the first fetch).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, Literal, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.clients import consumer_config
from fraudstream.kafka.errors import describe
from fraudstream.settings import Settings
from fraudstream.shutdown import Stop

T = TypeVar("T")

METADATA_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Followed(Generic[T]):
    """One decoded record, where it stands, and when this reader received it."""

    value: T
    partition: int
    offset: int
    received_at: datetime


def follow_topic(
    settings: Settings,
    topic: str,
    decode: Callable[[bytes], T],
    *,
    stop: Stop,
    start: Literal["end", "beginning"] = "end",
    on_ready: Callable[[], None] | None = None,
    on_invalid: Callable[[int, int, Exception], None] | None = None,
    on_error: Callable[[KafkaError], None] | None = None,
    client_id: str = "fraudstream-follow",
    batch_size: int = 500,
    poll_s: float = 0.5,
) -> Iterator[Followed[T]]:
    """Yield ``decode(value)`` of each committed record of ``topic`` until ``stop`` is set (or the caller stops
    iterating: close the iterator, e.g. with ``contextlib.closing``, and its consumer closes at once).

    ``start`` is where each partition begins: ``"end"`` (only records committed from now on) or ``"beginning"``.
    ``on_ready()`` runs once every partition is assigned (a record produced after it is seen). A record that
    ``decode`` refuses (``ValueError``, which pydantic's ``ValidationError`` is) goes to
    ``on_invalid(partition, offset, error)`` and is skipped; a consumer error other than a partition's end goes
    to ``on_error``.
    """
    consumer = Consumer(
        consumer_config(
            settings.kafka(),
            group_id=f"{client_id}-{uuid.uuid4().hex[:8]}",  # private: never committed, never shared
            client_id=client_id,
        )
    )
    try:
        consumer.assign(_starts(consumer, settings, topic, start))
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            for message in consumer.consume(num_messages=batch_size, timeout=poll_s):
                error = message.error()
                if error is not None:
                    if on_error is not None and error.code() != KafkaError._PARTITION_EOF:
                        on_error(error)
                    continue
                received = datetime.now(timezone.utc)
                try:
                    value = decode(message.value() or b"")
                except ValueError as exc:
                    if on_invalid is not None:
                        on_invalid(message.partition(), message.offset(), exc)
                    continue
                yield Followed(value, message.partition(), message.offset(), received)
    finally:
        consumer.close()


def _starts(consumer: Any, settings: Settings, topic: str, start: str) -> list[TopicPartition]:
    """Each partition of ``topic`` at its first offset, or at its end (its high watermark now)."""
    try:
        metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            reason = describe(metadata.error) if metadata is not None and metadata.error else "no partitions"
            raise BrokerError(f"cannot follow {topic} on {settings.bootstrap_servers}: {reason}")
        partitions = sorted(metadata.partitions)
        if start == "beginning":
            return [TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions]
        ends = []
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S)
            ends.append(TopicPartition(topic, partition, high))
        return ends
    except KafkaException as exc:
        raise BrokerError(f"cannot follow {topic} on {settings.bootstrap_servers}: {describe(exc)}") from exc
