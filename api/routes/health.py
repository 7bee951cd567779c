"""GET /healthz (the process answers) and /readyz (it can do its job). Both stay open when an API key is set,
so an orchestrator's probes need no secret."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.exceptions import StoreError
from api.schemas import CheckPublic, HealthPublic, ReadinessPublic, SinkCheckPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, summary="Liveness")
async def healthz() -> HealthPublic:
    """Always 200 while the process serves requests."""
    return HealthPublic()


@router.get(
    "/readyz",
    response_model=ReadinessPublic,
    summary="Readiness: model loaded, store reachable, sink holding partitions, reaching the broker, lag known",
    responses={503: {"model": ReadinessPublic, "description": "Not ready; each failing check says why."}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when a model is loaded, the store answers and the in-process sink (if any) holds partitions, reaches
    the broker and has measured its lag (within FRAUD_API_READY_MAX_SINK_LAG when set); else 503 saying which."""
    model = services.models.current
    model_check = CheckPublic(
        ok=model is not None,
        detail=f"{model.name} v{model.version}" if model else "no production model yet: run `fraudstream train`",
    )
    try:
        await asyncio.to_thread(services.store.ping)
        store_check = CheckPublic(ok=True, detail=f"{services.store.dialect} answers")
    except StoreError as exc:
        store_check = CheckPublic(ok=False, detail=str(exc))
    readiness = ReadinessPublic(status="ready", model=model_check, store=store_check, sink=_sink_check(services))
    ready = model_check.ok and store_check.ok and readiness.sink.ok
    readiness = readiness.model_copy(update={"status": "ready" if ready else "not ready"})
    return JSONResponse(readiness.model_dump(mode="json"), status_code=200 if ready else 503)


def _sink_check(services: ServicesDep) -> SinkCheckPublic:
    if services.sink is None:
        return SinkCheckPublic(ok=True, detail="not run in this process (`fraudstream sink` runs it)")
    status = services.sink.sink.status()
    limit = services.settings.api_ready_max_sink_lag
    if status.failed or not services.sink.alive:
        ok, detail = False, f"stopped: {status.failed or 'not running'}"
    elif status.problems:
        ok, detail = False, "; ".join(status.problems)
    elif limit is not None and status.lag is not None and status.lag > limit:
        ok, detail = False, f"lag {status.lag} is over FRAUD_API_READY_MAX_SINK_LAG={limit}"
    elif status.last_error:
        ok, detail = True, f"running, retrying after: {status.last_error}"
    else:
        ok, detail = True, "running"
    return SinkCheckPublic(
        ok=ok,
        detail=detail,
        lag=status.lag,
        stored=status.stored,
        invalid=status.invalid,
        partitions=status.assigned,
        dead_lettered=status.dead_lettered,
    )
