"""Replay a creditcard.csv onto the ``transactions`` topic, paced or not, once or in a loop.

The file is read and validated in chunks by the kernel checker (memory stays flat on the full file); each row
is validated again as a kernel Transaction and sent as JSON, keyed by its stable ``transaction_id``, with the
Kafka timestamp set to its ``event_time``. The producer is idempotent; ``poll(0)`` after every send serves
delivery reports, which count failures; ``flush()`` runs once, at the end, also after Ctrl-C (then for three
seconds at most: what is still queued is reported as undelivered).

A broker outage of any length pauses the replay rather than failing it: records wait in the producer's queue
(their delivery never times out), a full queue makes :func:`~fraudstream.kafka.produce.produce` wait, and the
outage is logged in a bounded number of lines. When librdkafka gives up on the producer (a fatal error), a new
one takes over in-process; the records the old one had not delivered are counted as failed.

With FRAUD_REPLAY_TRANSACTIONAL (``fraudstream replay --transactional``) the rows go in Kafka transactions instead
(:mod:`producer.transactional`): none is written twice, even while a partition's leader changes (librdkafka
#4953), and a row counts as delivered once its transaction commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from confluent_kafka import KafkaException

from fraudstream.data.check import iter_validated_chunks
from fraudstream.kafka.errors import describe, kafka_error
from fraudstream.kafka.outage import OutageLog
from fraudstream.schemas import FEATURES, LABEL_COLUMN
from fraudstream.shutdown import Stop
from producer.drift import Drift
from producer.encode import Encoded, encode_row, produce_encoded
from producer.exceptions import ReplayError
from producer.pacing import Pace, Pacer
from producer.transactional import TransactionalSender

log = logging.getLogger(__name__)

CHUNK_ROWS = 10_000
PROGRESS_EVERY_S = 0.2
_SHORT_WAIT_S = 0.002  # below this, sleep instead of poll(): librdkafka's poll timeout has 1 ms resolution


class Producer(Protocol):
    def produce(self, topic: str, value: Any = None, key: Any = None, **kwargs: Any) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay and how fast. ``start``/``limit`` select data rows (0-based, header excluded)."""

    data: Path | None = None
    pace: Pace = field(default_factory=Pace)
    limit: int | None = None
    start: int = 0
    loop: bool = False
    chunk_rows: int = CHUNK_ROWS
    drift: Drift | None = None
    """Perturb the features before sending (see :mod:`producer.drift`); None: the rows as they are."""
    flush_timeout_s: float = 3.0
    """How long the final flush may wait once stopped (Ctrl-C, SIGTERM). A replay that ran to its end waits for
    every record, however long the broker is away, until it is stopped."""

    def __post_init__(self) -> None:
        if self.start < 0:
            raise ReplayError(f"--start must be >= 0, got {self.start}")
        if self.limit is not None and self.limit < 0:
            raise ReplayError(f"--limit must be >= 0, got {self.limit}")


