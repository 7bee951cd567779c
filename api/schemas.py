"""What the API answers (``...Public``) and the request bodies it accepts beyond the kernel's TransactionFeatures."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudstream.schemas import SEED_EXAMPLE, Alert, TransactionFeatures

HARD_MAX_BATCH = 100_000
"""The largest FRAUD_API_MAX_BATCH accepts; the configured limit is checked in the route."""


class PredictionPublic(BaseModel):
    """The model's decision on one transaction."""

    fraudulent: bool = Field(description="score >= threshold.")
    score: float = Field(description="Fraud probability from the model.")
    threshold: float = Field(description="The serving model's decision threshold.")
    model_version: str = Field(description="Registered version of the model that scored it.")


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


class AlertPublic(Alert):
    """A stored alert: the alert message's fields and when the sink first stored it."""

    model_config = ConfigDict(from_attributes=True)

    stored_at: datetime


class AlertsPublic(BaseModel):
    """One page of alerts, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[AlertPublic]
    count: int = Field(description="Alerts on this page.")
    next_cursor: str | None = Field(description="Cursor of the next page; null on the last page.")


class VersionCount(BaseModel):
    model_version: str
    count: int


class HourCount(BaseModel):
    hour: datetime = Field(description="Start of the UTC hour of the alerts' event time.")
    count: int


class AlertStatsPublic(BaseModel):
    total: int
    by_model_version: list[VersionCount]
    by_hour: list[HourCount]


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


class ReadinessPublic(BaseModel):
    status: Literal["ready", "not ready"]
    model: CheckPublic
    store: CheckPublic
    sink: SinkCheckPublic
