"""The scorer's main loop: wait for a model, subscribe, then consume -> score -> commit, one batch at a time,
the commit of one batch overlapping the consuming and scoring of the next.

One pass of :meth:`ScorerLoop.run`'s loop is :meth:`ScorerLoop.step`: follow the model, take the next batch,
score it, learn the outcome of the previous batch's transaction, then hand this batch's transaction
(:class:`~scorer.transaction.Transactor`) to the commit thread and return. The consumer's statistics (served
inside ``consume()``) keep :class:`~fraudstream.kafka.health.ConsumerHealth` told of the lag.

Batches close when the consumer has nothing more buffered (``FRAUD_SCORER_BATCH_CLOSE_WHEN_IDLE``): under load
the buffer always holds a full batch (``FRAUD_SCORER_BATCH_SIZE``), at low rates a batch carries what arrived
while the previous transaction committed, so an alert is visible about one transaction after its event. The
first message of a batch is awaited at most ``FRAUD_SCORER_BATCH_TIMEOUT_S``; ``FRAUD_SCORER_BATCH_LINGER_S``
(10 ms) waits that much longer for more once the buffer is empty. That wait mostly overlaps the previous commit;
without it each transaction followed the last at once: at 2,000 tx/s, more and smaller transactions (260-520 in 5 s
against 280-315), more broker CPU, and twice the alerts' p99 (benchmarks/README.md, latency). With the rule off, a
batch closes when full or at the timeout.

Two cores, two threads: the loop thread consumes, decodes and scores (with ``FRAUD_SCORER_SCORE_CHUNK`` set, a
third, model thread runs the ONNX call of each chunk of a batch while the loop thread decodes the next: ONNX Runtime
releases the GIL; :class:`scorer.batch.ChunkedScoring`); one commit thread runs the batch's transaction (begin, produce,
``send_offsets_to_transaction``, commit: librdkafka waits on the broker without the GIL).
Reason codes are computed in a worker process (``FRAUD_SCORER_EXPLAIN_PROCESS``,
:mod:`fraudstream.model.explain_process`: shap's TreeSHAP holds the GIL): the loop thread sends a batch's flagged
rows when it scores them, the commit thread collects their explanations and builds the alerts before it begins the
batch's transaction (``ScoredBatch.finish_alerts``), so nothing of it is inside the transaction's time.
``FRAUD_SCORER_COMMIT_OVERLAP=false`` commits in the loop thread instead. The model thread works inside one step
of the loop thread (the step waits for its scores), so it changes nothing below.

Why it stays exactly once (the next transaction never begins before the previous one ended):

* **one transaction at a time**: batch n+1 is consumed and scored while batch n commits, but its transaction is
  handed over only after batch n's outcome is known; the offsets a transaction commits are the consumer's
  positions read right after its batch's last ``consume()``, so they cover exactly that batch;
* **aborts**: when batch n aborts, batch n+1 (already consumed, never produced) is dropped, and the consumer is
  rewound to the committed offsets in the loop thread (the commit thread makes no consumer call), after
  batch n+1's ``consume()``: both are consumed again, nothing was visible to ``read_committed`` readers;
* **rebalances**: librdkafka runs the rebalance callbacks inside ``consume()`` and ``close()``, in the loop
  thread. Each callback first waits for the transaction in flight to end, so no callback runs while a
  transaction is open: revoked partitions are handed over with their offsets committed (or with the batch
  aborted, and the next owner reads it again). Messages of partitions revoked while a batch was being taken
  (between two ``consume()`` calls) are dropped from it: the next owner reads them. When that owner is this
  consumer again (partitions lost to a session timeout, then assigned back, within one batch), its position is
  already past the dropped messages: the whole batch is dropped and the consumer rewound to the committed
  offsets, or the next transaction would commit offsets past messages never scored (measured: 100 rows, 4
  alerts lost after a 60 s broker outage);
* **producer replacement** (fatal, fenced, a stuck call, a commit whose outcome is unknown): the commit thread
  only reports it; the loop thread drops the batch it scored meanwhile, replaces the producer (its
  ``init_transactions`` settles the old transaction) and rewinds, as before;
* **stop** (Ctrl-C, SIGTERM) is honoured between batches: the transaction in flight is waited for (the watchdog
  bounds it), its outcome recorded, then the consumer closes. A crash in the loop thread waits for it too before
  aborting whatever is still open.

Other invariants:

* the model may change only between batches (the watcher is polled before ``consume()``), and each batch is
  scored by one model whose version every alert names;
* a stop request is honoured within about a second inside a Kafka call that does not return (the watchdog
  abandons it): the consumer then closes (2 s at most) and the loop returns;
* the batch observer (:mod:`scorer.observer`) is called from the loop thread, in batch order: ``records(n+1)``
  only after batch n's ``committed`` or ``aborted``.

What keeps it scoring (nothing Kafka does stops it, short of a setting Kafka refuses):

* a broker outage of any length: every call is retried, the outage is logged in a bounded number of lines
  (:class:`~fraudstream.kafka.outage.OutageLog`), and the loop resumes once the broker answers;
* a producer that cannot go on (fatal, fenced, a stuck call): replaced in-process, same ``transactional.id``;
* a consumer that cannot go on (fatal, e.g. fenced as a static member): replaced in-process; it rejoins the
  group (with the same ``group.instance.id`` it gets its partitions back at once).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from fraudstream.kafka.errors import describe, kafka_error
from fraudstream.kafka.health import ConsumerHealth, HealthReport
from fraudstream.kafka.outage import ClientEvents
from fraudstream.kafka.watchdog import CallAbandoned, Watchdog
from fraudstream.memory import release_free_memory
from fraudstream.model.watcher import ModelWatcher
from fraudstream.shutdown import Stop
from scorer.batch import ChunkedScoring, ScoredBatch, score_batch
from scorer.exceptions import ConsumerUnusableError, ProducerUnusableError
from scorer.metrics import ScorerMetrics
from scorer.observer import BatchObserver, NoObserver
from scorer.transaction import CommitOutcome, TransactionalConsumer, Transactor

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0
"""Longest the consumer's close() may take before it is left behind (it leaves the group, runs on_revoke)."""
TRIM_EVERY_S = 60.0
TRIM_IDLE_EVERY_S = 5.0
"""Freed memory goes back to the OS (see :mod:`fraudstream.memory`) when the loop finds nothing to consume, at
most every 5 s, and every minute anyway."""


