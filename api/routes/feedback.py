"""POST /alerts/{transaction_id}/feedback (an analyst's verdict) and GET of its history.

The verdict is stored first (it replaces the alert's current verdict; the history keeps every one), then produced
to the compacted fraud-feedback topic by the publisher (:mod:`api.feedback`, exactly once each). The call waits up
to FRAUD_FEEDBACK_PUBLISH_TIMEOUT_S for the topic: 201 once it is there, 202 when it is stored and still on its
way (the broker is slow or away; it is produced as soon as it answers).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.deps import ServicesDep
from api.exceptions import AlertNotFoundError
from api.openapi import BODY_ERRORS, KEY_ERROR, QUERY_ERRORS, STORE_ERROR, error
from api.schemas import FeedbackHistoryPublic, FeedbackIn, FeedbackPublic
from fraudstream.rules import TransactionId
from fraudstream.schemas import parse_json

router = APIRouter(
    prefix="/alerts",
    tags=["feedback"],
    responses={**KEY_ERROR, **QUERY_ERRORS, **STORE_ERROR, 404: error("No alert for this transaction id.")},
)
PathId = Annotated[TransactionId, Path()]
FEEDBACK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": FeedbackIn.model_json_schema(),
                "examples": {
                    "fraud": {"value": {"verdict": "fraud", "analyst": "ana", "note": "card reported stolen"}}
                },
            }
        },
    }
}


@router.post(
    "/{transaction_id:path}/feedback",
    response_model=FeedbackPublic,
    status_code=201,
    summary="Record an analyst's verdict on an alert",
    responses={
        **BODY_ERRORS,
        202: {"model": FeedbackPublic, "description": "Stored; not yet on fraud-feedback (retried)."},
    },
    openapi_extra=FEEDBACK_BODY,
)
async def post_feedback(transaction_id: PathId, request: Request, services: ServicesDep) -> JSONResponse:
    """Store the verdict as the alert's current one (the previous stays in the history) and produce it to
    fraud-feedback, keyed by transaction id."""
    try:  # read here, as /predict does: repeated keys and bytes that are not JSON are 422 naming the field
        feedback = parse_json(FeedbackIn, await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
    store = services.store.feedback
    stored = await asyncio.to_thread(store.record, transaction_id, feedback.verdict, feedback.analyst, feedback.note)
    if stored is None:
        raise AlertNotFoundError(transaction_id)
    services.metrics.verdict(stored.verdict)
    publisher = services.feedback
    if publisher is not None:
        timeout = services.settings.feedback_publish_timeout_s
        stored = await asyncio.to_thread(publisher.wait_published, stored.feedback_id, timeout) or stored
    body = _public(stored)
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if body.published else 202)


@router.get(
    "/{transaction_id:path}/feedback",
    response_model=FeedbackHistoryPublic,
    summary="Every verdict on an alert, oldest first",
)
def feedback_history(transaction_id: PathId, services: ServicesDep) -> FeedbackHistoryPublic:
    """The verdicts analysts gave this alert; the last is its current verdict. 404 for an unknown alert."""
    if services.store.get(transaction_id) is None:
        raise AlertNotFoundError(transaction_id)
    history = [_public(item) for item in services.store.feedback.history(transaction_id)]
    return FeedbackHistoryPublic(data=history, count=len(history))


def _public(stored: object) -> FeedbackPublic:
    return FeedbackPublic.model_validate(stored, from_attributes=True)
