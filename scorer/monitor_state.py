"""The open monitoring window of a scorer replica, kept on a compacted topic so a restart resumes it.

Every batch's transaction writes, beside its alerts and its consumed offsets, one record keyed by the replica's
transactional id on ``FRAUD_TOPIC_MONITORING_STATE``: the open window's counts, the next window number and the
recent confusion counts the ``degraded`` rule pools. The record and the offsets commit together, so the last
committed record describes exactly the batches the committed offsets cover. A replica that starts (after a
``kill -9``) or replaces its producer (a commit whose outcome was unknown) reads it back, ``read_committed``, once
its new producer has fenced the old one: the window resumes where the committed batches left it, and a window
published in a transaction that did commit is not published again.

A replica without a stable id (FRAUD_SCORER_TRANSACTIONAL_ID unset) gets a new id at each start, so a crash loses
its open window's counts (at most one window); the transactions themselves are still scored exactly once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from fraudstream.kafka.clients import consumer_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.records import OutRecord
from fraudstream.monitoring import Confusion
from scorer.window import Tally, Window

log = logging.getLogger(__name__)

STATE_SPEC_VERSION = 1
READ_TIMEOUT_S = 5.0
"""Longest the scorer waits for its state (at start, after an abort); past it, it goes on from what it knows."""


@dataclass(frozen=True)
class MonitorState:
    """What survives a restart: the open window (or none), the next window's number, the recent confusions."""

    window: Window | None = None
    next_window: int = 1
    recent: dict[str, tuple[Confusion, ...]] = field(default_factory=dict)

    def record(self, scorer: str) -> OutRecord:
        return OutRecord(
            key=scorer.encode(), value=orjson.dumps(self.as_json(scorer), option=orjson.OPT_SERIALIZE_NUMPY)
        )

    def as_json(self, scorer: str) -> dict[str, Any]:
        return {
            "spec_version": STATE_SPEC_VERSION,
            "scorer": scorer,
            "next_window": self.next_window,
            "recent": {key: [c.model_dump() for c in history] for key, history in self.recent.items()},
            "window": None if self.window is None else _window_json(self.window),
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> MonitorState:
        if int(payload.get("spec_version", 1)) > STATE_SPEC_VERSION:
            raise ValueError(f"monitoring state spec {payload['spec_version']} is newer than this scorer's")
        window = payload.get("window")
        return cls(
            window=None if window is None else _window_of(window),
            next_window=int(payload["next_window"]),
            recent={key: tuple(Confusion(**c) for c in history) for key, history in payload["recent"].items()},
        )


def _window_json(window: Window) -> dict[str, Any]:
    return {
        "number": window.number,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "rows": window.rows,
        "tallies": [
            {
                "role": t.role,
                "name": t.name,
                "version": t.version,
                "scored": t.scored,
                "alerts": t.alerts,
                "dead_letters": t.dead_letters,
                "feature_counts": t.feature_counts,
                "score_counts": t.score_counts,
                "confusion": t.confusion,
            }
            for t in window.tallies
        ],
    }


def _window_of(payload: dict[str, Any]) -> Window:
    def array(value: Any) -> np.ndarray | None:
        return None if value is None else np.asarray(value, dtype=np.int64)

    tallies = tuple(
        Tally(
            role=t["role"],
            name=t["name"],
            version=t["version"],
            scored=int(t["scored"]),
            alerts=int(t["alerts"]),
            dead_letters=int(t["dead_letters"]),
            feature_counts=array(t["feature_counts"]),
            score_counts=array(t["score_counts"]),
            confusion=np.asarray(t["confusion"], dtype=np.int64),
        )
        for t in payload["tallies"]
    )
    return Window(
        number=int(payload["number"]),
        start=datetime.fromisoformat(payload["start"]),
        end=datetime.fromisoformat(payload["end"]),
        rows=int(payload["rows"]),
        tallies=tallies,
    )


class StateReader:
    """Reads a replica's last committed state record (read_committed, to the end of every partition)."""

    def __init__(self, conn: KafkaConnection, topic: str, timeout_s: float = READ_TIMEOUT_S) -> None:
        self._conn = conn
        self._topic = topic
        self._timeout = timeout_s

    def missing(self, topics: list[str]) -> list[str]:
        """Which of ``topics`` the cluster does not have (producing to one would fail every transaction)."""
        from confluent_kafka.admin import AdminClient

        from fraudstream.kafka.clients import admin_config

        metadata = AdminClient(admin_config(self._conn)).list_topics(timeout=self._timeout)
        return [name for name in topics if name not in metadata.topics or metadata.topics[name].error is not None]

    def read(self, scorer: str) -> MonitorState | None:
        """The state of ``scorer``; None when it has none yet. Raises TimeoutError when the topic cannot be read to
        its end in time, ValueError when the record cannot be understood."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

        config = consumer_config(
            self._conn,
            group_id=f"fraudstream-monitor-restore-{scorer}",
            client_id="fraudstream-scorer-monitor",
            read_committed=True,
            **{"enable.partition.eof": True},
        )
        consumer = Consumer(config)
        wanted = scorer.encode()
        found: bytes | None = None
        deadline = time.monotonic() + self._timeout
        try:
            metadata = consumer.list_topics(self._topic, timeout=self._timeout)
            topic = metadata.topics.get(self._topic)
            if topic is None or topic.error is not None:
                raise TimeoutError(f"cannot read the topic {self._topic}: {topic.error if topic else 'not found'}")
            partitions = [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in topic.partitions]
            consumer.assign(partitions)
            open_partitions = {tp.partition for tp in partitions}
            while open_partitions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self._topic} was not read to its end within {self._timeout:g} s")
                for message in consumer.consume(500, 0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            open_partitions.discard(message.partition())
                        continue
                    if message.key() == wanted:
                        found = message.value()
        finally:
            consumer.close()
        if found is None:
            return None
        return MonitorState.from_json(orjson.loads(found))
