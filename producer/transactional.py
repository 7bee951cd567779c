"""The replay in Kafka transactions: no row written twice, and a row delivered only once its transaction commits.

An idempotent producer alone can write a record twice while a partition's leader changes (librdkafka #4953, open;
its maintainer: only transactions rule that out). It happened once in CI's rolling restart (issue #9: the scorer
committed 2,399 offsets for 2,398 rows sent). :class:`TransactionalSender` sends the replay's rows in transactions
of at most ``rows`` rows, each committed at the latest ``interval_s`` after its first row
(FRAUD_REPLAY_TRANSACTION_ROWS, FRAUD_REPLAY_TRANSACTION_MS). It keeps the rows of the open transaction until it
commits, and on each kind of failure:

* **retriable** (a broker away, a coordinator moving, a call that timed out): the same call again after a
  back-off ("retry call to resume"), the outage told in a bounded number of lines
  (:class:`~fraudstream.kafka.outage.OutageLog`);
* ``txn_requires_abort()`` (e.g. records that timed out during an outage): abort, then the same rows again in a
  new transaction;
* **a producer that cannot go on** (fatal, fenced, a state librdkafka will not leave, a call the watchdog
  abandoned): a new producer with the same ``transactional.id``, whose ``init_transactions`` fences the old one
  and settles its open transaction, then the same rows again in a new transaction;
* **a record Kafka refuses for what it is** (too large, invalid): counted as failed and left out of the retried
  transaction, so no transaction can loop on it.

A producer replaced *during* its commit (a ``commit_transaction`` the watchdog abandoned, or answered by a fatal
error) leaves the outcome unknown: the new producer's ``init_transactions`` settles it, then ``check_committed``
(:func:`producer.commit_check.record_committed`) asks the topic whether a row of it, at the offset its delivery
report gave, was committed: if so its rows are delivered, else they go again. Only when that cannot be told (no
delivery report, the cluster silent for 30 s) are they sent again unsure, counted in
``ReplayStats.resent_uncertain`` with a WARNING: they may then be written twice.

Every blocking call runs under a :class:`~fraudstream.kafka.watchdog.Watchdog` (it cannot block past its timeout
plus a margin). Once stopped, the sender tries for ``flush_timeout_s`` to commit what is open; the rows it could
not commit are undelivered.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from confluent_kafka import KafkaError, KafkaException

from fraudstream.kafka.errors import describe, kafka_error, means_unreachable, misconfigured, refuses_record
from fraudstream.kafka.outage import OutageLog
from fraudstream.kafka.watchdog import CallAbandoned, Watchdog
from fraudstream.shutdown import Stop
from producer.encode import Encoded, produce_encoded
from producer.exceptions import ReplayError

if TYPE_CHECKING:
    from producer.replay import ReplayStats

log = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_MS = 30_000
"""transaction.timeout.ms of the replay's producer (and its message.timeout.ms, which may not exceed it): how long
a crashed replay's open transaction holds back the read_committed readers of its partitions (the scorer)."""
MAX_CALL_TIMEOUT_S = 5.0
"""Timeout given to one blocking call; a longer wait is several calls."""
WATCHDOG_MARGIN_S = 2.0
MAX_BACKOFF_S = 1.0
STOP_CALL_TIMEOUT_S = 1.0


class TransactionalProducer(Protocol):
    def init_transactions(self, timeout: float) -> None: ...

    def begin_transaction(self) -> None: ...

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def commit_transaction(self, timeout: float) -> None: ...

    def abort_transaction(self, timeout: float) -> None: ...


class _GaveUpError(Exception):
    """Stopped, and the time left to commit after the stop (flush_timeout_s) is over."""


