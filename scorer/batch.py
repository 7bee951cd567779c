"""One micro-batch, from consumed messages to the records to produce: no Kafka calls, so it is easy to test.

Per message the work is only what scoring needs: decode and validate the bytes (the kernel's wire decoder,
msgspec, one call for a batch of valid messages), then read the 30 features into one float32 matrix (C-level, no
Python per field). The model runs once per batch (one vectorised ONNX call; once per chunk with chunks set).
Alerts and dead letters are built for the few messages that need them, so their cost does not grow with the
batch.

Both cores (:class:`ChunkedScoring`, off by default): with ``FRAUD_SCORER_SCORE_CHUNK`` set, a large batch is
decoded a chunk at a time and each chunk's ONNX call runs in a thread of its own while the loop thread decodes the
next chunk.
ONNX Runtime releases the GIL while it scores, and decoding needs it, so the two truly overlap; a row's score does
not depend on the rows scored with it, so the scores are the same as in one call (tests/unit/scorer/test_batch.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import numpy as np
import orjson

from fraudstream.kafka import dead_letter as dlq
from fraudstream.kafka.records import OutRecord, Source
from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES, Alert, Explanation, Transaction
from scorer.decode import DecodedBatch, Rejection, decode_batch, join_batches

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
    pending_alerts: Callable[[], None] | None = None
    """Fills ``alerts`` once the reason codes computed elsewhere are in (see :meth:`finish_alerts`)."""

    def finish_alerts(self) -> None:
        """Build the alerts whose reason codes a worker process computes (``FRAUD_SCORER_EXPLAIN_PROCESS``): waits
        for them. Called by the transaction before it begins (in the commit thread); at once otherwise."""
        pending, self.pending_alerts = self.pending_alerts, None
        if pending is not None:
            pending()


class ChunkedScoring:
    """Decode a batch chunk by chunk while one thread of its own scores the chunks already decoded.

    ``chunk`` 0 (or a batch under two chunks) decodes and scores in one piece, in the calling thread.
    """

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self._executor: ThreadPoolExecutor | None = None

    def decode_and_score(self, values: Sequence[bytes | None], model: FraudModel) -> tuple[DecodedBatch, np.ndarray]:
        """The batch decoded and its valid rows' fraud probabilities, in the order of ``decoded.transactions``."""
        if self.chunk <= 0 or len(values) < 2 * self.chunk:
            decoded = decode_batch(values)
            return decoded, model.score(decoded.matrix) if decoded.transactions else _NO_SCORES
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scorer-model")
        parts: list[tuple[int, DecodedBatch]] = []
        scoring: list[Future[np.ndarray]] = []
        try:
            for start in range(0, len(values), self.chunk):
                part = decode_batch(values[start : start + self.chunk])
                parts.append((start, part))
                if part.transactions:
                    scoring.append(self._executor.submit(model.score, part.matrix))
            scores = [future.result() for future in scoring]
        except BaseException:
            for future in scoring:  # the chunk being scored finishes; the ones not started are dropped
                future.cancel()
            raise
        return join_batches(parts), np.concatenate(scores) if scores else _NO_SCORES

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


_NO_SCORES = np.empty(0, dtype=np.float64)
_ONE_PIECE = ChunkedScoring(0)


def score_batch(
    messages: Sequence[Message],
    model: FraudModel,
    scored_at: datetime | None = None,
    scoring: ChunkedScoring = _ONE_PIECE,
) -> ScoredBatch:
    """Validate every message, score the valid ones (one call, or one a chunk: ``scoring``), and build the alert
    and DLQ records.

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
    decoded, scores = scoring.decode_and_score([message.value() for message in sources], model)
    for index, rejection in decoded.rejections:
        batch.dead_letters.append(dead_letter(sources[index], rejection))
        batch.dead_letter_kinds.append(rejection.kind)
    if not decoded.transactions:
        return batch
    batch.scored = len(decoded.transactions)
    flags = model.flags(scores)
    batch.rows = ScoredRows(decoded.matrix, scores, flags, _labels(decoded.transactions))
    flagged = np.flatnonzero(flags)
    if not len(flagged):
        return batch
    explanations = model.explain_later(decoded.matrix[flagged])  # flagged rows only

    def alerts() -> None:
        for index, explanation in zip(flagged.tolist(), explanations(), strict=True):
            transaction, source = decoded.transactions[index], sources[decoded.rows[index]]
            record = alert_record(transaction, source, float(scores[index]), model, batch.scored_at, explanation)
            batch.alerts.append(record)
            batch.alert_event_times.append(transaction.event_time)

    batch.pending_alerts = alerts
    if not model.explains_elsewhere:
        batch.finish_alerts()  # explained already: the alerts now, as before
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
