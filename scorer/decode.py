"""Decode one message value into a kernel Transaction, or say in one line why it cannot be scored.

The value is validated straight from its bytes by pydantic-core (``Transaction.model_validate_json``), the
cheapest correct path (a few microseconds a message). A refusal becomes a :class:`Rejection`: a short *kind*
for metrics and dashboards, and a *reason* naming the field(s) at fault, which travels in a DLQ header::

    field 'V3': Input should be a valid number
    invalid JSON: key must be a string at line 1 column 2
    unknown field 'foo'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from fraudstream.schemas import Transaction

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


def decode(value: bytes | None) -> Transaction | Rejection:
    """The transaction in ``value``, or the Rejection that sends the message to the DLQ."""
    if not value:
        return Rejection(EMPTY, "empty message: expected a JSON transaction")
    try:
        return Transaction.model_validate_json(value)
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
    return f"field {field!r}: {message}" if field else message


def _field(error: Any) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


def _json_type(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
