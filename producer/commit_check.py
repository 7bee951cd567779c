"""Did the transaction that holds a record commit? Asked of the topic itself, once that transaction has ended.

The transactional replay needs it after losing a producer *during* its commit (a commit the watchdog abandoned,
or answered by a fatal error): the new producer's ``init_transactions`` settles the old transaction, committed or
aborted, and only the topic knows which. A record's delivery report gave its partition and offset; once the
partition's last stable offset (the end a read_committed reader may see) is past it, a read_committed consumer
from that offset returns the record itself when its transaction committed, and skips it when it aborted.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import uuid

from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from fraudstream.kafka.clients import consumer_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.topics import admin_client

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 30.0


def last_stable_offset(conn: KafkaConnection, tp: TopicPartition, timeout_s: float = 10.0) -> int:
    """The partition's last stable offset: below it every transaction has ended."""
    admin = admin_client(conn)  # referenced until the answer came: a client collected meanwhile never answers
    futures = admin.list_offsets(
        {TopicPartition(tp.topic, tp.partition): OffsetSpec.latest()},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=timeout_s,
    )
    return int(next(iter(futures.values())).result(timeout=timeout_s + 5).offset)


def record_committed(
    conn: KafkaConnection,
    topic: str,
    partition: int,
    offset: int,
    key: bytes,
    *,
    timeout_s: float = CHECK_TIMEOUT_S,
) -> bool | None:
    """True when the record ``key`` at ``offset`` was committed, False when its transaction aborted; None when the
    cluster did not tell within ``timeout_s`` (its transaction still open, or the cluster away)."""
    deadline = time.monotonic() + timeout_s
    tp = TopicPartition(topic, partition, offset)
    while True:
        try:
            if last_stable_offset(conn, tp) > offset:
                break
        except (KafkaException, concurrent.futures.TimeoutError) as exc:
            log.info("the last stable offset of %s[%d] did not answer: %s", topic, partition, exc)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)
    consumer = Consumer(
        consumer_config(
            conn,
            group_id=f"fraudstream-replay-check-{uuid.uuid4().hex[:8]}",
            client_id="fraudstream-replay-check",
            **{"enable.partition.eof": True},
        )
    )
    try:
        consumer.assign([tp])
        while time.monotonic() < deadline:
            for message in consumer.consume(10, 0.5):
                error = message.error()
                if error is None:
                    return message.offset() == offset and message.key() == key
                if error.code() == KafkaError._PARTITION_EOF:
                    return False  # skipped up to the stable end: aborted
        return None
    finally:
        consumer.close()
