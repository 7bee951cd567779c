"""GET /alerts (filtered pages, newest first), /alerts/stats and /alerts/{transaction_id} from the alert store.

Verdicts are posted at /alerts/{transaction_id}/feedback (api/routes/feedback.py).

Plain ``def``: the store's calls block, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BeforeValidator

from api.deps import StoreDep
from api.exceptions import AlertNotFoundError, InvalidInputError
from api.openapi import KEY_ERROR, QUERY_ERRORS, STORE_ERROR, error
from api.schemas import (
    AlertPublic,
    AlertsPublic,
    AlertStatsPublic,
    FeedbackCountsPublic,
    HourCount,
    MinuteCount,
    VersionCount,
)
from api.store.alerts import AlertFilter, StoredAlert, VerdictFilter, utc
from api.store.cursor import Cursor
from fraudstream.rules import TransactionId, parse_timestamp

MAX_LIMIT = 1000

router = APIRouter(
    prefix="/alerts",
    tags=["alerts"],
    responses={**KEY_ERROR, **QUERY_ERRORS, **STORE_ERROR},
)

QueryTime = Annotated[datetime, BeforeValidator(parse_timestamp)]
"""An RFC 3339 date-time, read by the parser of the messages' times; here a zone may be left out (then UTC)."""
Since = Annotated[QueryTime | None, Query(description="Alerts with event_time from this instant on (no zone: UTC).")]
Until = Annotated[QueryTime | None, Query(description="Alerts with event_time before this instant (no zone: UTC).")]


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The bounds in UTC; 422 when one cannot be expressed in UTC or when they are reversed."""
    bounds: dict[str, datetime | None] = {"since": since, "until": until}
    for name, value in bounds.items():
        if value is not None:
            try:
                bounds[name] = utc(value)
            except OverflowError as exc:
                raise InvalidInputError(name, "is out of the range of UTC timestamps") from exc
    start, end = bounds["since"], bounds["until"]
    if start is not None and end is not None and start > end:
        raise InvalidInputError("until", "must not be before since")
    return start, end


@router.get("", response_model=AlertsPublic, summary="List alerts, newest first")
def list_alerts(
    store: StoreDep,
    since: Since = None,
    until: Until = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0, allow_inf_nan=False)] = None,
    model_version: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    verdict: Annotated[
        VerdictFilter | None, Query(description="none: not reviewed yet; fraud or legitimate: the current verdict.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Alerts per page.")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=2000, description="`next_cursor` of the previous page; unset: the first page.")
    ] = None,
) -> AlertsPublic:
    """Alerts by event time, newest first (transaction id breaks ties), one page at a time.

    Follow ``next_cursor`` until it is null: every alert is seen exactly once, even while new ones arrive.
    """
    start, end = _window(since, until)
    after = None
    if cursor is not None:
        try:
            after = Cursor.decode(cursor)
        except ValueError as exc:
            raise InvalidInputError("cursor", str(exc)) from exc
    where = AlertFilter(since=start, until=end, min_score=min_score, model_version=model_version, verdict=verdict)
    page = store.page(where, limit=limit, after=after)
    return AlertsPublic(
        data=[public(alert) for alert in page.alerts],
        count=len(page.alerts),
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


@router.get("/stats", response_model=AlertStatsPublic, summary="Alert counts, reviews and confirmed precision")
def alert_stats(
    store: StoreDep,
    since: Since = None,
    until: Until = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0, allow_inf_nan=False)] = None,
    model_version: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> AlertStatsPublic:
    """How many alerts in the window, per model version (with how many analysts reviewed and the confirmed
    precision: fraud verdicts / reviewed), per verdict, per UTC hour of event time, per score bin, and per minute
    of the last hour (by scored_at)."""
    start, end = _window(since, until)
    stats = store.stats(AlertFilter(since=start, until=end, min_score=min_score, model_version=model_version))
    stored, pending = store.feedback.counts()
    versions = [
        VersionCount(
            model_version=version,
            count=review.alerts,
            reviewed=review.reviewed,
            confirmed_fraud=review.fraud,
            confirmed_precision=review.precision,
        )
        for version, review in sorted(stats.reviews.items())
    ]
    return AlertStatsPublic(
        total=stats.total,
        reviewed=stats.reviewed,
        by_verdict=stats.by_verdict,
        by_model_version=versions,
        by_hour=[HourCount(hour=hour, count=n) for hour, n in stats.by_hour.items()],
        by_minute=[MinuteCount(minute=minute, count=n) for minute, n in stats.by_minute.items()],
        score_histogram=stats.score_histogram,
        feedback=FeedbackCountsPublic(stored=stored, pending=pending),
    )


@router.get(
    "/{transaction_id:path}",
    response_model=AlertPublic,
    summary="One alert by transaction id",
    responses={404: error("No alert for this transaction id.")},
)
def get_alert(transaction_id: Annotated[TransactionId, Path()], store: StoreDep) -> AlertPublic:
    """The stored alert of one transaction; 404 when that transaction raised no alert, 422 when the id is not one
    a transaction can have (blank, over 200 characters, or with control characters)."""
    alert = store.get(transaction_id)
    if alert is None:
        raise AlertNotFoundError(transaction_id)
    return public(alert)


def public(alert: StoredAlert) -> AlertPublic:
    """The API's view of a stored alert (its reasons with their plain-words lines)."""
    return AlertPublic.model_validate(alert.model_dump())
