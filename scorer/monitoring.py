"""Live monitoring of the serving model(s): a :class:`~scorer.observer.BatchObserver` that cuts the scored stream
into windows and publishes one :class:`~fraudstream.monitoring.MonitoringRecord` per model and window on
``fraud-monitoring``, inside the Kafka transaction of the batch that closes the window.

Windows. A window closes with the batch that brings it to ``FRAUD_MONITOR_WINDOW_ROWS`` scored transactions, or
with the first batch scored ``FRAUD_MONITOR_WINDOW_S`` or more after the window started (that batch included),
or, when nothing arrives, at the first idle moment after that time (the loop then commits a transaction holding
only the window's records); a clean stop publishes the open window too. A change of the models measured (the
production alias moved, a challenger appeared or went) closes the window before the batch that sees the change,
so a window's records all name the same versions. Production and challenger share every window.

Per batch the cost is a few numpy calls over the (n, 30) matrix the model already scored (see
:mod:`scorer.histograms`), one more ONNX call when a challenger is set, and one small state record.

Exactly once. The window's running counts travel in the same transaction as a state record
(:mod:`scorer.monitor_state`). Nothing here changes until the transaction committed (:meth:`committed`); an
aborted batch (:meth:`aborted`) leaves the committed state as it was. Because a commit whose outcome is unknown is
reported as aborted although it may have committed (the loop replaces the producer, which settles it), an abort
followed by a producer replacement makes the monitor read its committed state back before the next batch: the
state then matches the committed offsets whatever happened. The same read resumes the window after a restart.
A clean abort reads nothing (no Kafka call in the loop while, e.g., a rebalance or an outage is going on).

A monitoring problem never stops scoring: a batch that cannot be measured is logged and left out of the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol

from fraudstream.kafka.records import OutRecord
from fraudstream.model.serving import FraudModel
from fraudstream.monitoring import MonitoringRecord, Role, Thresholds
from scorer.histograms import ProfileBins
from scorer.monitor_state import MonitorState
from scorer.window import Window, close, tallies_for

if TYPE_CHECKING:
    from fraudstream.model.watcher import ModelWatcher
    from scorer.batch import ScoredBatch

log = logging.getLogger(__name__)


class StateSource(Protocol):
    def read(self, scorer: str) -> MonitorState | None: ...

    def missing(self, topics: list[str]) -> list[str]: ...


class Gauges(Protocol):
    def monitored(self, record: MonitoringRecord) -> None: ...


@dataclass(frozen=True)
class WindowRule:
    rows: int
    seconds: float


@dataclass
class _Pending:
    state: MonitorState
    published: list[MonitoringRecord]


class WindowMonitor:
    """The monitoring observer of one scorer replica (built by :func:`scorer.bootstrap.bootstrap`)."""

    def __init__(
        self,
        *,
        scorer: str,
        topic: str,
        state_topic: str,
        rule: WindowRule,
        thresholds: Thresholds,
        state_source: StateSource | None = None,
        challenger: ModelWatcher | None = None,
        gauges: Gauges | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        replacements: Callable[[], int] | None = None,
    ) -> None:
        """``replacements``: how many times the loop replaced its producer so far (``Transactor.replacements``);
        an abort followed by a replacement (a commit whose outcome was unknown) makes the monitor read its
        committed state back. None: after every abort."""
        self.scorer = scorer
        self._topic = topic
        self._state_topic = state_topic
        self._rule = rule
        self._thresholds = thresholds
        self._source = state_source
        self._challenger = challenger
        self._gauges = gauges
        self._now = now
        self.state = MonitorState()
        """The committed state (what the last committed transaction wrote)."""
        self._pending: _Pending | None = None
        self._bins: dict[tuple[str, str], ProfileBins | None] = {}
        self._must_read = state_source is not None
        self._checked = state_source is None
        self._off = False
        self._replacements = replacements
        self._replaced_before = replacements() if replacements is not None else 0
        self._after_abort = False

    # ---- the observer hooks -----------------------------------------------------------------------------------
    def records(self, batch: ScoredBatch) -> list[tuple[str, OutRecord]]:
        """The batch's state record, preceded by the records of the window(s) it closes."""
        self._pending = None
        try:
            self.resume()
            if self._off:
                return []
            models = self._models(batch)
            state, published = self._advance(batch, models)
        except Exception:  # a monitoring problem must never stop scoring: this batch is left out of the window
            log.exception("monitoring could not measure a batch; it is left out of the window")
            return []
        return self._stage(state, published)

    def pending(self, *, final: bool) -> list[tuple[str, OutRecord]]:
        """Records to commit on their own: the open window once its time is up (``final``: in any case, on a
        clean stop). Called by the loop when nothing was consumed."""
        self._pending = None
        if (
            self._must_read or self._after_abort or not self._checked
        ):  # no Kafka call when idle (e.g. while joining the group): the
            return []  # committed state is read back with the next batch, and its window published then
        try:
            window = self.state.window
            if window is None or self._off:
                return []
            if not final and (self._now() - window.start).total_seconds() < self._rule.seconds:
                return []
            state, published = self._closed(self.state, window)
        except Exception:
            log.exception("monitoring could not publish its open window")
            return []
        return self._stage(state, published)

    def committed(self, batch: ScoredBatch) -> None:
        pending, self._pending = self._pending, None  # the loop commits one batch at a time: this one's
        if pending is None:
            return
        self.state = pending.state
        for record in pending.published:
            log.info(
                "monitoring window %d of %s v%s (%s): %s, %d scored, max feature PSI %.3f, F1 %s",
                record.window,
                record.model_name,
                record.model_version,
                record.role,
                record.status,
                record.scored,
                record.max_feature_psi,
                "n/a" if record.f1 is None else f"{record.f1:.3f}",
            )
            if self._gauges is not None:
                self._gauges.monitored(record)

    def aborted(self, batch: ScoredBatch) -> None:
        """Forget the batch; read the committed state back before the next one (the abort may have been a commit
        whose outcome was unknown)."""
        self._pending = None
        self._after_abort = self._source is not None

    # ---- windows ----------------------------------------------------------------------------------------------
    def _models(self, batch: ScoredBatch) -> dict[Role, FraudModel]:
        models: dict[Role, FraudModel] = {}
        if batch.model is not None:
            models["production"] = batch.model
        challenger = self._challenger_model()
        if challenger is not None and (batch.model is None or challenger.version != batch.model.version):
            models["challenger"] = challenger
        for model in models.values():
            if (model.name, model.version) not in self._bins:
                self._bins[(model.name, model.version)] = ProfileBins.of(model.profile) if model.profile else None
        return models

    def _challenger_model(self) -> FraudModel | None:
        if self._challenger is None:
            return None
        try:
            self._challenger.poll()
        except Exception:  # the watcher logs registry problems itself; anything else must not stop scoring
            log.exception("following the challenger alias failed")
        return self._challenger.current

    def _advance(self, batch: ScoredBatch, models: dict[Role, FraudModel]) -> tuple[MonitorState, list]:
        state, published = self.state, []
        lineup = tuple((role, m.name, m.version) for role, m in models.items())
        window = state.window
        if window is not None and window.lineup != lineup:
            state, published = self._closed(state, window)
            window = None
        now = batch.scored_at or self._now()
        if window is None:
            window = Window(number=state.next_window, start=now, end=now, tallies=tallies_for(lineup))
            state = replace(state, next_window=state.next_window + 1)
        rows = batch.rows
        tallies = []
        for tally, model in zip(window.tallies, models.values(), strict=True):
            bins = self._bins.get((model.name, model.version))
            dead = len(batch.dead_letters) if tally.role == "production" else 0
            if rows is None:
                tallies.append(tally.add(bins, None, None, None, None, dead))
            elif tally.role == "production":
                tallies.append(tally.add(bins, rows.matrix, rows.scores, rows.flags, rows.labels, dead))
            else:  # the shadow: one more ONNX call on the same rows, no alerts
                scores = model.score(rows.matrix)
                tallies.append(tally.add(bins, rows.matrix, scores, model.flags(scores), rows.labels))
        window = replace(window, end=max(now, window.end), rows=window.rows + batch.scored, tallies=tuple(tallies))
        state = replace(state, window=window)
        if window.rows >= self._rule.rows or (window.end - window.start).total_seconds() >= self._rule.seconds:
            state, closing = self._closed(state, window)
            published += closing
        return state, published

    def _closed(self, state: MonitorState, window: Window) -> tuple[MonitorState, list[MonitoringRecord]]:
        records, recent = close(
            window, scorer=self.scorer, bins=self._bins, recent=state.recent, thresholds=self._thresholds
        )
        return replace(state, window=None, recent=recent), records

    def _stage(self, state: MonitorState, published: list[MonitoringRecord]) -> list[tuple[str, OutRecord]]:
        self._pending = _Pending(state, published)
        out = [(self._topic, OutRecord(key=r.key.encode(), value=r.model_dump_json().encode())) for r in published]
        if self._source is not None:
            out.append((self._state_topic, state.record(self.scorer)))
        return out

    def prepare(self) -> None:
        """At start, after init_transactions settled the predecessor's transaction: read the committed state
        back now, so that the first batch does not wait for it (see :meth:`resume`)."""
        try:
            self.resume()
        except Exception:  # never stop scoring for monitoring: the first batch tries again
            log.exception("monitoring could not read its state back at start")

    def resume(self) -> None:
        """Read the committed state back when due (at start, after an abort); the first batch calls it, or call it
        beforehand to take the read out of the first batch's time."""
        if not self._checked:
            self._check_topics()
        if self._after_abort:  # a clean abort leaves the committed state as it is; a replaced producer may not
            self._after_abort = False
            replaced = self._replacements() if self._replacements is not None else self._replaced_before + 1
            self._must_read = self._must_read or replaced != self._replaced_before
            self._replaced_before = replaced
        if not self._must_read or self._source is None:
            return
        self._must_read = False
        try:
            found = self._source.read(self.scorer)
        except Exception as exc:  # unreadable: go on from what this process knows rather than stop scoring
            log.warning("cannot read the monitoring state back (%s): going on from this process's own", exc)
            return
        if found is not None and found.window is not None:
            log.info("monitoring resumes window %d (%d rows so far)", found.window.number, found.window.rows)
        self.state = found or MonitorState()

    def _check_topics(self) -> None:
        """Producing to a topic the cluster lacks would fail every transaction: without the monitoring topic the
        monitor turns itself off, without the state topic it publishes windows without resumable state."""
        assert self._source is not None
        try:
            missing = self._source.missing([self._topic, self._state_topic])
        except Exception as exc:  # cannot tell now: ask again at the next batch
            log.warning("cannot check the monitoring topics (%s)", exc)
            return
        self._checked = True
        if self._topic in missing:
            log.error("the monitoring topic %s does not exist: monitoring is off (create it and restart)", self._topic)
            self._off = True
        elif self._state_topic in missing:
            log.error(
                "the monitoring state topic %s does not exist: windows are published, but a crash loses the open one",
                self._state_topic,
            )
            self._source = None
