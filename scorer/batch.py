"""One micro-batch, from consumed messages to the records to produce: no Kafka calls, so it is easy to test.

Per message the work is only what scoring needs: decode and validate the bytes (the kernel's wire decoder,
msgspec), then read the 30 features into one float32 matrix (C-level, no Python per field). The model runs once
per batch (one vectorised ONNX call). Alerts and dead letters are built for the few messages that need them, so
their cost does not grow with the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import numpy as np
import orjson

from fraudstream.kafka import dead_letter as dlq
from fraudstream.kafka.records import OutRecord, Source
from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES, Alert, Explanation, Transaction
from scorer.decode import Rejection, decode_batch

REASON_HEADER = dlq.REASON_HEADER
KIND_HEADER = dlq.KIND_HEADER


class Message(Protocol):
    """What a batch needs from a consumed message (confluent_kafka.Message has it; tests pass fakes)."""

    def error(self) -> object | None: ...

    def value(self) -> bytes | None: ...

    def key(self) -> bytes | None: ...

    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def headers(self) -> list[tuple[str, bytes]] | None: ...


@dataclass(frozen=True)
class ScoredRows:
    """The valid rows of a batch as the model saw them, for observers (:mod:`scorer.observer`): the (n, 30)
    feature matrix in FEATURES order, the fraud probabilities, the decisions, and the labels where the
    transactions carry one (-1 where they do not)."""

    matrix: np.ndarray
    scores: np.ndarray
    flags: np.ndarray
    labels: np.ndarray


@dataclass
class ScoredBatch:
    """What one batch produced: alerts and dead letters to write, and counts for the metrics."""

    consumed: int = 0
    scored: int = 0
    alerts: list[OutRecord] = field(default_factory=list)
    dead_letters: list[OutRecord] = field(default_factory=list)
    dead_letter_kinds: list[str] = field(default_factory=list)
    alert_event_times: list[datetime] = field(default_factory=list)
    scored_at: datetime | None = None
    errors: list[object] = field(default_factory=list)
    """Kafka errors delivered in place of messages (the loop decides whether they are fatal)."""
    model: FraudModel | None = None
    """The model that scored the batch."""
    rows: ScoredRows | None = None
    """The scored rows (None when no message was valid)."""
    extra: list[tuple[str, OutRecord]] = field(default_factory=list)
    """(topic, record) pairs an observer adds, produced in the same transaction as the alerts."""


def score_batch(messages: Sequence[Message], model: FraudModel, scored_at: datetime | None = None) -> ScoredBatch:
    """Validate every message, score the valid ones in one call, and build the alert and DLQ records.

    Messages that carry a Kafka error (not data) are collected in ``errors`` for the loop to inspect.
    """
    batch = ScoredBatch(scored_at=scored_at or datetime.now(timezone.utc), model=model)
    sources: list[Message] = []
    for message in messages:
        error = message.error()
        if error is None:
            sources.append(message)
        else:
            batch.errors.append(error)
    batch.consumed = len(sources)
    decoded = decode_batch([message.value() for message in sources])
    for index, rejection in decoded.rejections:
        batch.dead_letters.append(dead_letter(sources[index], rejection))
        batch.dead_letter_kinds.append(rejection.kind)
    if not decoded.transactions:
        return batch
    scores = model.score(decoded.matrix)
    batch.scored = len(decoded.transactions)
    flags = model.flags(scores)
    batch.rows = ScoredRows(decoded.matrix, scores, flags, _labels(decoded.transactions))
    flagged = np.flatnonzero(flags)
    explanations = model.explain(decoded.matrix[flagged]) if len(flagged) else []  # flagged rows only
    for index, explanation in zip(flagged.tolist(), explanations, strict=True):
        transaction, source = decoded.transactions[index], sources[decoded.rows[index]]
        record = alert_record(transaction, source, float(scores[index]), model, batch.scored_at, explanation)
        batch.alerts.append(record)
        batch.alert_event_times.append(transaction.event_time)
    return batch


def _labels(transactions: Sequence[Transaction]) -> np.ndarray:
    return np.fromiter(
        (-1 if t.label is None else int(t.label) for t in transactions), dtype=np.int8, count=len(transactions)
    )


def alert_record(
    transaction: Transaction,
    source: Message,
    score: float,
    model: FraudModel,
    scored_at: datetime,
    explanation: Explanation | None = None,
) -> OutRecord:
    """The fraud-alerts record of a flagged transaction (its features and reasons too), keyed by its id."""
    alert = Alert(
        transaction_id=transaction.transaction_id,
        score=score,
        threshold=model.threshold,
        model_name=model.name,
        model_version=model.version,
        event_time=transaction.event_time,
        scored_at=scored_at,
        partition=source.partition() or 0,
        offset=source.offset() or 0,
        amount=transaction.Amount,
        label=transaction.label,
        features={name: getattr(transaction, name) for name in FEATURES},
        explanation=explanation,
    )
    return OutRecord(
        key=transaction.transaction_id.encode(), value=orjson.dumps(alert.model_dump()), source=source_of(source)
    )


def dead_letter(message: Message, rejection: Rejection) -> OutRecord:
    """The DLQ record: the original key, value and headers, the reason and where the message came from (see
    :mod:`scorer.dead_letter`; the transaction cuts it to size before producing it)."""
    return dlq.dead_letter(
        key=message.key(),
        value=message.value(),
        headers=message.headers(),
        source=source_of(message),
        reason=rejection.reason,
        kind=rejection.kind,
    )


def source_of(message: Message) -> Source:
    offset = message.offset()
    return Source(message.topic() or "", message.partition() or 0, -1 if offset is None else offset)
