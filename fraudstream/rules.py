"""The rules a message's values obey, each written once and applied by both decoders.

The kernel's pydantic models (``fraudstream.schemas``) are built from the annotated types below; the stream's
wire decoder (``fraudstream.wire``) is derived from those models, reading the same constraints. What msgspec
checks natively (types, bounds, lengths, unknown fields, finiteness: its JSON parser never yields NaN or
infinity) it checks there; what it cannot is a :class:`Check`: one function the pydantic model runs as an
``AfterValidator`` and the wire decoder runs over a whole batch (``all_pass``, at C speed, then ``__call__`` on
the values of a batch that failed, to find which). A timestamp is parsed by one parser on both paths: msgspec's
RFC 3339 reader.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from pydantic import AfterValidator, AllowInfNan, BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError

T = TypeVar("T")

FLOAT32_MAX = 3.4028234663852886e38
"""The model reads float32: a larger magnitude would become infinity there, so the schema refuses it."""
MAX_ID_CHARS = 200

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
"""Kafka record timestamps count milliseconds from here, and never go below it."""
LATEST_TIME = datetime(2100, 1, 1, tzinfo=timezone.utc)
"""Exclusive. Anything later is a bug upstream; every store and every zone can hold what comes before."""
TIME_EXAMPLE = "2024-05-01T12:00:00Z"


class Check(Generic[T]):
    """A rule msgspec cannot express, applied identically on both paths.

    ``check(value)`` returns the value or raises a PydanticCustomError (its type and message are what the API's
    422 and the DLQ's reason say); ``all_pass(values)`` is True exactly when ``check`` accepts every value, and is
    cheap enough to run on every batch (a unit test holds the two equivalent).
    """

    def __init__(self, check: Callable[[T], T], all_pass: Callable[[Sequence[T]], bool]) -> None:
        self.check = check
        self.all_pass = all_pass

    def __call__(self, value: T) -> T:
        return self.check(value)

    def __repr__(self) -> str:
        return f"Check({self.check.__name__})"


# ---- transaction ids -------------------------------------------------------------------------------------------
def _check_id(value: str) -> str:
    if not value.isprintable():
        raise PydanticCustomError(
            "string_not_printable", "String should hold printable characters only (no control or line-break characters)"
        )
    if not value.strip():
        raise PydanticCustomError("string_blank", "String should not be blank")
    return value


def _ids_pass(values: Sequence[str]) -> bool:
    # str.isprintable refuses every control, format, separator (but the space) and surrogate character;
    # a printable string that strips to nothing is spaces only.
    return all(map(str.isprintable, values)) and all(map(str.strip, values))


PRINTABLE_ID = Check(_check_id, _ids_pass)

TransactionId = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(PRINTABLE_ID)]
"""An id that a log line, a URL path and every store can hold: printable, not blank, at most 200 characters."""


# ---- timestamps ------------------------------------------------------------------------------------------------
def parse_timestamp(value: Any) -> Any:
    """An RFC 3339 string read by msgspec's parser (the one the wire decoder uses); a datetime passes as is.

    Anything else (a number of seconds, a date alone, a time without seconds) is refused: a stream carries one
    spelling of an instant.
    """
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return msgspec.convert(value, datetime)
        except msgspec.ValidationError:
            pass
    raise PydanticCustomError(
        "timestamp_format", "Input should be an RFC 3339 date-time with a time zone, e.g. {example}", _EXAMPLE
    )


_EXAMPLE = {"example": TIME_EXAMPLE}
_RANGE = {"earliest": EARLIEST_TIME.isoformat(), "latest": LATEST_TIME.isoformat()}


def _check_time(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise PydanticCustomError("timestamp_timezone", "Input should have a time zone, e.g. {example}", _EXAMPLE)
    if not EARLIEST_TIME <= value < LATEST_TIME:  # compared as instants: no conversion that could overflow
        raise PydanticCustomError("timestamp_range", "Input should be from {earliest} and before {latest}", _RANGE)
    return value


def _times_pass(values: Sequence[datetime]) -> bool:
    if not values:
        return True
    try:  # min/max compare aware values as instants; a naive value raises TypeError (against another or a bound)
        return min(values) >= EARLIEST_TIME and max(values) < LATEST_TIME
    except TypeError:
        return False


TIME_IN_RANGE = Check(_check_time, _times_pass)

Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp), AfterValidator(TIME_IN_RANGE)]
"""An instant with a time zone, from 1970 to 2099, as an RFC 3339 string on the wire."""


# ---- numbers and labels ----------------------------------------------------------------------------------------
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False), Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
NonNegativeFloat = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, le=FLOAT32_MAX)]
Label = Annotated[int, Strict(), Field(ge=0, le=1)]
"""Exactly 0 or 1: a boolean, 1.0 or "1" is refused."""
