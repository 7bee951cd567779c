"""Readiness facts of a group consumer, the same for the scorer and the alert sink: does it hold partitions,
does it reach the broker, and how far behind is it (its lag, measured, not guessed).

The service loop calls :meth:`ConsumerHealth.measure` between batches (it asks the broker for the high
watermarks at most every ``interval_s``, within a short time budget) and :meth:`ConsumerHealth.assigned` from its
rebalance callbacks; anyone may read :meth:`ConsumerHealth.report` (a probe, a status line) from any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from confluent_kafka import KafkaException, TopicPartition

from fraudstream.kafka.errors import describe
from fraudstream.kafka.outage import OutageLog

LAG_INTERVAL_S = 2.0
LAG_BUDGET_S = 1.5
"""Longest a lag measurement may take (all partitions together): the loop stays responsive during outages."""


class LagConsumer(Protocol):
    def assignment(self) -> list[TopicPartition]: ...

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]: ...

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float, cached: bool) -> tuple[int, int]: ...


class LagUnknownError(Exception):
    """The lag could not be measured within its time budget (the message says why)."""


def measure_lag(
    consumer: LagConsumer,
    *,
    budget_s: float = LAG_BUDGET_S,
    committed: Callable[[str, int], int | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, int]:
    """``(partitions, lag)``: the assigned partitions and the sum of (high watermark - position) over them.

    A partition with no position yet (nothing fetched since the assignment) counts from its committed offset
    (``committed(topic, partition)`` when it knows it, else asked of the broker), or from the low watermark
    when the group never committed one. Raises LagUnknownError when the broker does not answer in time.
    """
    deadline = clock() + budget_s
    assignment = consumer.assignment()
    total = 0
    try:
        for tp in consumer.position(assignment):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=_remaining(deadline, clock), cached=False
            )
            offset = tp.offset
            if offset < 0:
                known = committed(tp.topic, tp.partition) if committed is not None else None
                if known is None:
                    (found,) = consumer.committed(
                        [TopicPartition(tp.topic, tp.partition)], timeout=_remaining(deadline, clock)
                    )
                    known = found.offset
                offset = known if known >= 0 else low
            total += max(0, high - offset)
    except KafkaException as exc:
        raise LagUnknownError(describe(exc)) from exc
    return len(assignment), total


def _remaining(deadline: float, clock: Callable[[], float]) -> float:
    remaining = deadline - clock()
    if remaining <= 0:
        raise LagUnknownError("the broker did not answer within the lag budget")
    return remaining


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


class ConsumerHealth:
    """Partitions, reachability and lag of one group consumer. Thread-safe reads."""

    def __init__(
        self,
        outage: OutageLog,
        *,
        interval_s: float = LAG_INTERVAL_S,
        budget_s: float = LAG_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outage = outage
        self.interval_s = interval_s
        self.budget_s = budget_s
        self.stale_s = max(10.0, 4 * interval_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._partitions = 0
        self._lag: int | None = None
        self._measured_at: float | None = None
        self._lag_error: str | None = "not measured yet"
        self._next_at = 0.0

    def assigned(self, partitions: int) -> None:
        with self._lock:
            self._partitions = partitions

    def due(self) -> bool:
        return self._clock() >= self._next_at

    def measure(self, consumer: Any, *, committed: Callable[[str, int], int | None] | None = None) -> int | None:
        """Measure the lag if it is due (else return the last one); a success also closes an open outage (the
        broker answered)."""
        now = self._clock()
        if now < self._next_at:
            return self._lag
        self._next_at = now + self.interval_s
        try:
            partitions, lag = measure_lag(consumer, budget_s=self.budget_s, committed=committed, clock=self._clock)
        except LagUnknownError as exc:  # not proof of an outage by itself (a slow broker): the clients tell that
            with self._lock:
                self._lag, self._lag_error = None, str(exc)
            return None
        with self._lock:
            self._partitions, self._lag, self._lag_error, self._measured_at = partitions, lag, None, self._clock()
        self.outage.recovered()
        return lag

    def report(self) -> HealthReport:
        with self._lock:
            partitions, lag, error, measured_at = self._partitions, self._lag, self._lag_error, self._measured_at
        since = self.outage.since
        problems = []
        if partitions == 0:
            problems.append("holds no partitions (joining the group, or waiting for a dead member's session)")
        if since is not None:
            problems.append(f"cannot reach the broker since {since.strftime('%H:%M:%S')} UTC")
        if error is not None:
            problems.append(f"lag cannot be measured: {error}")
        elif measured_at is not None and self._clock() - measured_at > self.stale_s:
            problems.append(f"lag not measured for {self._clock() - measured_at:.0f} s")
        return HealthReport(partitions=partitions, lag=lag, unreachable_since=since, problems=problems)
