"""Read the committed monitoring records of ``fraud-monitoring``: followed live, or up to the end of the topic.

The one consume loop of the monitoring readers outside the API (``fraudstream monitor``, ``fraudstream model
status``, the demo's summary). It assigns every partition itself (no consumer group: nothing to join, no offsets
moved) and reads ``read_committed``, so a window of an aborted scorer transaction is never seen.

:func:`follow_monitoring` yields each record, and ``None`` after a poll that brought none (a tick, so a live view
can redraw); :func:`read_monitoring` returns every record up to the end of the topic. :class:`LatestWindows` folds
records into the newest window of each version with the counts over all of them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fraudstream.exceptions import BrokerError
from fraudstream.monitoring import Confusion, MonitoringRecord
from fraudstream.settings import Settings
from fraudstream.shutdown import Stop

InvalidHandler = Callable[[int, int, str], None]
"""Told ``(partition, offset, why)`` of a message that is not a monitoring record (it is skipped)."""
ConsumerFactory = Callable[[dict[str, Any]], Any]


def _consumer(config: dict[str, Any]) -> Any:
    from confluent_kafka import Consumer

    return Consumer(config)


class _Never:
    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float) -> bool:
        time.sleep(timeout)
        return False


def follow_monitoring(
    settings: Settings,
    *,
    stop: Stop | None = None,
    from_beginning: bool = True,
    until_end: bool = False,
    idle_s: float = 3.0,
    on_invalid: InvalidHandler | None = None,
    consumer_factory: ConsumerFactory = _consumer,
) -> Iterator[MonitoringRecord | None]:
    """Monitoring records as they are committed, oldest first per partition (``from_beginning``: the whole
    topic; else only new ones). With ``until_end`` it returns once every partition is read up to where it ended
    when the call started, or after ``idle_s`` without a record (an open scorer transaction holds the end back)."""
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, KafkaException, TopicPartition

    from fraudstream.kafka.clients import consumer_config

    stop = stop or _Never()
    topic = settings.topic_monitoring
    consumer = consumer_factory(
        consumer_config(
            settings.kafka(),
            group_id=f"fraudstream-monitor-{uuid.uuid4().hex[:8]}",  # never joined: partitions are assigned
            client_id="fraudstream-monitor",
        )
    )
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            raise BrokerError(f"cannot reach the broker at {settings.bootstrap_servers}: {exc}") from exc
        described = metadata.topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise BrokerError(
                f"topic {topic!r} does not exist on {settings.bootstrap_servers}: run `fraudstream kafka up`"
            )
        partitions = sorted(described.partitions)
        ends: dict[int, int] = {}
        if until_end:
            for partition in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > low:
                    ends[partition] = high
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, partition, start) for partition in partitions])
        quiet_since = time.monotonic()
        while not stop.is_set():
            if until_end and (not ends or time.monotonic() - quiet_since > idle_s):
                return
            messages = consumer.consume(num_messages=200, timeout=0.5)
            got = False
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise BrokerError(f"reading {topic}: {error}")
                    continue
                got = True
                try:
                    record = MonitoringRecord.model_validate_json(message.value() or b"")
                except ValueError as exc:
                    if on_invalid is not None:
                        on_invalid(message.partition(), message.offset(), str(exc).splitlines()[0])
                    continue
                yield record
            if got:
                quiet_since = time.monotonic()
            else:
                yield None
            if until_end:
                for tp in consumer.position([TopicPartition(topic, p) for p in list(ends)]):
                    if tp.offset >= ends[tp.partition]:
                        ends.pop(tp.partition)
    finally:
        consumer.close()


def read_monitoring(settings: Settings, *, idle_s: float = 3.0, **options: Any) -> list[MonitoringRecord]:
    """Every committed monitoring record on the topic now, in partition order."""
    return [
        record for record in follow_monitoring(settings, until_end=True, idle_s=idle_s, **options) if record is not None
    ]


@dataclass
class VersionWindows:
    """What the records of one version add up to: its newest window, how many windows, and their totals."""

    latest: MonitoringRecord
    windows: int = 0
    scored: int = 0
    alerts: int = 0
    confusion: Confusion = field(default_factory=Confusion)


class LatestWindows:
    """The newest window of each ``(model_name, model_version)``, with the counts over all its windows."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], VersionWindows] = {}

    def add(self, record: MonitoringRecord) -> None:
        key = (record.model_name, record.model_version)
        seen = self.versions.get(key)
        if seen is None:
            seen = self.versions[key] = VersionWindows(latest=record)
        elif record.window_end >= seen.latest.window_end:
            seen.latest = record
        seen.windows += 1
        seen.scored += record.scored
        seen.alerts += record.alerts
        seen.confusion = seen.confusion + record.confusion

    def newest_first(self) -> list[VersionWindows]:
        return sorted(self.versions.values(), key=lambda v: v.latest.window_end, reverse=True)
