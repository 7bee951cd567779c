"""One CSV row -> one validated Transaction -> the Kafka key, value and timestamp that carry it.

``transaction_id`` is ``<file name>:<0-based data row>`` (e.g. ``creditcard.csv:123``): replaying the same file
again yields the same ids, so everything downstream (alerts keyed by id, the alert store's upsert) stays
idempotent. The ground truth ``Class`` travels as ``label``, a field of its own the scorer never feeds the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import ValidationError

from fraudstream.exceptions import DataValidationError
from fraudstream.kafka.produce import Producing, produce
from fraudstream.schemas import FEATURES, Transaction
from fraudstream.shutdown import Stop


@dataclass(frozen=True, slots=True)
class Encoded:
    key: bytes
    value: bytes
    timestamp_ms: int


def transaction_id(file_name: str, row: int) -> str:
    return f"{file_name}:{row}"


def encode_row(
    file_name: str, row: int, features: list[float], label: int, event_time: datetime, *, source: str = ""
) -> Encoded:
    """Validate the row through the kernel schema and serialise it as JSON (orjson).

    ``features`` are the 30 values in FEATURES order. A row the schema refuses raises DataValidationError
    naming the file, the 1-based line (header = line 1) and the field.
    """
    tx_id = transaction_id(file_name, row)
    try:
        fields = dict(zip(FEATURES, features, strict=True))
        transaction = Transaction.model_validate(
            {**fields, "transaction_id": tx_id, "event_time": event_time, "label": label}
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        column = ".".join(str(part) for part in error["loc"]) or None
        raise DataValidationError(source or file_name, error["msg"], line=row + 2, column=column) from exc
    return Encoded(
        key=tx_id.encode(),
        value=orjson.dumps(transaction.model_dump()),
        timestamp_ms=int(event_time.timestamp() * 1000),
    )


def produce_encoded(
    producer: Producing,
    topic: str,
    encoded: Encoded,
    *,
    on_delivery: Callable[..., None],
    on_full: Callable[[], None],
    stop: Stop | None = None,
) -> bool:
    """Queue one encoded row on ``topic`` (:func:`fraudstream.kafka.produce.produce`: waits while the local queue
    is full); False when ``stop`` was set while waiting."""
    return produce(
        producer,
        topic,
        value=encoded.value,
        key=encoded.key,
        timestamp=encoded.timestamp_ms,
        on_delivery=on_delivery,
        stop=stop,
        on_full=on_full,
    )
