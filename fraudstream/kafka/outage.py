"""Broker outages in a bounded number of log lines, and librdkafka's own logs and errors routed through them.

A broker outage makes librdkafka report every failed connection attempt and every timed-out request (484 ERROR
lines in 27 s were measured before this module existed). A service keeps one :class:`OutageLog`: the first
failure logs ``broker unreachable since HH:MM:SS (...)``, later ones at most one line a minute, and the first
success after them ``broker reachable again after N s``. Its :class:`ClientEvents` is each client's ``logger``
and ``error_cb``: connection failures open the outage, everything librdkafka says during one is counted and
summarised instead of printed, and other lines pass through to Python logging, each kind at most every 10 s.

Only the service knows when the cluster answers again (a committed transaction, a delivered record, a measured
lag), so it calls :meth:`OutageLog.recovered`; readiness reads :attr:`OutageLog.since`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from confluent_kafka import KafkaError

from fraudstream.kafka.errors import describe, means_unreachable

log = logging.getLogger("fraudstream.kafka.outage")
LIBRDKAFKA_LOG = logging.getLogger("fraudstream.kafka.librdkafka")

REPEAT_S = 60.0
"""At most one "still unreachable" line per this many seconds."""
QUIET_S = 3.0
"""Weak evidence of recovery counts only after this long without a failure; and for this long after a recovery,
failures do not open a new outage (clients serve their queued logs late, so some still speak of the old one)."""
PASS_THROUGH_EVERY_S = 10.0
"""Outside an outage, each librdkafka log facility at WARNING or above is printed at most this often."""
_CONNECT_FACILITIES = frozenset({"FAIL", "CONNECT", "BROKERFAIL"})


class OutageLog:
    """Whether one service reaches its Kafka cluster, told in a bounded number of log lines. Thread-safe."""

    def __init__(
        self,
        service: str,
        *,
        logger: logging.Logger = log,
        repeat_s: float = REPEAT_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.service = service
        self._log = logger
        self._repeat_s = repeat_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._since: datetime | None = None
        self._started = 0.0
        self._last_line = 0.0
        self._events = 0
        self._last_failure = 0.0
        self._recovered_at = float("-inf")
        self.outages = 0

    @property
    def since(self) -> datetime | None:
        """When the current outage began (UTC); None while the cluster answers."""
        return self._since

    @property
    def reachable(self) -> bool:
        return self._since is None

    def failed(self, reason: str) -> None:
        """Something could not reach the cluster: open the outage, or count one more failure of it."""
        self._record(reason, open_new=True)

    def absorb(self, text: str) -> bool:
        """Count a client message as part of an open outage (printing nothing but the minute line); False when
        no outage is open, so the caller prints it."""
        return self._record(text, open_new=False)

    def _record(self, reason: str, *, open_new: bool) -> bool:
        with self._lock:
            now = self._clock()
            if self._since is None:
                if not open_new:
                    return False
                if now - self._recovered_at < QUIET_S:
                    return True  # queued news from before the recovery (clients serve their logs late)
                self._last_failure = now
                self._since = self._wall_clock()
                self._started = self._last_line = now
                self._events = 1
                self.outages += 1
                self._log.warning(
                    "%s: broker unreachable since %s (%s); retrying until it answers",
                    self.service,
                    self._since.strftime("%H:%M:%S"),
                    reason,
                )
                return True
            self._events += 1
            self._last_failure = now
            if now - self._last_line >= self._repeat_s:
                self._last_line = now
                self._log.warning(
                    "%s: broker still unreachable since %s (%.0f s, %d errors; last: %s)",
                    self.service,
                    self._since.strftime("%H:%M:%S"),
                    now - self._started,
                    self._events,
                    reason,
                )
            return True

    def recovered(self, *, definitive: bool = True) -> None:
        """The cluster answered: close the outage (one line), if one is open. Cheap when none is.

        ``definitive=False`` is weaker evidence (a client's statistics show the brokers up): it closes the outage
        only when no failure came for ``QUIET_S``, so that one client's success cannot flap an outage another
        client still meets (e.g. a cluster whose transaction coordinator alone is down).
        """
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            if not definitive and self._clock() - self._last_failure < QUIET_S:
                return
            self._log.warning(
                "%s: broker reachable again after %.0f s (%d errors meanwhile)",
                self.service,
                self._clock() - self._started,
                self._events,
            )
            self._since = None
            self._events = 0
            self._recovered_at = self._clock()


class ClientEvents:
    """A client's ``logger`` and ``error_cb`` (given to its configuration by :mod:`fraudstream.kafka.clients`).

    ``fatal`` keeps the last fatal error a client reported: its owner takes it with :meth:`take_fatal` after each
    ``consume()`` and replaces that client (librdkafka says so only here, e.g. a static member fenced).
    """

    def __init__(
        self,
        outage: OutageLog,
        *,
        logger: logging.Logger = LIBRDKAFKA_LOG,
        every_s: float = PASS_THROUGH_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outage = outage
        self._log = logger
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.fatal: KafkaError | None = None

    # confluent-kafka calls logger.log(level, "%s [%s] %s", facility, client name, text), level already Python's.
    def log(self, level: int, fmt: str, *args: object) -> None:
        facility = str(args[0]) if args else "?"
        text = str(args[-1]) if args else fmt
        if level < logging.WARNING:
            self._log.log(level, fmt, *args)
            return
        if self.outage.absorb(text):
            return
        if facility in _CONNECT_FACILITIES:
            self.outage.failed(text)
            return
        self._limited(facility, level, fmt, *args)

    def error(self, error: KafkaError) -> None:
        """The ``error_cb``: librdkafka's client-level errors (per-request ones reach the caller instead)."""
        if error.fatal() or error.code() == KafkaError._FATAL:  # error_cb gets _FATAL without the flag set
            self.fatal = error
            self._log.error("fatal Kafka client error (the client will be replaced): %s", describe(error))
        elif means_unreachable(error) or error.code() == KafkaError._ALL_BROKERS_DOWN:
            if error.code() != KafkaError._TRANSPORT or not self.outage.reachable:
                self.outage.failed(describe(error))
            # one dropped connection alone (e.g. the broker closing an idle one) is no outage
        elif not self.outage.absorb(describe(error)):
            self._limited(error.name(), logging.WARNING, "Kafka client error: %s", describe(error))

    def take_fatal(self) -> KafkaError | None:
        """The fatal error reported since the last call, if any (and forget it)."""
        fatal, self.fatal = self.fatal, None
        return fatal

    def _limited(self, key: str, level: int, fmt: str, *args: object) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last.get(key, float("-inf")) < self._every_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            fmt += f" ({suppressed} similar lines suppressed)"
        self._log.log(level, fmt, *args)