class Consumer(TransactionalConsumer, Protocol):
    def subscribe(self, topics: list[str], **callbacks: Any) -> None: ...

    def consume(self, num_messages: int, timeout: float) -> list[Any]: ...

    def close(self) -> None: ...


@dataclass
class ScorerStatus:
    """Running totals of committed work, for status lines and the final summary."""

    model_version: str | None = None
    waiting_for_model: bool = False
    batches: int = 0
    consumed: int = 0
    scored: int = 0
    alerts: int = 0
    dead_letters: int = 0
    aborted: int = 0
    replaced: int = 0
    """Clients (producer or consumer) replaced in-process after they could not go on."""
    partitions: set[tuple[str, int]] = field(default_factory=set)
    first_message_at: float | None = None
    """``time.perf_counter()`` when the first message arrived (a rate over the stream starts there, not at the
    assignment: a fresh group first looks up its offsets)."""


class ScorerLoop:
    """Consume, score and commit until stopped. Build it with :func:`scorer.bootstrap.bootstrap`."""

    def __init__(
        self,
        *,
        consumer_factory: Callable[[], Consumer],
        transactor: Transactor,
        watcher: ModelWatcher,
        metrics: ScorerMetrics,
        topic: str,
        batch_size: int,
        batch_timeout_s: float,
        stop: Stop,
        watchdog: Watchdog,
        health: ConsumerHealth,
        consumer_events: ClientEvents | None = None,
        on_status: Callable[[ScorerStatus], None] | None = None,
        status_interval_s: float = 5.0,
        model_wait_s: float = 1.0,
        observer: BatchObserver | None = None,
        close_when_idle: bool = True,
        linger_s: float = 0.0,
        overlap: bool = True,
        score_chunk: int = 0,
        on_started: Callable[[], object] | None = None,
    ) -> None:
        """``on_started``: called once, after the model is loaded and the group joined, before the first batch
        (``fraudstream score`` freezes its long-lived objects there: :func:`fraudstream.memory.freeze_long_lived`)."""
        self._on_started = on_started
        self._consumer_factory = consumer_factory
        self.consumer: Consumer | None = None
        self.transactor = transactor
        self.watcher = watcher
        self.metrics = metrics
        self.topic = topic
        self.batch_size = batch_size
        self.batch_timeout_s = batch_timeout_s
        self.stop = stop
        self.watchdog = watchdog
        self.health = health
        self._events = consumer_events
        self.status = ScorerStatus()
        self._on_status = on_status
        self._status_interval = status_interval_s
        self._next_status = 0.0
        self._next_gauges = 0.0
        self._next_trim = time.monotonic() + TRIM_EVERY_S
        self._next_idle_trim = 0.0
        self._last_recovery = float("-inf")
        self._recovery_delay = 0.0
        self._model_wait = model_wait_s
        self.observer: BatchObserver = observer or NoObserver()
        self.close_when_idle = close_when_idle
        self.linger_s = linger_s
        self._committer = _Committer() if overlap else None
        self._scoring = ChunkedScoring(score_chunk)
        self._in_flight: _InFlight | None = None
        self._revoked: set[tuple[str, int]] = set()
        """Partitions revoked (or lost) while the batch being taken was consumed: their messages are dropped."""

    def run(self) -> ScorerStatus:
        """Run until ``stop`` is set; returns the totals. Raises FatalKafkaError only when Kafka refuses the
        configuration, and WatchdogGaveUp when Kafka calls keep getting stuck (the process should restart)."""
        try:
            # init_transactions (which fences a crashed predecessor and settles its transaction) runs while the
            # model loads: a restarted replica scores again that much sooner.
            starting = _InBackground(self._start_producer, name="scorer-start")
            if not self._wait_for_model() or not starting.result():
                return self.status
            self._join()
            if self._on_started is not None:
                self._on_started()
            log.info("scoring %s with %s", self.topic, self.watcher.current.label)  # type: ignore[union-attr]
            while not self.stop.is_set():
                try:
                    self.step()
                    if self.stop.is_set():
                        self._settle()  # the last transaction's outcome, before the consumer closes
                except (ProducerUnusableError, ConsumerUnusableError) as exc:
                    if isinstance(exc, ConsumerUnusableError) and exc.abandoned:
                        self._abandon_consumer()
                    if self.stop.is_set() or not self._recover(exc):
                        break
                self._report()
            if self._in_flight is None:
                self._observer_pending(final=True)  # monitoring: the open window, on a clean stop
        except BaseException:
            self._wait_in_flight()  # the commit thread's transaction ends first (bounded by the watchdog)
            if self.transactor.in_transaction:  # e.g. a second Ctrl-C in the middle of a commit
                log.warning("stopping inside a transaction: aborting it")
                self.transactor.abort_quietly()
            raise
        finally:
            try:
                self._settle(quiet=True)  # normally nothing is left in flight here
            except Exception as exc:  # e.g. the rewind after a last abort: the next owner reads the committed offsets
                log.warning("the last transaction's outcome could not be recorded: %s", exc)
            if self._committer is not None:
                self._committer.close()
            self._scoring.close()
            self._close_consumer()  # on_revoke runs here, with nothing in flight
            self.transactor.close()
            self.watcher.close()  # the reason codes' worker process, when there is one
            self.metrics.readiness(self.readiness())
            self._report(force=True)
        return self.status

    def step(self) -> None:
        """One batch: follow the model, take and score a batch, learn the previous batch's outcome, then commit
        this one (in the commit thread: it overlaps the next step); the readiness gauges once a second."""
        self._follow_model()
        try:
            messages = self._take()
            pending = self._score(messages) if messages else None
        except ConsumerUnusableError:
            self._settle(quiet=True)
            raise
        if self._settle() and pending is not None:
            self._commit(pending)
        elif not messages:
            self._observer_pending(final=False)  # monitoring: a window whose time is up, when idle
        now = time.monotonic()
        if now >= self._next_gauges:
            self._next_gauges = now + 1.0
            self.metrics.readiness(self.readiness())
        if now >= self._next_trim or (not messages and now >= self._next_idle_trim):
            self._next_trim, self._next_idle_trim = now + TRIM_EVERY_S, now + TRIM_IDLE_EVERY_S
            release_free_memory()  # soon after a burst (the first idle moment), and now and then anyway

    def readiness(self) -> HealthReport:
        """The scorer's readiness: a model, a ready producer, and the consumer's facts (partitions, broker, lag)."""
        report = self.health.report()
        problems = list(report.problems)
        if self.watcher.current is None:
            problems.insert(0, "no production model yet")
        if not self.transactor.ready:
            problems.append("the transactional producer is not ready (initialising transactions)")
        return dataclasses.replace(report, problems=problems)

    # ---- the model --------------------------------------------------------------------------------------------
    def _start_producer(self) -> bool:
        """init_transactions (fencing a crashed predecessor, settling its transaction), then the observer's own
        start (e.g. monitoring state read back): both while the model loads, off the loop thread."""
        if not self.transactor.start():
            return False
        self.observer.prepare()
        return True

    def _wait_for_model(self) -> bool:
        """Poll the registry until a production model exists; no partitions are held while waiting."""
        self.watcher.poll()
        while self.watcher.current is None:
            self.status.waiting_for_model = True
            self._report()
            if self.stop.wait(self._model_wait):  # the watcher itself asks the registry once per interval
                return False
            self.watcher.poll()
        self.status.waiting_for_model = False
        self._serving()
        return self._wait_for_explainer()

    def _wait_for_explainer(self) -> bool:
        """Let the model's reason codes load before the group is joined: the first batch with an alert would
        otherwise wait for them while holding its partitions (a takeover or restart then stalls for the load).
        Bounded by the explainer's own wait; False when stopped meanwhile."""
        loader = self.watcher.current.explainer if self.watcher.current is not None else None
        if loader is None or loader.ready:
            return True
        log.info("waiting for the reason codes of %s before taking partitions", loader.label)
        deadline = time.monotonic() + loader.wait_s
        while not loader.loaded(0.2):
            if self.stop.is_set():
                return False
            if time.monotonic() >= deadline:
                log.warning(
                    "the reason codes of %s are not loaded after %.0f s: joining anyway", loader.label, loader.wait_s
                )
                break
        return True

    def _follow_model(self) -> None:
        if self.watcher.poll():
            self._serving()

    def _serving(self) -> None:
        model = self.watcher.current
        assert model is not None
        self.status.model_version = model.version
        self.metrics.serving(model.version)

    # ---- the consumer -----------------------------------------------------------------------------------------
    def _join(self) -> None:
        self.consumer = self._consumer_factory()
        self.transactor.consumer = self.consumer
        self.consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def _take(self) -> list[Any]:
        """The next batch's messages, by the batch-closing rule (see the module docstring)."""
        self._revoked.clear()
        if not self.close_when_idle:
            messages = self._consume(self.batch_size, self.batch_timeout_s)
        else:
            messages = self._consume(self.batch_size, 0.0)  # what is buffered already
            if not messages:
                if self._in_flight is not None:
                    return []  # nothing to overlap the commit with: the step settles it, then waits for messages
                messages = self._consume(1, self.batch_timeout_s)  # returns as soon as one message is there
                if messages and self.batch_size > 1:
                    messages += self._consume(self.batch_size - 1, self.linger_s)  # what came with it
            elif self.linger_s > 0 and len(messages) < self.batch_size:
                messages += self._consume(self.batch_size - len(messages), self.linger_s)
        if self._revoked:
            revoked = self._revoked
            kept = [m for m in messages if m.error() is not None or (m.topic(), m.partition()) not in revoked]
            dropped = {(m.topic(), m.partition()) for m in messages if m.error() is None} & revoked
            messages = kept
            back = dropped & self._assigned()
            if back:  # lost and assigned again within this batch: the consumer's position is past what was dropped
                log.info(
                    "partitions taken back while a batch was taken: it is dropped, and read again from the "
                    "committed offsets (%s)",
                    ", ".join(f"{t}[{p}]" for t, p in sorted(back)),
                )
                self.transactor.rewind()
                return []
        return messages

    def _assigned(self) -> set[tuple[str, int]]:
        assert self.consumer is not None
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def _consume(self, count: int, timeout_s: float) -> list[Any]:
        assert self.consumer is not None
        try:
            messages = self.consumer.consume(count, timeout_s)
        except KafkaException as exc:  # raised for fatal consumer errors (e.g. fenced as a static member)
            error = kafka_error(exc)
            if error.fatal():
                raise ConsumerUnusableError(f"the consumer cannot go on: {describe(error)}") from exc
            self._consumer_error(error)
            return []
        fatal = self._events.take_fatal() if self._events is not None else None
        if fatal is not None:  # told through error_cb only (e.g. fenced while rejoining after a session timeout)
            raise ConsumerUnusableError(f"the consumer hit a fatal Kafka error: {describe(fatal)}")
        if messages and self.status.first_message_at is None:
            self.status.first_message_at = time.perf_counter()
        return messages  # type: ignore[no-any-return]

    def _consumer_error(self, error: Any) -> None:
        if not isinstance(error, KafkaError):
            log.warning("consumer error: %s", error)
            return
        if error.fatal():
            raise ConsumerUnusableError(f"the consumer hit a fatal Kafka error: {describe(error)}")
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if self._events is not None:
            self._events.error(error)  # the outage log (when the broker is away) or a rate-limited line
        else:
            log.warning("consumer error: %s", describe(error))

    def _recover(self, problem: Exception) -> bool:
        """Replace whichever client cannot go on (each replacement may reveal the other); False when stopped.

        Replacements in quick succession back off (1 s doubling to 30 s): two replicas configured with the same
        id would otherwise fence each other in a tight loop.
        """
        while not self.stop.is_set():
            now = time.monotonic()
            if now - self._last_recovery < 30.0:
                self._recovery_delay = min(max(1.0, 2 * self._recovery_delay), 30.0)
            else:
                self._recovery_delay = 0.0
            self._last_recovery = now
            if "FENCED" in str(problem):
                log.warning(
                    "fenced: a newer client took this replica's id over (if it keeps happening, two replicas share "
                    "FRAUD_SCORER_TRANSACTIONAL_ID)"
                )
            if self._recovery_delay and self.stop.wait(self._recovery_delay):
                return False
            self.status.replaced += 1
            try:
                if isinstance(problem, ConsumerUnusableError):
                    self.metrics.replaced.labels(client="consumer").inc()
                    self._rejoin(str(problem))
                    return True
                self.metrics.replaced.labels(client="producer").inc()
                return self.transactor.replace(str(problem))
            except (ProducerUnusableError, ConsumerUnusableError) as again:
                problem = again
        return False

    def _rejoin(self, reason: str) -> None:
        log.warning("replacing the group consumer (%s)", reason)
        self._close_consumer()
        self._join()

    def _abandon_consumer(self) -> None:
        """Leave a consumer whose call got stuck to its blocked worker (no close from a second thread)."""
        self.consumer = None
        self.status.partitions.clear()
        self.health.assigned(0)

    def _close_consumer(self) -> None:
        if self.consumer is None:
            return
        holder: list[Any] = [self.consumer]
        self.consumer = None
        try:
            self.watchdog.call(
                "closing the consumer",
                holder[0].close,
                timeout_s=CLOSE_TIMEOUT_S,
                margin_s=0.0,
                stop_grace_s=CLOSE_TIMEOUT_S,
            )
        except CallAbandoned:
            log.warning("the consumer did not close within %.1f s: left behind", CLOSE_TIMEOUT_S)
            holder.clear()  # its blocked worker keeps it alive
        except KafkaException as exc:
            log.warning("closing the consumer failed: %s", describe(exc))
        finally:
            self.status.partitions.clear()
            self.health.assigned(0)
        if holder:
            self.watchdog.dispose("consumer", holder)

    # ---- one batch --------------------------------------------------------------------------------------------
    def _score(self, messages: list[Any]) -> _InFlight | None:
        """Score a batch and read the offsets its transaction will commit (None when it holds no message)."""
        started = time.perf_counter()
        model = self.watcher.current
        assert model is not None
        batch = score_batch(messages, model, scoring=self._scoring)
        for error in batch.errors:
            self._consumer_error(error)
        if not batch.consumed:
            return None
        assert self.consumer is not None
        positions = self.transactor.positions()  # right after the batch's last consume(): exactly this batch
        return _InFlight(batch, started, positions, self.consumer.consumer_group_metadata())

    def _commit(self, pending: _InFlight) -> None:
        """Begin the batch's transaction: in the commit thread (its outcome is learnt by :meth:`_settle`), or
        here when overlap is off."""
        pending.batch.extra = self.observer.records(pending.batch)  # only after the previous outcome is known
        self._in_flight = pending
        if self._committer is not None:
            self._committer.submit(pending, self.transactor)
            return
        pending.run(self.transactor)
        self._settle()

    def _wait_in_flight(self) -> None:
        """Wait until the transaction in flight (if any) ended; its outcome stays to be settled."""
        pending = self._in_flight
        if pending is not None:
            pending.done.wait()

    def _settle(self, *, quiet: bool = False) -> bool:
        """Learn the outcome of the batch in flight: count it and tell the observer. False when it aborted (the
        consumer is then rewound, so the batch taken meanwhile must be dropped) or the producer must be
        replaced; that raises ProducerUnusableError, unless ``quiet`` (then it is logged: the next commit finds
        the same problem)."""
        pending, self._in_flight = self._in_flight, None
        if pending is None:
            return True
        pending.done.wait()
        batch = pending.batch
        if pending.error is not None:
            self.observer.aborted(batch)  # the producer is replaced and the batch consumed again
            if quiet and isinstance(pending.error, ProducerUnusableError):
                log.warning("the last transaction did not complete: %s", pending.error)
                return False
            raise pending.error
        if pending.outcome is CommitOutcome.ABORTED:
            self.observer.aborted(batch)
            self.status.aborted += 1
            self.metrics.aborts.inc()
            self.transactor.rewind()  # here, after the batch taken meanwhile: both are consumed again
            return False
        self.observer.committed(batch)
        committed_at = datetime.now(timezone.utc)
        self.metrics.committed(
            consumed=batch.consumed,
            scored=batch.scored,
            alerts=len(batch.alerts),
            dlq_kinds=batch.dead_letter_kinds,
            seconds=pending.finished - pending.started,
        )
        self.metrics.alert_latencies(batch.alert_event_times, committed_at)
        status = self.status
        status.batches += 1
        status.consumed += batch.consumed
        status.scored += batch.scored
        status.alerts += len(batch.alerts)
        status.dead_letters += len(batch.dead_letters)
        return True

    # ---- BEGIN monitoring (h-mon-s): an observer's records committed without a batch -----------------------------
    def _observer_pending(self, *, final: bool) -> None:
        """Commit what the observer has to publish on its own (no new offsets: nothing was consumed)."""
        if self.consumer is None or not self.transactor.ready:
            return
        batch = ScoredBatch(extra=self.observer.pending(final=final), model=self.watcher.current)
        if not batch.extra:
            return
        try:
            outcome = self.transactor.commit(batch)
        except BaseException as exc:
            self.observer.aborted(batch)
            if final and isinstance(exc, Exception):  # stopping anyway: the state topic keeps the open window
                log.warning("the open monitoring window could not be published on the way out: %s", exc)
                return
            raise
        if outcome is CommitOutcome.COMMITTED:
            self.observer.committed(batch)
        else:
            self.observer.aborted(batch)

    # ---- END monitoring -------------------------------------------------------------------------------------------

    # ---- rebalance callbacks (run inside consume()/close(), never inside a transaction) -------------------------
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._wait_in_flight()
        if not partitions:  # an incremental rebalance that gave this member nothing new
            return
        self.status.partitions |= {(tp.topic, tp.partition) for tp in partitions}
        self.health.assigned(len(self.status.partitions))
        self.metrics.rebalances.labels(event="assign").inc()
        log.info("partitions assigned: %s", _names(partitions))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._wait_in_flight()  # the revoked partitions' offsets are committed (or their batch aborted) first
        if not partitions:
            return
        self._revoked |= {(tp.topic, tp.partition) for tp in partitions}
        if self.transactor.in_transaction:  # cannot happen with this loop; keep the guarantee if it ever does
            log.error("partitions revoked inside a transaction: aborting it so the next owner re-reads the batch")
            self.transactor.abort_quietly()
        self.status.partitions -= {(tp.topic, tp.partition) for tp in partitions}
        self.health.assigned(len(self.status.partitions))
        self.metrics.rebalances.labels(event="revoke").inc()
        log.info("partitions revoked: %s", _names(partitions))

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Lost (not revoked): another member may already own them, and the broker rejects our offsets for them.
        self._wait_in_flight()
        self._revoked |= {(tp.topic, tp.partition) for tp in partitions}
        self.status.partitions -= {(tp.topic, tp.partition) for tp in partitions}
        self.health.assigned(len(self.status.partitions))
        self.metrics.rebalances.labels(event="lost").inc()
        log.warning("partitions lost (session timed out?): %s", _names(partitions))

    # ---- status -----------------------------------------------------------------------------------------------
    def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._on_status is None or (not force and now < self._next_status):
            return
        self._next_status = now + self._status_interval
        self._on_status(self.status)


