"""One monitoring window in the making: per model (role) the counts of the batches it has seen, and how it turns
into :class:`~fraudstream.monitoring.MonitoringRecord` s when it closes. Pure numpy, no Kafka.

A window is immutable from the outside: :meth:`Window.add` returns a new window (the arrays are a few hundred
integers, copied per batch), so the observer can keep the committed window and the batch's tentative one side by
side and drop the tentative one when the transaction aborts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from fraudstream.monitoring import Confusion, MonitoringRecord, Role, Thresholds, psi, status_of
from fraudstream.schemas import FEATURES
from scorer.histograms import ProfileBins

NO_PROFILE_REASON = "no reference profile for this version: PSI not measured"


@dataclass(frozen=True)
class Tally:
    """What one model saw in a window."""

    role: Role
    name: str
    version: str
    scored: int = 0
    alerts: int = 0
    dead_letters: int = 0
    feature_counts: np.ndarray | None = None
    """(30, B) counts on the profile's feature bins; None without a profile."""
    score_counts: np.ndarray | None = None
    confusion: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.int64))
    """tp, fp, fn, tn of the labelled rows."""

    @property
    def key(self) -> str:
        return f"{self.role}|{self.name}|{self.version}"

    def add(
        self,
        bins: ProfileBins | None,
        matrix: np.ndarray | None,
        scores: np.ndarray | None,
        flags: np.ndarray | None,
        labels: np.ndarray | None,
        dead_letters: int = 0,
    ) -> Tally:
        """This tally plus one batch's rows (all arrays None when the batch had no valid row)."""
        feature_counts, score_counts, confusion = self.feature_counts, self.score_counts, self.confusion
        scored = alerts = 0
        if matrix is not None and scores is not None and flags is not None and labels is not None:
            scored, alerts = len(scores), int(np.count_nonzero(flags))
            if bins is not None:
                feature_counts = _plus(feature_counts, bins.features.counts(matrix))
                score_counts = _plus(score_counts, bins.score.counts(scores)[0])
            confusion = confusion + confusion_counts(flags, labels)
        return replace(
            self,
            scored=self.scored + scored,
            alerts=self.alerts + alerts,
            dead_letters=self.dead_letters + dead_letters,
            feature_counts=feature_counts,
            score_counts=score_counts,
            confusion=confusion,
        )


def confusion_counts(flags: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """tp, fp, fn, tn of the rows whose label is known (label -1: unknown, not counted)."""
    flagged = np.asarray(flags, dtype=bool)
    fraud, normal = labels == 1, labels == 0
    tp = np.count_nonzero(flagged & fraud)
    fp = np.count_nonzero(flagged & normal)
    fn = np.count_nonzero(fraud) - tp
    tn = np.count_nonzero(normal) - fp
    return np.array([tp, fp, fn, tn], dtype=np.int64)


def _plus(total: np.ndarray | None, counts: np.ndarray) -> np.ndarray:
    return counts.astype(np.int64) if total is None else total + counts


@dataclass(frozen=True)
class Window:
    """The open window: when it started and ended, the production rows it holds, one tally per model."""

    number: int
    start: datetime
    end: datetime
    rows: int = 0
    tallies: tuple[Tally, ...] = ()

    @property
    def lineup(self) -> tuple[tuple[str, str, str], ...]:
        """Which models (role, name, version) this window measures: a change closes it."""
        return tuple((t.role, t.name, t.version) for t in self.tallies)


def close(
    window: Window,
    *,
    scorer: str,
    bins: dict[tuple[str, str], ProfileBins | None],
    recent: dict[str, tuple[Confusion, ...]],
    thresholds: Thresholds,
) -> tuple[list[MonitoringRecord], dict[str, tuple[Confusion, ...]]]:
    """The window's records (one per model) and the updated recent confusions (the last ``degraded_windows``
    windows of each model, this one included)."""
    records: list[MonitoringRecord] = []
    updated = dict(recent)
    for tally in window.tallies:
        confusion = Confusion(**dict(zip(("tp", "fp", "fn", "tn"), tally.confusion.tolist(), strict=True)))
        history = (*recent.get(tally.key, ()), confusion)[-thresholds.degraded_windows :]
        updated[tally.key] = history
        pooled = sum(history[1:], history[0])
        records.append(
            _record(window, tally, confusion, pooled, bins.get((tally.name, tally.version)), scorer, thresholds)
        )
    return records, updated


def _record(
    window: Window,
    tally: Tally,
    confusion: Confusion,
    pooled: Confusion,
    bins: ProfileBins | None,
    scorer: str,
    thresholds: Thresholds,
) -> MonitoringRecord:
    feature_psi: dict[str, float] = {}
    score_psi = 0.0
    feature_counts: dict[str, list[int]] = {}
    score_counts: list[int] = []
    profiled = bins is not None
    if bins is not None and tally.feature_counts is not None and tally.score_counts is not None:
        values = psi(bins.features.shares, tally.feature_counts)
        feature_psi = {name: round(float(v), 6) for name, v in zip(FEATURES, values.tolist(), strict=True)}
        score_psi = round(float(psi(bins.score.shares[0], tally.score_counts)), 6)
        feature_counts = dict(zip(FEATURES, bins.features.trim(tally.feature_counts), strict=True))
        score_counts = bins.score.trim(tally.score_counts[None, :])[0]
    status, reasons = status_of(feature_psi, score_psi, pooled if pooled.labelled else None, thresholds)
    if not profiled:
        reasons = [*reasons, NO_PROFILE_REASON]
    return MonitoringRecord(
        model_name=tally.name,
        model_version=tally.version,
        role=tally.role,
        scorer=scorer,
        window_start=window.start,
        window_end=window.end,
        scored=tally.scored,
        alerts=tally.alerts,
        dead_letters=tally.dead_letters,
        alert_rate=tally.alerts / tally.scored if tally.scored else 0.0,
        score_counts=score_counts,
        feature_psi=feature_psi,
        score_psi=score_psi,
        max_feature_psi=max(feature_psi.values(), default=0.0),
        confusion=confusion,
        precision=confusion.precision,
        recall=confusion.recall,
        f1=confusion.f1,
        status=status,
        reasons=reasons,
        window=window.number,
        profiled=profiled,
        feature_counts=feature_counts,
    )


def tallies_for(models: Sequence[tuple[Role, str, str]]) -> tuple[Tally, ...]:
    return tuple(Tally(role=role, name=name, version=version) for role, name, version in models)
