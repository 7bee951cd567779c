"""GET /metrics: this app's Prometheus metrics in the text exposition format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(app_metrics: MetricsDep) -> Response:
    """Request latency by route, predictions by outcome, alerts stored, sink lag, serving model."""
    return Response(app_metrics.exposition(), media_type=app_metrics.content_type)
