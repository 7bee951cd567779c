"""GET /healthz (the process answers) and /readyz (it can do its job). Both stay open when an API key is set,
so an orchestrator's probes need no secret."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.exceptions import StoreError
from api.schemas import (
    CheckPublic,
    HealthPublic,
    MonitoringCheckPublic,
    MonitoringStatusPublic,
    ReadinessPublic,
    SinkCheckPublic,
)
from api.sink.thread import SinkThread
from api.store.monitoring import StoredWindow

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
    """200 when a model is loaded, the store answers and the in-process sinks (alerts and monitoring, if run here)
    hold partitions, reach the broker and have measured their lag (within FRAUD_API_READY_MAX_SINK_LAG when set);
    else 503 saying which. ``monitoring.versions`` gives the latest monitoring status of each serving version."""
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
    monitoring = MonitoringCheckPublic(
        **_sink_check(services.monitoring_sink, services).model_dump(),
        versions=await asyncio.to_thread(_serving_windows, services) if store_check.ok else [],
    )
    readiness = ReadinessPublic(
        status="ready",
        model=model_check,
        store=store_check,
        sink=_sink_check(services.sink, services),
        monitoring=monitoring,
    )
    ready = model_check.ok and store_check.ok and readiness.sink.ok and monitoring.ok
    readiness = readiness.model_copy(update={"status": "ready" if ready else "not ready"})
    return JSONResponse(readiness.model_dump(mode="json"), status_code=200 if ready else 503)


def _serving_windows(services: ServicesDep) -> list[MonitoringStatusPublic]:
    """The newest production window, the newest challenger window, and the newest window of the version this API
    serves if neither is it."""
    try:
        latest = services.store.monitoring.latest()
    except StoreError:
        return []
    chosen: list[StoredWindow] = []
    for role in ("production", "challenger"):
        chosen += [window for window in latest if window.record.role == role][:1]
    model = services.models.current
    if model is not None and all(w.record.model_version != model.version for w in chosen):
        chosen += [w for w in latest if (w.record.model_name, w.record.model_version) == (model.name, model.version)]
    return [
        MonitoringStatusPublic(
            model_name=w.record.model_name,
            model_version=w.record.model_version,
            role=w.record.role,
            status=w.record.status,
            number=w.window,
            window_end=w.record.window_end,
            reasons=w.record.reasons,
        )
        for w in chosen
    ]


def _sink_check(thread: SinkThread | None, services: ServicesDep) -> SinkCheckPublic:
    if thread is None:
        return SinkCheckPublic(ok=True, detail="not run in this process (`fraudstream sink` runs it)")
    status = thread.sink.status()
    limit = services.settings.api_ready_max_sink_lag
    if status.failed or not thread.alive:
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
