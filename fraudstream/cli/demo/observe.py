"""What the demo watches from outside the services: committed alerts as they appear, and the scorer's progress.

Both read Kafka through the kernel (:func:`fraudstream.kafka.follow.follow_topic`,
:class:`fraudstream.kafka.group.GroupView`); this module only keeps what the demo's summary needs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from fraudstream.kafka.follow import follow_topic
from fraudstream.kafka.group import GroupView
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
    """A read_committed follower of fraud-alerts in a thread: records every alert committed after it started, with
    the time it became visible, the way any downstream consumer of fraud-alerts would see it."""

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
        alerts = follow_topic(
            self.settings,
            self.settings.topic_alerts,
            Alert.model_validate_json,
            stop=self._stop,
            on_ready=self._ready.set,
            on_invalid=self._count_invalid,
            client_id="fraudstream-demo",
            poll_s=0.2,
        )
        for item in alerts:
            self.seen.append(SeenAlert(item.value, item.received_at))

    def _count_invalid(self, partition: int, offset: int, error: Exception) -> None:
        self.invalid += 1


class ScorerGroup(GroupView):
    """The scorer group seen from outside: its lag on the transactions topic, and whether its members hold every
    partition."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.scorer_group_id, settings.topic_transactions, client_id="fraudstream-demo")
        self._partitions = settings.topic_partitions

    def has_partitions(self) -> bool:
        """True once the group's members hold all of the transactions topic's partitions."""
        return len(self.assigned()) >= self._partitions
