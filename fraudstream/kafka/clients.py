"""librdkafka configurations for each role. Components build their clients from these, never by hand."""

from __future__ import annotations

import logging
import socket
from typing import Any

from fraudstream.kafka.connection import KafkaConnection

_LIBRDKAFKA_LOG = logging.getLogger("fraudstream.kafka.librdkafka")


def _base(conn: KafkaConnection, client_id: str) -> dict[str, Any]:
    return {**conn.as_dict(), "client.id": f"{client_id}@{socket.gethostname()}", "logger": _LIBRDKAFKA_LOG}


def producer_config(
    conn: KafkaConnection, *, client_id: str, transactional_id: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """An idempotent producer (acks=all, ordered retries); transactional when ``transactional_id`` is given."""
    config = {
        **_base(conn, client_id),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
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
    **overrides: Any,
) -> dict[str, Any]:
    """A consumer that commits explicitly and, by default, reads only committed transactional data."""
    config = {
        **_base(conn, client_id),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": auto_offset_reset,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    config.update(overrides)
    return config


def admin_config(conn: KafkaConnection, *, client_id: str = "fraudstream-admin") -> dict[str, Any]:
    return _base(conn, client_id)