@dataclass
class _InFlight:
    """A scored batch and its transaction: the offsets it commits, then its outcome once the commit ended."""

    batch: ScoredBatch
    started: float
    positions: list[TopicPartition]
    metadata: Any
    done: threading.Event = field(default_factory=threading.Event)
    outcome: CommitOutcome | None = None
    error: BaseException | None = None
    finished: float = 0.0

    def run(self, transactor: Transactor) -> None:
        """Commit the batch (no consumer call: the loop thread rewinds after an abort)."""
        try:
            self.outcome = transactor.commit(self.batch, positions=self.positions, metadata=self.metadata, rewind=False)
        except BaseException as exc:  # handed to the loop thread by _settle
            self.error = exc
        finally:
            self.finished = time.perf_counter()
            self.done.set()


class _Committer:
    """One daemon thread that runs the transactions handed to it, one at a time."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[_InFlight, Transactor] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, pending: _InFlight, transactor: Transactor) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="scorer-commit", daemon=True)
            self._thread.start()
        self._jobs.put((pending, transactor))

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job[0].run(job[1])
            job = None  # drop the batch between jobs


class _InBackground:
    """``fn()`` in a thread of its own; :meth:`result` waits for it and returns (or raises) what it did."""

    def __init__(self, fn: Callable[[], bool], *, name: str) -> None:
        self._fn = fn
        self._result = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._fn()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> bool:
        while self._thread.is_alive():  # fn watches the stop flag itself: this ends soon after a stop
            self._thread.join(0.1)
        if self._error is not None:
            raise self._error
        return self._result


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "none"