class TransactionalSender:
    """Sends replayed rows in transactions through a producer it builds (and rebuilds) from ``producer_factory``."""

    def __init__(
        self,
        producer_factory: Callable[[], TransactionalProducer],
        *,
        topic: str,
        stats: ReplayStats,
        stop: Stop,
        outage: OutageLog,
        rows: int = 500,
        interval_s: float = 0.1,
        flush_timeout_s: float = 3.0,
        watchdog: Watchdog | None = None,
        call_timeout_s: float = MAX_CALL_TIMEOUT_S,
        on_wait: Callable[[], None] | None = None,
        check_committed: Callable[[str, int, int, bytes], bool | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = producer_factory
        self._topic = topic
        self.stats = stats
        self._stop = stop
        self._outage = outage
        self._rows = rows
        self._interval_s = interval_s
        self.flush_timeout_s = flush_timeout_s
        self._watchdog = watchdog or Watchdog("replay", margin_s=WATCHDOG_MARGIN_S)
        self._call_timeout = call_timeout_s
        self._on_wait = on_wait or (lambda: None)
        self._check_committed = check_committed
        self._clock = clock
        self._producer: TransactionalProducer | None = None
        self._pending: list[Encoded] = []
        """The rows of the transaction not committed yet, in the order sent."""
        self._open = False
        """True while a transaction is open and holds every pending row."""
        self._first_row_at = 0.0
        self._committing = False
        self._refused: dict[bytes, str] = {}
        self._located: dict[bytes, tuple[int, int]] = {}
        """key -> (partition, offset) of the open transaction's rows, from their delivery reports."""
        self._uncertain = False
        """A producer was lost during its commit: whether the pending rows were committed is to be found out."""
        self._give_up_at: float | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ---- what the replayer calls ------------------------------------------------------------------------------
    def send(self, encoded: Encoded) -> bool:
        """Put one row in the open transaction (beginning one first if needed), and commit once it holds ``rows``.
        False when stopped before the row could be queued (it was not sent)."""
        try:
            if not self._ensure_open():
                return False
            assert self._producer is not None
            queued = produce_encoded(
                self._producer,
                self._topic,
                encoded,
                on_delivery=self._delivered,
                on_full=self._on_wait,
                stop=self._stop,
            )
        except _GaveUpError:
            return False
        except KafkaException as exc:
            error = kafka_error(exc)
            if refuses_record(error):
                self._count_refused(describe(error))
                return True
            self._add(encoded)  # it goes into the retried transaction with the others
            self._recover("produce", exc)
            return True
        if not queued:
            return False
        self._add(encoded)
        if len(self._pending) >= self._rows:
            self._commit()
        return True

    def poll(self, timeout: float) -> None:
        """Serve delivery reports for up to ``timeout`` s; commit the open transaction once its time is up."""
        if self._producer is not None:
            self._producer.poll(timeout)
        elif timeout > 0:
            time.sleep(timeout)
        if self._pending and self._clock() - self._first_row_at >= self._interval_s:
            self._commit()

    def finish(self) -> int:
        """Commit what is still open (for ``flush_timeout_s`` at most once stopped) and dispose of the producer;
        returns the rows left uncommitted (undelivered)."""
        if self._pending:
            self._commit()
        undelivered = len(self._pending)
        if undelivered:
            log.error("%d replayed rows were left in a transaction that could not be committed", undelivered)
            self._abort_quietly()
        self._close()
        return undelivered

    # ---- transactions -----------------------------------------------------------------------------------------
    def _add(self, encoded: Encoded) -> None:
        if not self._pending:
            self._first_row_at = self._clock()
        self._pending.append(encoded)

    def _commit(self) -> bool:
        """Commit the pending rows, sending them again in a new transaction after an abort or a new producer, until
        they are committed (True) or the time after a stop is over (False)."""
        while self._pending:
            try:
                if not self._ensure_open():
                    return False
                if not self._pending:  # the transaction in doubt held them, and was committed after all
                    return True
                producer = self._producer
                assert producer is not None
                self._committing = True
                self._retrying("commit_transaction", partial(producer.commit_transaction, self._call_timeout))
            except _GaveUpError:
                return False
            except (KafkaException, CallAbandoned) as exc:
                self._recover("commit_transaction", exc)
                continue
            finally:
                self._committing = False
            self.stats.delivered += len(self._pending)
            self.stats.transactions += 1
            self._pending.clear()
            self._open = False
            self._outage.recovered()
        return True

    def _ensure_open(self) -> bool:
        """Make sure a transaction is open and holds every pending row (a producer first, the rows sent again);
        False when the time after a stop is over first."""
        while not self._open:
            self._check_time()
            if self._producer is None:
                if not self._start():
                    return False
                if self._uncertain:
                    self._settle_uncertain()
            producer = self._producer
            assert producer is not None
            try:
                producer.poll(0)  # reports of an aborted transaction, before its locations are forgotten
                self._located.clear()
                producer.begin_transaction()
                self._open = True
                for encoded in self._pending:
                    produce_encoded(producer, self._topic, encoded, on_delivery=self._delivered, on_full=self._on_wait)
            except KafkaException as exc:
                self._recover("begin_transaction", exc)
        return True

    def _start(self) -> bool:
        """A new producer with transactions initialised (fencing any older one with the same transactional.id and
        settling its open transaction), retrying while the cluster is away. False when the time after a stop is
        over first."""
        delay = 0.2
        holder: list[Any] = []
        while True:
            if self._stopped_too_long():
                self._watchdog.dispose("producer", holder)
                return False
            if not holder:
                holder.append(self._factory())
            try:
                self._watchdog.call(
                    "init_transactions",
                    partial(holder[0].init_transactions, self._call_timeout),
                    timeout_s=self._call_timeout,
                )
            except CallAbandoned:
                holder.clear()  # its blocked worker keeps it: never destroyed under librdkafka's feet
                continue
            except KafkaException as exc:
                error = kafka_error(exc)
                if misconfigured(error):
                    raise ReplayError(f"cannot initialise Kafka transactions: {describe(error)}") from exc
                self._note_failure("init_transactions", error)
                if error.fatal() or not (error.retriable() or means_unreachable(error)):
                    self._watchdog.dispose("producer", holder)
                try:
                    self._back_off(delay)
                except _GaveUpError:
                    self._watchdog.dispose("producer", holder)
                    return False
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            self._producer = holder.pop()
            self._outage.recovered()
            return True

    def _recover(self, stage: str, exc: BaseException) -> None:
        """After ``stage`` failed: abort (the rows go again in a new transaction) or replace the producer."""
        if isinstance(exc, CallAbandoned):
            self._producer = None  # left with its blocked worker
            self._replaced(str(exc))
            return
        error = kafka_error(exc)
        if misconfigured(error):
            raise ReplayError(f"Kafka refused the replay's transaction: {describe(error)}") from exc
        if error.txn_requires_abort() and not error.fatal():
            self._note_failure(stage, error)
            with contextlib.suppress(_GaveUpError):  # stopped meanwhile: finish() leaves it to the broker
                self._abort(describe(error))
            return
        self._close()
        self._replaced(f"{stage}: {describe(error)}")

    def _abort(self, reason: str) -> None:
        """Abort the open transaction (its rows go again in the next one); replace the producer if it cannot."""
        producer = self._producer
        assert producer is not None
        try:
            self._retrying("abort_transaction", partial(producer.abort_transaction, self._call_timeout))
        except CallAbandoned as exc:
            self._producer = None
            self._replaced(f"abort after {reason}: {exc}")
            return
        except KafkaException as exc:
            self._close()
            self._replaced(f"cannot abort after {reason}: {describe(exc)}")
            return
        self._open = False
        self.stats.aborted += 1
        self._leave_out_refused()
        log.info("aborted a replay transaction (%s): its %d rows go again", reason, len(self._pending))

    def _replaced(self, reason: str) -> None:
        """The producer is gone (closed, or abandoned to a blocked call): the next transaction takes a new one."""
        self._producer = None
        self._open = False
        self.stats.replaced += 1
        if self._committing and self._pending:
            self._uncertain = True
            log.warning(
                "the replay's producer was lost while committing (%s): its replacement settles that transaction, "
                "then the topic says whether its %d rows were committed",
                reason,
                len(self._pending),
            )
        else:
            log.warning("replacing the replay's transactional producer (%s)", reason)
        self._leave_out_refused()

    def _settle_uncertain(self) -> None:
        """After a producer lost during its commit (the new one has settled that transaction): ask the topic
        whether a row of it was committed. Committed: its rows are delivered; aborted: they go again; unknown:
        they go again, counted as maybe written twice."""
        self._uncertain = False
        count = len(self._pending)
        located = next(
            ((key, *self._located[key]) for key in (row.key for row in self._pending) if key in self._located), None
        )
        committed = None
        if located is not None and self._check_committed is not None:
            key, partition, offset = located
            committed = self._check_committed(self._topic, partition, offset, key)
        if committed:
            log.warning("the transaction in doubt was committed: its %d rows are not sent again", count)
            self.stats.delivered += count
            self.stats.transactions += 1
            self._pending.clear()
        elif committed is False:
            log.info("the transaction in doubt was aborted: its %d rows go again", count)
        else:
            self.stats.resent_uncertain += count
            log.warning(
                "whether the transaction in doubt was committed cannot be told: its %d rows go again (they may be "
                "written twice)",
                count,
            )

    def _abort_quietly(self) -> None:
        producer = self._producer
        if producer is None or not self._open:
            return
        try:
            self._watchdog.call(
                "abort_transaction",
                partial(producer.abort_transaction, STOP_CALL_TIMEOUT_S),
                timeout_s=STOP_CALL_TIMEOUT_S,
            )
        except (KafkaException, CallAbandoned) as exc:
            log.info("the open replay transaction was left to the broker to abort (%s)", exc)
            if isinstance(exc, CallAbandoned):
                self._producer = None
        self._open = False

    def _close(self) -> None:
        """Dispose of the producer (its destructor runs in the watchdog's worker, so it cannot block us)."""
        if self._producer is not None:
            holder: list[Any] = [self._producer]
            self._producer = None
            self._watchdog.dispose("producer", holder)
        self._open = False

    # ---- records Kafka refuses --------------------------------------------------------------------------------
    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        # Served by poll() or inside commit_transaction (then in the watchdog's worker thread).
        if error is None:
            self._located[message.key()] = (message.partition(), message.offset())
            return
        if refuses_record(error):
            self._refused[message.key()] = describe(error)
        # any other failure makes the commit fail (abortable): the rows go again, nothing is lost

    def _leave_out_refused(self) -> None:
        """Drop the rows Kafka refused at delivery from the rows to send again: they would be refused again."""
        if not self._refused:
            return
        kept = [encoded for encoded in self._pending if encoded.key not in self._refused]
        for reason in list(self._refused.values())[: len(self._pending) - len(kept)]:
            self._count_refused(reason)
        self._pending = kept
        self._refused.clear()

    def _count_refused(self, reason: str) -> None:
        self.stats.failed += 1
        if self.stats.first_error is None:
            self.stats.first_error = reason
        if self.stats.failed == 1 or self.stats.failed % 1000 == 0:
            log.warning("Kafka refused a replayed row (%d so far): %s", self.stats.failed, reason)

    # ---- calls and waits --------------------------------------------------------------------------------------
    def _retrying(self, what: str, call: Callable[[], None]) -> None:
        """``call()`` under the watchdog, again after a back-off while Kafka says the error is retriable."""
        delay = 0.1
        while True:
            try:
                self._watchdog.call(what, call, timeout_s=self._call_timeout)
                return
            except KafkaException as exc:
                error = kafka_error(exc)
                if error.fatal() or error.txn_requires_abort() or not error.retriable():
                    raise
                self._note_failure(what, error)
                self._back_off(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    def _back_off(self, seconds: float) -> None:
        self._check_time()
        deadline = self._clock() + seconds
        while (remaining := deadline - self._clock()) > 0:
            time.sleep(min(remaining, 0.1))
            self._on_wait()
        self._check_time()

    def _stopped_too_long(self) -> bool:
        if not self._stop.is_set():
            return False
        now = self._clock()
        if self._give_up_at is None:
            self._give_up_at = now + self.flush_timeout_s
        return now >= self._give_up_at

    def _check_time(self) -> None:
        if self._stopped_too_long():
            raise _GaveUpError

    def _note_failure(self, what: str, error: KafkaError) -> None:
        if means_unreachable(error):
            self._outage.failed(f"{what}: {describe(error)}")
        elif not self._outage.absorb(f"{what}: {describe(error)}"):
            log.warning("%s failed: %s", what, describe(error))
