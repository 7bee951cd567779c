"""Analysts' verdicts as the feedback topic holds them, for the tests of relabelling (kernel and trainer)."""

from __future__ import annotations

from datetime import datetime, timezone

from fraudstream.schemas import Feedback

AT = datetime(2024, 5, 1, tzinfo=timezone.utc)


def verdict(feedback_id: int, transaction_id: str, kind: str) -> Feedback:
    return Feedback(
        feedback_id=feedback_id,
        transaction_id=transaction_id,
        verdict=kind,  # type: ignore[arg-type]
        analyst="ana",
        decided_at=AT,
        model_name="m",
        model_version="1",
    )
