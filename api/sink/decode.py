"""Turn a message of the alerts topic into an Alert the store can hold, or say why it cannot (for the sink's DLQ)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from api.store.alerts import utc
from fraudstream.schemas import Alert

INVALID_ALERT = "invalid_alert"
UNSTORABLE_TIME = "unstorable_time"
STORE_REFUSED = "store_refused"


@dataclass(frozen=True)
class AlertProblem:
    """Why a message cannot be stored: ``kind`` a stable label, ``field`` where, ``reason`` one readable line."""

    kind: str
    field: str
    reason: str


def decode_alert(message: Any) -> Alert | AlertProblem:
    """The message as an Alert, or the AlertProblem that sends it to the sink's dead-letter topic."""
    try:
        alert = Alert.model_validate_json(message.value() or b"")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "message"
        return AlertProblem(INVALID_ALERT, field, f"field {field!r}: {first['msg']}"[:400])
    return unstorable(alert) or alert


def unstorable(alert: Alert) -> AlertProblem | None:
    """What the schema lets through but no store should hold: a time beyond the range of UTC timestamps."""
    for name in ("event_time", "scored_at"):
        try:
            utc(getattr(alert, name))
        except OverflowError:
            return AlertProblem(UNSTORABLE_TIME, name, f"field {name!r} is out of the range of UTC timestamps")
    return None
