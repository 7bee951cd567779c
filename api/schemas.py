"""What the API answers (``...Public``) and the request bodies it accepts beyond the kernel's TransactionFeatures."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from fraudstream.model.explain import describe
from fraudstream.monitoring import MonitoringRecord, Role, Status
from fraudstream.schemas import SEED_EXAMPLE, Alert, Explanation, Reason, TransactionFeatures, Verdict

HARD_MAX_BATCH = 100_000
"""The largest FRAUD_API_MAX_BATCH accepts; the configured limit is checked in the route."""


class ReasonPublic(Reason):
    """A reason code, with the plain-words line the console shows."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # an answer read back in: its text is derived again

    @computed_field(description="e.g. V14 = -9.8, lower than 99.9% of training rows, raised the score by 0.31")
    def text(self) -> str:
        return describe(self)


class ExplanationPublic(Explanation):
    """Why the model scored it so: the features that raised the score most, and how they were computed."""

    reasons: list[ReasonPublic]  # type: ignore[assignment]


class PredictionPublic(BaseModel):
    """The model's decision on one transaction."""

    fraudulent: bool = Field(description="score >= threshold.")
    score: float = Field(description="Fraud probability from the model.")
    threshold: float = Field(description="The serving model's decision threshold.")
    model_version: str = Field(description="Registered version of the model that scored it.")
    explanation: ExplanationPublic | None = Field(
        None, description="Reason codes: for a fraudulent answer, or any answer with ?explain=true; else null."
    )


class PredictionsPublic(BaseModel):
    """Decisions for a batch, in the order of the request."""

    data: list[PredictionPublic]
    count: int


class TransactionBatch(BaseModel):
    """Up to FRAUD_API_MAX_BATCH transactions (1000 by default) scored in one call."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"transactions": [SEED_EXAMPLE, SEED_EXAMPLE]}]}
    )

    transactions: list[TransactionFeatures] = Field(min_length=1, max_length=HARD_MAX_BATCH)


class VerdictPublic(BaseModel):
    """An analyst's current verdict on an alert."""

    model_config = ConfigDict(from_attributes=True)

    verdict: Verdict
    analyst: str
    note: str | None
    decided_at: datetime


class AlertPublic(Alert):
    """A stored alert: the alert message's fields, when the sink first stored it, and the analyst's verdict."""

    model_config = ConfigDict(from_attributes=True)

    explanation: ExplanationPublic | None = None
    stored_at: datetime
    verdict: VerdictPublic | None = Field(None, description="The current verdict; null until an analyst decides.")

    def message(self) -> Alert:
        """The alert as it was on the fraud-alerts topic (without what the store and the API add)."""
        fields = self.model_dump(
            include=set(Alert.model_fields), exclude={"explanation": {"reasons": {"__all__": {"text"}}}}
        )
        return Alert.model_validate(fields)


class FeedbackIn(BaseModel):
    """An analyst's verdict on an alert."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"verdict": "fraud", "analyst": "ana", "note": "card reported stolen"}]},
    )

    verdict: Verdict
    analyst: str = Field(min_length=1, max_length=200, description="Who decided.")
    note: str | None = Field(None, max_length=2000)


class FeedbackPublic(BaseModel):
    """A stored verdict, and where it is on the fraud-feedback topic once produced."""

    model_config = ConfigDict(from_attributes=True)

    feedback_id: int
    transaction_id: str
    verdict: Verdict
    analyst: str
    note: str | None
    decided_at: datetime
    model_version: str
    published: bool = Field(description="On fraud-feedback already; if not yet, it is produced in the background.")
    topic_partition: int | None
    topic_offset: int | None


class FeedbackHistoryPublic(BaseModel):
    """Every verdict on one alert, oldest first; the last one is the current verdict."""

    data: list[FeedbackPublic]
    count: int


class AlertsPublic(BaseModel):
    """One page of alerts, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[AlertPublic]
    count: int = Field(description="Alerts on this page.")
    next_cursor: str | None = Field(description="Cursor of the next page; null on the last page.")


class VersionCount(BaseModel):
    model_version: str
    count: int
    reviewed: int = Field(0, description="Alerts of this version with a verdict.")
    confirmed_fraud: int = Field(0, description="Reviewed alerts the analysts called fraud.")
    confirmed_precision: float | None = Field(None, description="confirmed_fraud / reviewed; null before any review.")


