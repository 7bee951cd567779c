"""The keyset cursor of GET /alerts: the last alert of a page, as opaque URL-safe base64."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from fraudstream.rules import MAX_ID_CHARS, PRINTABLE_ID


@dataclass(frozen=True)
class Cursor:
    """Position after which the next page starts: (event_time, transaction_id) of the last alert shown."""

    event_time: datetime
    transaction_id: str

    def encode(self) -> str:
        raw = json.dumps([self.event_time.isoformat(), self.transaction_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor a page handed out; ValueError when ``token`` is not one (tampered, truncated, or naming an id
        no transaction can have)."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            event_time, transaction_id = json.loads(raw.decode("utf-8"))
            moment = datetime.fromisoformat(event_time)
            if moment.tzinfo is None or not isinstance(transaction_id, str):
                raise ValueError("incomplete cursor")
            if not 0 < len(transaction_id) <= MAX_ID_CHARS:
                raise ValueError("not a transaction id")
            PRINTABLE_ID(transaction_id)  # no id the store holds has control characters or lone surrogates
            moment = moment.astimezone(timezone.utc)
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, OverflowError) as exc:
            raise ValueError("not a cursor returned by GET /alerts") from exc
        return cls(moment, transaction_id)
