"""GET /metrics: this app's Prometheus metrics in the text exposition format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import MetricsDep
from api.openapi import KEY_ERROR

router = APIRouter(tags=["metrics"], responses=KEY_ERROR)
TEXT_FORMAT = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "The metrics."}}


@router.get("/metrics", response_class=Response, summary="Prometheus metrics", responses=TEXT_FORMAT)
async def metrics(app_metrics: MetricsDep) -> Response:
    """Request latency by route, predictions by outcome, alerts stored, sink lag, serving model."""
    return Response(app_metrics.exposition(), media_type=app_metrics.content_type)
