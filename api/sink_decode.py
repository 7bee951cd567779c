"""Turn a message of the alerts topic into an Alert the store can hold, or say (in the log) why it cannot."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from api.store import utc
from fraudstream.schemas import Alert

log = logging.getLogger(__name__)


def decode_alert(message: Any) -> Alert | None:
    """The message as an Alert, or None (logged with where it sits and why) when it is not a valid one."""
    problem: tuple[str, str] | None = None
    try:
        alert = Alert.model_validate_json(message.value() or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        problem = (".".join(str(part) for part in first["loc"]) or "message", first["msg"])
    else:
        problem = unstorable(alert)
        if problem is None:
            return alert
    log.warning(
        "invalid alert skipped",
        extra={"partition": message.partition(), "offset": message.offset(), "field": problem[0], "reason": problem[1]},
    )
    return None


def unstorable(alert: Alert) -> tuple[str, str] | None:
    """What the schema lets through but no store should hold: a time beyond the range of UTC timestamps."""
    for name in ("event_time", "scored_at"):
        try:
            utc(getattr(alert, name))
        except OverflowError:
            return name, "is out of the range of UTC timestamps"
    return None
