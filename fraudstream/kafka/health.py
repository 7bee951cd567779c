"""Readiness facts of a group consumer, the same for the scorer and the alert sink: does it hold partitions,
does it reach the broker, and how far behind is it (its lag, measured, not guessed).

The lag comes from librdkafka's statistics (``stats_cb``, every ``STATS_INTERVAL_MS`` ms), which carry each
partition's last stable offset and position as the fetcher saw them: no extra broker request, nothing that can
block the loop. :meth:`ConsumerHealth.on_stats` reads them (librdkafka calls it from inside ``consume()``), the
service tells :meth:`ConsumerHealth.assigned` how many partitions it holds, and anyone may read
:meth:`ConsumerHealth.report` (a probe, a status line) from any thread.

A lag that cannot be measured is said so: statistics not yet received, or too old (the loop has not called
``consume()`` for a while), or a partition whose offsets are unknown. Statistics showing the partitions' leaders
``UP`` are also the positive sign that closes an outage opened by the clients' errors.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fraudstream.kafka.clients import STATS_INTERVAL_MS
from fraudstream.kafka.outage import OutageLog

STALE_AFTER_S = 10 * STATS_INTERVAL_MS / 1000
"""Statistics older than this (ten intervals) say the loop has not served its consumer: the lag is unknown."""


@dataclass(frozen=True)
class HealthReport:
    """What a readiness probe says: ``ready`` with no problems, else each problem in one line."""

    partitions: int
    lag: int | None
    unreachable_since: datetime | None
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems


_POSITIONS = ("app_offset", "committed_offset", "lo_offset")
"""Where a partition's reader stands, in order of preference."""


@dataclass(frozen=True)
class LagReading:
    """The lag over the partitions a statistics report showed as assigned, or why it is unknown."""

    partitions: int
    lag: int | None
    unknown: str | None
    leaders_up: bool


def read_stats(raw: str, topic: str, *, read_committed: bool = True) -> LagReading:
    """The lag of ``topic``'s assigned partitions in one librdkafka statistics report (see STATISTICS.md):
    end (last stable offset when reading committed, else high watermark) minus position (the next offset the
    application reads, else the committed one, else the low watermark)."""
    stats = json.loads(raw)
    states = {broker.get("nodeid"): broker.get("state") for broker in stats.get("brokers", {}).values()}
    partitions = stats.get("topics", {}).get(topic, {}).get("partitions", {})
    total, count, unknown, leaders_up = 0, 0, None, True
    for number, part in partitions.items():
        if int(number) < 0 or not part.get("desired"):
            continue
        count += 1
        leaders_up = leaders_up and states.get(part.get("leader")) == "UP"
        end = part.get("ls_offset" if read_committed else "hi_offset", -1)
        position = next((part[key] for key in _POSITIONS if part.get(key, -1) >= 0), -1)
        if end < 0 or position < 0:
            unknown = unknown or f"offsets of {topic}[{number}] not known yet"
            continue
        total += max(0, end - position)
    if not count:
        leaders_up = any(state == "UP" for node, state in states.items() if isinstance(node, int) and node >= 0)
    return LagReading(partitions=count, lag=None if unknown else total, unknown=unknown, leaders_up=leaders_up)


class ConsumerHealth:
    """Partitions, reachability and lag of one group consumer of ``topic``. Thread-safe reads."""

    def __init__(
        self,
        outage: OutageLog,
        topic: str,
        *,
        read_committed: bool = True,
        stale_after_s: float = STALE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outage = outage
        self.topic = topic
        self.read_committed = read_committed
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._partitions = 0
        self._reading: LagReading | None = None
        self._read_at = 0.0

    def assigned(self, partitions: int) -> None:
        with self._lock:
            self._partitions = partitions

    def on_stats(self, raw: str) -> None:
        """The consumer's ``stats_cb``: keep the lag it shows; leaders up close an open outage."""
        try:
            reading = read_stats(raw, self.topic, read_committed=self.read_committed)
        except (ValueError, TypeError, AttributeError) as exc:
            reading = LagReading(partitions=0, lag=None, unknown=f"unreadable statistics ({exc})", leaders_up=False)
        with self._lock:
            self._reading, self._read_at = reading, self._clock()
        if reading.leaders_up:
            self.outage.recovered(definitive=False)

    @property
    def lag(self) -> int | None:
        return self.report().lag

    def report(self) -> HealthReport:
        with self._lock:
            partitions, reading, read_at = self._partitions, self._reading, self._read_at
        since = self.outage.since
        problems = []
        if partitions == 0:
            problems.append("holds no partitions (joining the group, or waiting for a dead member's session)")
        if since is not None:
            problems.append(f"cannot reach the broker since {since.strftime('%H:%M:%S')} UTC")
        lag = None
        age = self._clock() - read_at
        if reading is None:
            problems.append("lag cannot be measured: no statistics from the consumer yet")
        elif age > self.stale_after_s:
            problems.append(f"lag cannot be measured: the consumer's last statistics are {age:.0f} s old")
        elif reading.unknown is not None:
            problems.append(f"lag cannot be measured: {reading.unknown}")
        else:
            lag = reading.lag
        return HealthReport(partitions=partitions, lag=lag, unreachable_since=since, problems=problems)
