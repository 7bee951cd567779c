"""What the scorer publishes about a serving model: one record per version and window on ``fraud-monitoring``.

The scorer measures each window (N transactions or T seconds, whichever comes first) of one model version: how
many it scored, alerted and dead-lettered, the score's and every feature's histogram on the bins of the version's
:class:`~fraudstream.model.profile.ReferenceProfile`, the population stability index (PSI) of each against the
profile, and, where transactions carry a label (replay), the confusion counts. The record is written inside the
same Kafka transaction as the window's last batch, so a crash neither loses nor repeats a window; readers
(the API's store, the MLflow writer, ``fraudstream monitor``) read it ``read_committed``.

This module is the contract between them: the record's schema, the PSI and the status rule. It holds no I/O.

PSI of one feature: ``sum((a - e) * ln(a / e))`` over its bins, with ``e`` the training share and ``a`` the
window's share; both are floored at :data:`PSI_FLOOR` so an empty bin gives a large, finite value rather than
infinity. The rule of thumb the thresholds default to: below 0.1 stable, 0.1 to 0.25 a moderate shift, above
0.25 drift.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from fraudstream.settings import Settings

MONITORING_SPEC_VERSION = 1
PSI_FLOOR = 1e-4
"""Shares are floored at this before the PSI's logarithm (an empty bin is a strong signal, not infinity)."""

Status = Literal["ok", "drift", "degraded"]
Role = Literal["production", "challenger"]


def psi(expected_shares: np.ndarray, actual_counts: np.ndarray) -> np.ndarray:
    """The PSI of each row of ``actual_counts`` (shape (k, bins) or (bins,)) against ``expected_shares`` (same
    shape, or broadcastable); 0.0 for a row with no counts."""
    actual = np.asarray(actual_counts, dtype=np.float64)
    expected = np.maximum(np.asarray(expected_shares, dtype=np.float64), PSI_FLOOR)
    totals = actual.sum(axis=-1, keepdims=True)
    shares = np.maximum(np.divide(actual, totals, out=np.zeros_like(actual), where=totals > 0), PSI_FLOOR)
    value = ((shares - expected) * np.log(shares / expected)).sum(axis=-1)
    return np.where(totals[..., 0] > 0, value, 0.0)


class Confusion(BaseModel):
    """Confusion counts of the labelled transactions of a window, at the version's threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tp: int = Field(0, ge=0)
    fp: int = Field(0, ge=0)
    fn: int = Field(0, ge=0)
    tn: int = Field(0, ge=0)

    @property
    def labelled(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(tp=self.tp + other.tp, fp=self.fp + other.fp, fn=self.fn + other.fn, tn=self.tn + other.tn)

    @property
    def precision(self) -> float | None:
        """None when nothing was flagged (precision is undefined, not 0)."""
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        """None when no labelled fraud was seen."""
        frauds = self.tp + self.fn
        return self.tp / frauds if frauds else None

    @property
    def f1(self) -> float | None:
        """None when there was neither a flag nor a fraud among the labelled rows."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else None


class Thresholds(BaseModel):
    """When a window is ``drift`` or ``degraded`` (from the FRAUD_MONITOR_* settings)."""

    model_config = ConfigDict(frozen=True)

    psi_moderate: float = Field(0.1, gt=0.0, description="PSI from which a shift is reported as moderate.")
    psi_drift: float = Field(0.25, gt=0.0, description="PSI above which a feature (or the score) has drifted.")
    min_f1: float = Field(0.91, ge=0.0, le=1.0, description="Live F1 below this over the last windows: degraded.")
    degraded_windows: int = Field(3, ge=1, description="How many recent windows the live F1 is pooled over.")

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            psi_moderate=settings.monitor_psi_moderate,
            psi_drift=settings.monitor_psi_drift,
            min_f1=settings.min_f1,
            degraded_windows=settings.monitor_degraded_windows,
        )


def status_of(
    feature_psi: dict[str, float], score_psi: float, recent: Confusion | None, thresholds: Thresholds
) -> tuple[Status, list[str]]:
    """The window's status and why: ``degraded`` when the live F1 pooled over the recent windows (``recent``,
    the confusion counts summed over the last ``degraded_windows`` windows, this one included) is below
    ``min_f1``; else ``drift`` when any feature's PSI or the score's is above ``psi_drift``; else ``ok``.
    A degraded model is the more urgent news, so it wins when both hold."""
    drifted = sorted(name for name, value in feature_psi.items() if value > thresholds.psi_drift)
    reasons = [f"{name} PSI {feature_psi[name]:.3f} > {thresholds.psi_drift:g}" for name in drifted]
    if score_psi > thresholds.psi_drift:
        reasons.append(f"score PSI {score_psi:.3f} > {thresholds.psi_drift:g}")
    f1 = recent.f1 if recent is not None else None
    if f1 is not None and f1 < thresholds.min_f1:
        return "degraded", [f"live F1 {f1:.3f} < {thresholds.min_f1:g} over the last windows", *reasons]
    return ("drift" if reasons else "ok"), reasons


class MonitoringRecord(BaseModel):
    """One window of one model version, as published on ``fraud-monitoring`` (JSON, keyed by
    ``<model_name>:<model_version>``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    spec_version: int = MONITORING_SPEC_VERSION
    model_name: str
    model_version: str
    role: Role = Field(description="production (alerts come from it) or challenger (scored in its shadow).")
    scorer: str = Field(description="The scorer replica that measured the window (its transactional id).")
    window_start: datetime = Field(description="Scoring time of the window's first batch (UTC).")
    window_end: datetime = Field(description="Scoring time of the window's last batch (UTC).")
    scored: int = Field(ge=0, description="Transactions scored in the window.")
    alerts: int = Field(ge=0, description="Of them, at or above the version's threshold.")
    dead_letters: int = Field(ge=0, description="Messages dead-lettered in the window (production record only).")
    alert_rate: float = Field(ge=0.0, le=1.0)
    score_counts: list[int] = Field(description="The window's scores on the profile's score bins.")
    feature_psi: dict[str, float] = Field(description="PSI of each feature against the training rows.")
    score_psi: float = Field(ge=0.0, description="PSI of the score against the holdout's scores.")
    max_feature_psi: float = Field(ge=0.0)
    confusion: Confusion = Field(default_factory=Confusion, description="Labelled rows only (replay).")
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    status: Status
    reasons: list[str] = Field(default_factory=list, description="Why the status is not ok.")
    window: int = Field(
        0, ge=0, description="Sequence number of the window at its scorer replica (kept across restarts)."
    )
    profiled: bool = Field(
        True,
        description="False when the version has no reference profile: no PSI was measured (feature_psi empty, "
        "score_psi and max_feature_psi 0, score_counts empty) and a reason says so.",
    )
    feature_counts: dict[str, list[int]] = Field(
        default_factory=dict, description="The window's values of each feature on the profile's bins."
    )

    @property
    def key(self) -> str:
        return f"{self.model_name}:{self.model_version}"