@dataclass
class ReplayStats:
    """Counts of one replay; ``delivered + failed + undelivered == sent`` once it has finished."""

    source: str = ""
    synthetic: bool = False
    total: int | None = None
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    undelivered: int = 0
    passes: int = 0
    interrupted: bool = False
    replaced: int = 0
    """Producers replaced after a fatal error."""
    transactions: int = 0
    """Transactions committed (the transactional replay); ``delivered`` counts their rows."""
    aborted: int = 0
    """Transactions aborted, their rows sent again in the next one (the transactional replay)."""
    resent_uncertain: int = 0
    """Rows sent again after a commit whose outcome was unknown: they may have been written twice."""
    first_error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Transactions sent per second so far."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class Replayer:
    """Sends the rows of one CSV; build it with :func:`producer.bootstrap.bootstrap`.

    It sends through ``producer`` (idempotent), or in Kafka transactions through the sender ``transactions``
    builds from the replay's stats and its progress callback (:mod:`producer.transactional`; rows count as
    delivered once their transaction commits).
    """

    def __init__(
        self,
        *,
        producer: Producer | None = None,
        transactions: Callable[[ReplayStats, Callable[[], None]], TransactionalSender] | None = None,
        topic: str,
        data: Path,
        synthetic: bool,
        options: ReplayOptions,
        stop: Stop,
        progress: Callable[[ReplayStats], None] | None = None,
        producer_factory: Callable[[], Producer] | None = None,
        outage: OutageLog | None = None,
    ) -> None:
        self._producer = producer
        self._producer_factory = producer_factory
        self._outage = outage or OutageLog("replay")
        self._topic = topic
        self._data = data
        self._options = options
        self._stop = stop
        self._progress = progress
        self._pacer = Pacer(options.pace)
        self._clock_started = False
        self._next_progress = 0.0
        self.stats = ReplayStats(source=str(data), synthetic=synthetic)
        self._transactions = transactions(self.stats, self._tick) if transactions is not None else None
        if (producer is None) == (self._transactions is None):
            raise ReplayError("a replay sends through a producer or in transactions, one of the two")

    def run(self) -> ReplayStats:
        """Replay until the rows run out (or forever with ``loop``) or until stopped; always flush at the end."""
        options = self._options
        self.stats.total = None if options.loop else expected_rows(self._data, options.start, options.limit)
        self.stats.started = time.monotonic()
        try:
            while not self._stop.is_set():
                self.stats.passes += 1
                sent_before = self.stats.sent
                chunks = iter_validated_chunks(self._data, options.chunk_rows, options.start, options.limit)
                for first_row, frame in chunks:
                    if not self._send_chunk(first_row, frame):
                        break
                if not options.loop or self.stats.sent == sent_before:
                    break
                self._pacer.new_pass()
        finally:
            self.stats.interrupted = self._stop.is_set()
            self._flush()
        return self.stats

    def _send_chunk(self, first_row: int, frame: pd.DataFrame) -> bool:
        """Send one validated chunk; False when stopped part-way."""
        matrix = frame[list(FEATURES)].to_numpy(dtype=np.float64)
        features = (matrix if self._options.drift is None else self._options.drift.apply(matrix)).tolist()
        labels = frame[LABEL_COLUMN].to_numpy().tolist()
        name, source = self._data.name, str(self._data)
        if not self._clock_started:
            # The paced clock starts once the first row is ready, not before the file's first chunk was read and
            # validated (20-50 ms): else the first rows go out late, in a burst, stamped with instants already past.
            self._pacer.begin()
            self._clock_started = True
        for row, (values, label) in enumerate(zip(features, labels, strict=True), start=first_row):
            offset = self._pacer.offset(self.stats.sent, values[0])  # FEATURES[0] is Time
            if offset is not None:
                self._wait(self._pacer.seconds_until(offset))
            if self._stop.is_set():
                return False
            if not self._produce(encode_row(name, row, values, label, self._pacer.event_time(offset), source=source)):
                return False
            self._serve(0)
            self.stats.sent += 1
            self._tick()
        return True

    def _wait(self, seconds: float) -> None:
        """Wait for a paced row's turn, serving delivery reports and noticing a stop request meanwhile."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            if remaining < _SHORT_WAIT_S:
                time.sleep(remaining)
                return
            self._serve(min(remaining, 0.1))
            self._tick()

    def _serve(self, timeout: float) -> None:
        """Serve delivery reports (and commit a transaction whose time is up) for up to ``timeout`` s."""
        if self._transactions is not None:
            self._transactions.poll(timeout)
        else:
            assert self._producer is not None
            self._producer.poll(timeout)

    def _produce(self, encoded: Encoded) -> bool:
        """Queue one row (waiting while the queue is full); False when stopped while waiting."""
        if self._transactions is not None:
            return self._transactions.send(encoded)
        assert self._producer is not None
        while True:
            try:
                return produce_encoded(
                    self._producer,
                    self._topic,
                    encoded,
                    on_delivery=self._delivered,
                    on_full=self._tick,
                    stop=self._stop,
                )
            except KafkaException as exc:
                error = kafka_error(exc)
                if not error.fatal() or self._producer_factory is None:
                    raise ReplayError(f"Kafka refused a transaction for {self._topic}: {describe(error)}") from exc
                self._replace_producer(describe(error))

    def _replace_producer(self, reason: str) -> None:
        """librdkafka gave up on this producer: deliver what it still can (its failures are counted), then a new
        one takes over."""
        assert self._producer_factory is not None
        assert self._producer is not None
        log.error("the replay's producer cannot go on (%s): replacing it", reason)
        self._producer.flush(5.0)
        self._producer = self._producer_factory()
        self.stats.replaced += 1

    def _delivered(self, error: Any, message: Any) -> None:
        if error is None:
            self.stats.delivered += 1
            self._outage.recovered()
            return
        self.stats.failed += 1
        if self.stats.first_error is None:
            self.stats.first_error = error.str() if hasattr(error, "str") else str(error)
        if self.stats.failed == 1 or self.stats.failed % 1000 == 0:
            log.warning("delivery failed (%d so far): %s", self.stats.failed, error)

    def _flush(self) -> None:
        """Deliver everything still queued, reporting progress meanwhile: until done when the replay ran to its
        end (a broker outage only delays it), for flush_timeout_s at most once stopped. In transactions: commit
        the open one (for flush_timeout_s at most once stopped)."""
        if self._transactions is not None:
            self.stats.undelivered = self._transactions.finish()
            self.stats.finished = time.monotonic()
            self._tick(force=True)
            return
        assert self._producer is not None
        remaining = self._producer.flush(0)
        give_up_at: float | None = None
        while remaining:
            now = time.monotonic()
            if give_up_at is None and self._stop.is_set():
                give_up_at = now + self._options.flush_timeout_s
            if give_up_at is not None and now >= give_up_at:
                break
            wait = 0.5 if give_up_at is None else min(0.5, max(0.0, give_up_at - now))
            remaining = self._producer.flush(wait)
            self._tick()
        self.stats.undelivered = remaining
        if remaining:
            log.error(
                "%d transactions were still undelivered %.0f s after the stop request",
                remaining,
                self._options.flush_timeout_s,
            )
        self.stats.finished = time.monotonic()
        self._tick(force=True)

    def _tick(self, *, force: bool = False) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if force or now >= self._next_progress:
            self._next_progress = now + PROGRESS_EVERY_S
            self._progress(self.stats)


def expected_rows(path: Path, start: int, limit: int | None) -> int | None:
    """Data rows a single pass will send (counted from newlines: cheap even on the full file)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
            if size:
                handle.seek(size - 1)
                lines += handle.read(1) != b"\n"  # a last line without its newline
    except OSError:
        return None
    rows = max(0, lines - 1 - start)
    return rows if limit is None else min(rows, limit)
