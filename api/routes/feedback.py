"""POST /alerts/{transaction_id}/feedback (an analyst's verdict) and GET of its history.

The verdict is stored first (it replaces the alert's current verdict; the history keeps every one), then produced
to the compacted fraud-feedback topic by the publisher (:mod:`api.feedback`, exactly once each). The call waits up
to FRAUD_FEEDBACK_PUBLISH_TIMEOUT_S for the topic: 201 once it is there, 202 when it is stored and still on its
way (the broker is slow or away; it is produced as soon as it answers).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.exceptions import AlertNotFoundError
from api.schemas import FeedbackHistoryPublic, FeedbackIn, FeedbackPublic

router = APIRouter(
    prefix="/alerts",
    tags=["feedback"],
    responses={
        401: {"description": "An API key is configured and was not sent."},
        404: {"description": "No alert has this transaction id."},
    },
)


@router.post(
    "/{transaction_id:path}/feedback",
    response_model=FeedbackPublic,
    status_code=201,
    summary="Record an analyst's verdict on an alert",
    responses={202: {"model": FeedbackPublic, "description": "Stored; not yet on fraud-feedback (retried)."}},
)
def post_feedback(transaction_id: str, feedback: FeedbackIn, services: ServicesDep) -> JSONResponse:
    """Store the verdict as the alert's current one (the previous stays in the history) and produce it to
    fraud-feedback, keyed by transaction id."""
    stored = services.store.feedback.record(transaction_id, feedback.verdict, feedback.analyst, feedback.note)
    if stored is None:
        raise AlertNotFoundError(transaction_id)
    services.metrics.verdict(stored.verdict)
    publisher = services.feedback
    if publisher is not None:
        stored = publisher.wait_published(stored.feedback_id, services.settings.feedback_publish_timeout_s) or stored
    body = _public(stored)
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if body.published else 202)


@router.get(
    "/{transaction_id:path}/feedback",
    response_model=FeedbackHistoryPublic,
    summary="Every verdict on an alert, oldest first",
)
def feedback_history(transaction_id: str, services: ServicesDep) -> FeedbackHistoryPublic:
    """The verdicts analysts gave this alert; the last is its current verdict. 404 for an unknown alert."""
    if services.store.get(transaction_id) is None:
        raise AlertNotFoundError(transaction_id)
    history = [_public(item) for item in services.store.feedback.history(transaction_id)]
    return FeedbackHistoryPublic(data=history, count=len(history))


def _public(stored: object) -> FeedbackPublic:
    return FeedbackPublic.model_validate(stored, from_attributes=True)
