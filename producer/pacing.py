"""When each replayed row enters the live stream, and thus its ``event_time``.

Three paces:

* unpaced: as fast as the broker takes them; ``event_time`` is the moment the row is sent;
* ``rate``: ``rate`` transactions per second; row ``n`` (0-based, counted across loop passes) is due
  ``n / rate`` seconds after the start;
* ``speed``: a multiple of real time from the ``Time`` column; a row is due ``(Time - first Time) / speed``
  seconds after the start, where the first Time is that of the first row replayed.

Due times never go backwards: a row whose ``Time`` is earlier than its predecessor's (files concatenated from
several sources do this) enters the stream right after it, so event times stay in stream order. With ``--loop``
each pass starts one mean inter-arrival gap after the previous pass's last row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from producer.exceptions import ReplayError


@dataclass(frozen=True)
class Pace:
    """How fast rows are replayed: ``rate`` (rows per second) or ``speed`` (x real time), or neither."""

    rate: float | None = None
    speed: float | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and self.speed is not None:
            raise ReplayError("choose one pace: --rate (transactions per second) or --speed (x real time), not both")
        for name, value in (("rate", self.rate), ("speed", self.speed)):
            if value is not None and not value > 0:
                raise ReplayError(f"--{name} must be > 0, got {value}")

    @property
    def paced(self) -> bool:
        return self.rate is not None or self.speed is not None

    def describe(self) -> str:
        if self.rate is not None:
            return f"{self.rate:g} tx/s"
        if self.speed is not None:
            return f"{self.speed:g}x real time"
        return "as fast as possible"


class Pacer:
    """Turns (sequence number, Time) into a due instant and an event_time, from a start fixed by :meth:`begin`."""

    def __init__(
        self,
        pace: Pace,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.pace = pace
        self._monotonic = monotonic
        self._wall = wall
        self._start_mono = 0.0
        self._start_wall = datetime.fromtimestamp(0, timezone.utc)
        self._first_time: float | None = None
        self._pass_base = 0.0
        self._pass_rows = 0
        self._last_offset = 0.0

    def begin(self) -> None:
        """Fix the start of the stream at this instant."""
        self._start_mono = self._monotonic()
        self._start_wall = self._wall()

    def new_pass(self) -> None:
        """The data starts over (``--loop``): continue the timeline one mean gap after the last row."""
        if self.pace.speed is not None and self._pass_rows > 1:
            span = self._last_offset - self._pass_base
            self._pass_base = self._last_offset + span / (self._pass_rows - 1)
        self._first_time = None
        self._pass_rows = 0

    def offset(self, sequence: int, time_value: float) -> float | None:
        """Seconds after the start at which row ``sequence`` (0-based, across passes) is due; None when unpaced."""
        if self.pace.rate is not None:
            due = sequence / self.pace.rate
        elif self.pace.speed is not None:
            if self._first_time is None:
                self._first_time = time_value
            due = self._pass_base + (time_value - self._first_time) / self.pace.speed
        else:
            return None
        due = max(due, self._last_offset)
        self._last_offset = due
        self._pass_rows += 1
        return due

    def seconds_until(self, offset: float) -> float:
        """How long to wait before a row due at ``offset`` may be sent (<= 0: now)."""
        return self._start_mono + offset - self._monotonic()

    def event_time(self, offset: float | None) -> datetime:
        """The row's event_time: start + offset when paced, else now."""
        if offset is None:
            return self._wall()
        return self._start_wall + timedelta(seconds=offset)
