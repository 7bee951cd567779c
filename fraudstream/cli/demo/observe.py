"""What the demo watches from outside the services: committed alerts as they appear, and the scorer's progress."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from fraudstream.kafka.clients import admin_config, consumer_config
from fraudstream.schemas import Alert
from fraudstream.settings import Settings


@dataclass(frozen=True)
class SeenAlert:
    alert: Alert
    received_at: datetime

    @property
    def latency_s(self) -> float:
        """Event time to the moment a read_committed subscriber received the alert."""
        return (self.received_at - self.alert.event_time).total_seconds()


@dataclass
class AlertCollector:
    """A read_committed subscriber in a thread: records every alert committed after it started, with the
    time it became visible, the way any downstream consumer of fraud-alerts would see it."""

    settings: Settings
    seen: list[SeenAlert] = field(default_factory=list)
    invalid: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-alert-collector", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("the alert subscriber could not read fraud-alerts' end offsets")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        consumer = Consumer(
            consumer_config(
                self.settings.kafka(), group_id=f"fraudstream-demo-{uuid.uuid4().hex[:8]}", client_id="fraudstream-demo"
            )
        )
        try:
            topic = self.settings.topic_alerts
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            starts = []
            for partition in partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                starts.append(TopicPartition(topic, partition, high))  # only alerts committed from now on
            consumer.assign(starts)
            self._ready.set()
            while not self._stop.is_set():
                for message in consumer.consume(num_messages=500, timeout=0.2):
                    if message.error() is not None:
                        continue
                    received = datetime.now(timezone.utc)
                    try:
                        alert = Alert.model_validate_json(message.value() or b"")
                    except ValueError:
                        self.invalid += 1
                        continue
                    self.seen.append(SeenAlert(alert, received))
        finally:
            consumer.close()


class ScorerGroup:
    """The scorer group seen from outside, through clients opened once (not one per poll): its lag on the
    transactions topic and whether its members hold every partition."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin: AdminClient | None = None
        self._offsets: Consumer | None = None

    def has_partitions(self) -> bool:
        """True once the group's members hold all of the transactions topic's partitions."""
        if self._admin is None:
            self._admin = AdminClient(admin_config(self._settings.kafka(), client_id="fraudstream-demo-admin"))
        (future,) = self._admin.describe_consumer_groups([self._settings.scorer_group_id], request_timeout=10).values()
        assigned = {
            tp.partition
            for member in future.result().members
            for tp in (member.assignment.topic_partitions if member.assignment else [])
            if tp.topic == self._settings.topic_transactions
        }
        return len(assigned) >= self._settings.topic_partitions

    def lag(self) -> int:
        """Transactions not yet committed by the group: high watermarks minus its committed offsets."""
        if self._offsets is None:  # it never subscribes: it reads the group's offsets without joining the group
            self._offsets = Consumer(
                consumer_config(
                    self._settings.kafka(), group_id=self._settings.scorer_group_id, client_id="fraudstream-demo-lag"
                )
            )
        consumer, topic = self._offsets, self._settings.topic_transactions
        partitions = [
            TopicPartition(topic, p) for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        lag = 0
        for committed in consumer.committed(partitions, timeout=10):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, committed.partition), timeout=10)
            lag += high - max(committed.offset, 0)
        return lag

    def close(self) -> None:
        if self._offsets is not None:
            self._offsets.close()
            self._offsets = None
        self._admin = None
