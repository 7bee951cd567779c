"""Decode the message values of a batch into transactions, or say in one line why one cannot be scored.

A batch is decoded by the kernel's wire decoder (``fraudstream.wire``: msgspec, derived from the kernel's
``Transaction``, several times cheaper a message than pydantic: benchmarks/README.md, "decode"). A message it refuses
is decoded again by the pydantic model itself (``decode``), which writes the reason, so the DLQ and the API describe a
problem in the same words. A refusal becomes a :class:`Rejection`: a short *kind* for metrics and dashboards, and a
*reason* naming the field(s) at fault, which travels in a DLQ header::

    field 'V3': Input should be a valid number
    invalid JSON: key must be a string at line 1 column 2
    unknown field 'foo'
    duplicate key 'transaction_id'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from fraudstream.schemas import Transaction, feature_matrix, parse_json
from fraudstream.wire import WireDecoder

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 400
"""A reason is one header value: keep it short enough to read in a console."""
MAX_ERRORS_NAMED = 3

# pydantic-core error types -> the kind of problem, as a short stable label.
_KINDS: dict[str, str] = {
    "json_invalid": "invalid_json",
    "json_type": "invalid_json",
    "model_type": "not_an_object",
    "model_attributes_type": "not_an_object",
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "finite_number": "non_finite",
    "greater_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "literal_error": "invalid_value",
    "string_too_short": "invalid_value",
    "string_too_long": "invalid_value",
    "duplicate_key": "duplicate_key",
}
_TIMESTAMP_FIELDS = frozenset({"event_time"})
_JSON_TYPES = {list: "an array", dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}

EMPTY = "empty"
WRONG_TYPE = "wrong_type"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_VALUE = "invalid_value"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message cannot be scored: ``kind`` is a stable label, ``reason`` one readable line."""

    kind: str
    reason: str


@dataclass(slots=True)
class DecodedBatch:
    """A batch decoded: the transactions (wire structs with the Transaction's fields), the index of each in the
    batch, their feature matrix, and the rejections by index."""

    transactions: list[Any] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    rejections: list[tuple[int, Rejection]] = field(default_factory=list)
    matrix: np.ndarray = field(default_factory=lambda: feature_matrix([]))


_WIRE = WireDecoder(Transaction)


def join_batches(parts: Sequence[tuple[int, DecodedBatch]]) -> DecodedBatch:
    """One DecodedBatch of the parts of a batch, each given with the index of its first message in the batch."""
    joined = DecodedBatch(matrix=np.concatenate([part.matrix for _, part in parts]) if parts else feature_matrix([]))
    for start, part in parts:
        joined.transactions += part.transactions
        joined.rows += [start + row for row in part.rows]
        joined.rejections += [(start + index, rejection) for index, rejection in part.rejections]
    return joined


def decode_batch(values: Sequence[bytes | None]) -> DecodedBatch:
    """Every value of a batch decoded on the fast path; the refused ones explained by the pydantic model."""
    wired = _WIRE.decode_many(values)
    batch = DecodedBatch(transactions=wired.accepted, rows=wired.rows, matrix=feature_matrix(wired.accepted))
    for refusal in wired.refused:
        rejection = decode(values[refusal.index])
        if not isinstance(rejection, Rejection):  # the two decoders disagree: a bug the differential test hunts
            log.warning("the wire decoder refused what the schema accepts: %s", refusal.message)
            rejection = Rejection(INVALID_VALUE, _clip(f"refused by the stream decoder: {refusal.message}"))
        batch.rejections.append((refusal.index, rejection))
    return batch


def decode(value: bytes | None) -> Transaction | Rejection:
    """The transaction in ``value`` as the pydantic model reads it, or the Rejection that sends it to the DLQ."""
    if not value:
        return Rejection(EMPTY, "empty message: expected a JSON transaction")
    try:
        return parse_json(Transaction, value)
    except ValidationError as exc:
        return rejection_for(exc)


def rejection_for(exc: ValidationError) -> Rejection:
    """One line naming the first few problems of ``exc``; the kind is that of the first problem."""
    errors = exc.errors(include_url=False, include_context=False)
    if not errors:  # pydantic never raises without errors, but a DLQ record must always carry a reason
        return Rejection(INVALID_VALUE, _clip(str(exc)))
    parts = [_describe(error) for error in errors[:MAX_ERRORS_NAMED]]
    if len(errors) > MAX_ERRORS_NAMED:
        parts.append(f"and {len(errors) - MAX_ERRORS_NAMED} more")
    return Rejection(_kind(errors[0]), _clip("; ".join(parts)))


def _kind(error: Any) -> str:
    kind = _KINDS.get(error["type"])
    if kind is not None:
        return kind
    if _field(error) in _TIMESTAMP_FIELDS:
        return INVALID_TIMESTAMP
    if error["type"].endswith(("_type", "_parsing")):
        return WRONG_TYPE
    return INVALID_VALUE


def _describe(error: Any) -> str:
    kind = error["type"]
    field = _field(error)
    message = str(error["msg"]).replace("\n", " ")
    if kind in ("json_invalid", "json_type"):
        return f"invalid JSON: {message.removeprefix('Invalid JSON: ')}"
    if kind in ("model_type", "model_attributes_type"):
        return f"not a JSON object: got {_json_type(error.get('input'))}"
    if kind == "missing":
        return f"missing field {field!r}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    if kind == "duplicate_key":
        return f"duplicate key {field!r}"
    return f"field {field!r}: {message}" if field else message


def _field(error: Any) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


def _json_type(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