class MinuteCount(BaseModel):
    minute: datetime = Field(description="Start of the UTC minute of the alerts' scored_at.")
    count: int


class HourCount(BaseModel):
    hour: datetime = Field(description="Start of the UTC hour of the alerts' event time.")
    count: int


class FeedbackCountsPublic(BaseModel):
    stored: int = Field(description="Verdicts stored (every one, replaced ones too).")
    pending: int = Field(description="Stored verdicts not yet on fraud-feedback.")


class AlertStatsPublic(BaseModel):
    total: int
    reviewed: int = Field(description="Alerts with a verdict.")
    by_verdict: dict[str, int] = Field(description="Alerts by current verdict: none, fraud, legitimate.")
    by_model_version: list[VersionCount]
    by_hour: list[HourCount]
    by_minute: list[MinuteCount] = Field(description="Alerts scored in each of the last 60 minutes, oldest first.")
    score_histogram: list[int] = Field(description="Alerts per score bin of width 0.05, from [0, 0.05) up.")
    feedback: FeedbackCountsPublic


class ModelPublic(BaseModel):
    """The serving model and the test metrics of the MLflow run that trained it."""

    name: str
    version: str
    threshold: float
    run_id: str | None
    metrics: dict[str, float] | None = Field(
        description="test_* metrics of the run (test_f1, test_precision, ...); null when MLflow cannot be read."
    )


class HealthPublic(BaseModel):
    status: Literal["alive"] = "alive"


class CheckPublic(BaseModel):
    ok: bool
    detail: str


class SinkCheckPublic(CheckPublic):
    lag: int | None = Field(None, description="Alerts on the topic not yet stored; null while unknown.")
    stored: int = 0
    invalid: int = Field(0, description="Messages the store could not hold (each sent to the sink's DLQ).")
    partitions: int = Field(0, description="Partitions of the alerts topic this sink holds.")
    dead_lettered: int = Field(0, description="Dead letters written to FRAUD_TOPIC_SINK_DLQ.")


class MonitoringStatusPublic(BaseModel):
    """The newest monitoring window of one serving version, in short."""

    model_name: str
    model_version: str
    role: Role
    status: Status
    number: int = Field(description="The version's window number (1, 2, ... in the topic's order).")
    window_end: datetime
    reasons: list[str]


class MonitoringCheckPublic(SinkCheckPublic):
    """The monitoring sink (fraud-monitoring into the store), and the latest status of each serving version: the
    newest production and challenger windows (a drifted or degraded model still serves: it never fails the check)."""

    versions: list[MonitoringStatusPublic] = Field(default_factory=list)


class ReadinessPublic(BaseModel):
    status: Literal["ready", "not ready"]
    model: CheckPublic
    store: CheckPublic
    sink: SinkCheckPublic
    monitoring: MonitoringCheckPublic


class MonitoringWindowPublic(MonitoringRecord):
    """One monitoring window of one model version, as the scorer published it on fraud-monitoring (``window`` is
    the publishing replica's own count), with the version's window number (``number``: the ``step`` of its
    ``live_*`` metrics in MLflow) and when the API stored it."""

    number: int = Field(ge=1, description="The version's window number, 1, 2, ... in the topic's order.")
    stored_at: datetime


class MonitoringLatestPublic(BaseModel):
    """The newest window of every model version seen, the most recently ended first."""

    data: list[MonitoringWindowPublic]
    count: int


class MonitoringHistoryPublic(BaseModel):
    """One page of monitoring windows, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[MonitoringWindowPublic]
    count: int = Field(description="Windows on this page.")
    next_cursor: str | None = Field(description="Cursor of the next page; null on the last page.")


class ErrorPublic(BaseModel):
    """An error answer: what went wrong, in one line."""

    detail: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int] = Field(description='Where: "body", "query" or "path", then the field\'s path.')
    msg: str
    type: str = Field(description="A stable label of the problem (missing, duplicate_key, timestamp_range...).")
    field: str = Field(description="The field at fault, e.g. V3, transactions.4.Amount, cursor.")
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorPublic(BaseModel):
    """422: every problem found, each naming its field."""

    detail: list[ValidationErrorItem]
