"""librdkafka configurations for each role. Components build their clients from these, never by hand.

Every client reconnects at most a second after a broker comes back (librdkafka's default back-off grows to 10 s,
which alone would miss "resume within 10 s of the broker's return"), and sends its logs and client-level errors
to a :class:`~fraudstream.kafka.outage.ClientEvents` when the service gives one (bounded logging during outages),
else to the ``fraudstream.kafka.librdkafka`` Python logger.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.outage import ClientEvents

STATS_INTERVAL_MS = 1000

_LIBRDKAFKA_LOG = logging.getLogger("fraudstream.kafka.librdkafka")

RECONNECT_BACKOFF_MAX_MS = 1000
CONSUMER_PREFETCH_KBYTES = 16_384
"""A consumer's prefetch queue (librdkafka's queued.max.messages.kbytes, 64 MB by default): 16 MB is over 20,000
transactions, four batches of the scorer. With the default, the queue filled while a scorer caught up after an
outage, and its resident memory stayed 25% higher (the soak benchmark); FRAUD_KAFKA_OPTIONS may set another."""
CONSUMER_FETCH_QUEUE_BACKOFF_MS = 10
"""How long librdkafka waits before fetching again for a partition once the prefetch queue is full
(``fetch.queue.backoff.ms``, 1,000 ms by default). With the default, a consumer that empties a full 16 MB queue
faster than it refills idles up to a second for data the broker already has: the exactly-once passthrough of
benchmarks/scorer.py measured 28-36k tx/s with it, 82-91k with 10 ms (100,000 real transactions, 3 partitions)."""
PRODUCER_MESSAGE_MAX_BYTES = 1_000_000
"""librdkafka's default message.max.bytes, stated so the scorer can size its dead letters under it."""


def _base(conn: KafkaConnection, client_id: str, events: ClientEvents | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        **conn.as_dict(),
        "client.id": f"{client_id}@{socket.gethostname()}",
        "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
        "logger": events if events is not None else _LIBRDKAFKA_LOG,
    }
    if events is not None:
        config["error_cb"] = events.error
    return config


def producer_config(
    conn: KafkaConnection,
    *,
    client_id: str,
    transactional_id: str | None = None,
    events: ClientEvents | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """An idempotent producer (acks=all, ordered retries); transactional when ``transactional_id`` is given."""
    config = {
        **_base(conn, client_id, events),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": PRODUCER_MESSAGE_MAX_BYTES,
    }
    if transactional_id:
        config["transactional.id"] = transactional_id
    config.update(overrides)
    return config


def consumer_config(
    conn: KafkaConnection,
    *,
    group_id: str,
    client_id: str,
    read_committed: bool = True,
    auto_offset_reset: str = "earliest",
    group_instance_id: str | None = None,
    session_timeout_ms: int | None = None,
    events: ClientEvents | None = None,
    stats: Callable[[str], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A consumer that commits explicitly and, by default, reads only committed transactional data.

    ``stats`` receives librdkafka's statistics (JSON) every second, from inside ``consume()``: the lag and the
    brokers' states without any extra request (see :class:`fraudstream.kafka.health.ConsumerHealth`).

    ``group_instance_id`` makes it a static member (KIP-345): a restart with the same id gets its partitions back
    at once, with no rebalance, instead of waiting for the old member's session to expire. A static member does
    not leave the group when it closes: its partitions wait ``session_timeout_ms`` for it before moving. The
    heartbeat follows the session (:func:`heartbeat_interval_ms`).
    """
    config = {
        **_base(conn, client_id, events),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": auto_offset_reset,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    config.setdefault("queued.max.messages.kbytes", CONSUMER_PREFETCH_KBYTES)
    config.setdefault("fetch.queue.backoff.ms", CONSUMER_FETCH_QUEUE_BACKOFF_MS)
    if group_instance_id:
        config["group.instance.id"] = group_instance_id
    if session_timeout_ms is not None:
        config["session.timeout.ms"] = session_timeout_ms
        config["heartbeat.interval.ms"] = heartbeat_interval_ms(session_timeout_ms)
    if stats is not None:
        config["stats_cb"] = stats
        config["statistics.interval.ms"] = STATS_INTERVAL_MS
    config.update(overrides)
    return config


def heartbeat_interval_ms(session_timeout_ms: int) -> int:
    """A sixth of the session, between 0.5 and 3 s (librdkafka's default): when a member's session expires, the
    survivors hear of the rebalance at their next heartbeat, so a dead member's partitions move about a heartbeat
    after its session timeout (measured 7.9 s for a 6 s session with 3 s heartbeats)."""
    return min(3000, max(500, session_timeout_ms // 6))


def admin_config(conn: KafkaConnection, *, client_id: str = "fraudstream-admin") -> dict[str, Any]:
    return _base(conn, client_id, None)
