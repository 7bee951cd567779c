"""GET /monitoring (the newest window of every model version) and /monitoring/history (windows newest first, by
page) from the monitoring windows the API's monitoring sink stored (api/sink/monitoring.py).

Plain ``def``: the store's calls block, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import StoreDep
from api.exceptions import InvalidInputError
from api.openapi import KEY_ERROR, QUERY_ERRORS, STORE_ERROR
from api.routes.alerts import QueryTime
from api.schemas import MonitoringHistoryPublic, MonitoringLatestPublic, MonitoringWindowPublic
from api.store.alerts import utc
from api.store.monitoring import StoredWindow

MAX_LIMIT = 1000
MAX_CURSOR = 2**62

router = APIRouter(prefix="/monitoring", tags=["monitoring"], responses={**KEY_ERROR, **QUERY_ERRORS, **STORE_ERROR})


@router.get("", response_model=MonitoringLatestPublic, summary="The latest monitoring window of each model version")
def latest_windows(store: StoreDep) -> MonitoringLatestPublic:
    """For every model version the scorers monitored (production and shadow challenger), its newest window: the
    counts, the PSI of every feature and of the score against the training rows, the live precision, recall and F1
    where the transactions carried labels, and the status (ok, drift, degraded) with its reasons."""
    windows = [public(window) for window in store.monitoring.latest()]
    return MonitoringLatestPublic(data=windows, count=len(windows))


@router.get("/history", response_model=MonitoringHistoryPublic, summary="Monitoring windows, newest first")
def window_history(
    store: StoreDep,
    model_version: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: Annotated[
        QueryTime | None, Query(description="Windows that ended at this instant or later (no zone: UTC).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Windows per page.")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=30, description="`next_cursor` of the previous page; unset: the first page.")
    ] = None,
) -> MonitoringHistoryPublic:
    """Windows in the order they were stored, newest first, one page at a time; follow ``next_cursor`` until it is
    null to see each window exactly once, even while new ones arrive."""
    start = None
    if since is not None:
        try:
            start = utc(since)
        except OverflowError as exc:
            raise InvalidInputError("since", "is out of the range of UTC timestamps") from exc
    after = None
    if cursor is not None:
        if not cursor.isascii() or not cursor.isdigit() or not 0 < int(cursor) < MAX_CURSOR:
            raise InvalidInputError("cursor", "not a cursor returned by GET /monitoring/history")
        after = int(cursor)
    page = store.monitoring.page(model_version=model_version, since=start, limit=limit, after=after)
    return MonitoringHistoryPublic(
        data=[public(window) for window in page.windows],
        count=len(page.windows),
        next_cursor=None if page.next_cursor is None else str(page.next_cursor),
    )


def public(window: StoredWindow) -> MonitoringWindowPublic:
    return MonitoringWindowPublic.model_validate(
        {**window.record.model_dump(), "number": window.window, "stored_at": window.stored_at}
    )
