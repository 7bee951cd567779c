"""``create_app(settings)``: the FastAPI app, its middleware, routers and error handlers, wired by bootstrap().

The lifespan loads the serving model, starts the watcher that reloads it when the alias moves, and (unless the
sink runs as its own process) the alert sink; on shutdown it stops them and closes the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.body import RequestBodyMiddleware
from api.bootstrap import ApiServices, bootstrap
from api.errors import install_error_handlers
from api.metrics import LatencyMiddleware
from api.openapi import documented_openapi
from api.query import SingleValuedQueryMiddleware
from api.routes import alerts, feedback, health, metrics, model, monitoring, predict
from api.routes.console import mount_console
from api.routes.docs import mount_docs
from api.security import ApiKeyMiddleware, BodySizeLimitMiddleware
from fraudstream import __version__
from fraudstream.settings import Settings

DESCRIPTION = """Scores card transactions with the registered production model (the same model, threshold and
scoring code as the stream scorer) and serves the fraud alerts the stream produced.

When FRAUD_API_KEY is set, every route but /healthz and /readyz needs it, as `X-API-Key` or a bearer token. The
pages /docs, /redoc and /console/ open without it (they hold no data) and ask for it once.

The alert console for analysts is at [/console/](console/)."""


def create_app(settings: Settings, *, services: ApiServices | None = None, **parts: Any) -> FastAPI:
    """The API for ``settings``. Pass ``services`` (or any of bootstrap()'s keyword parts: ``registry``,
    ``watcher``, ``store``, ``run_sink``, ``run_metrics``, ``consumer_factory``, ``producer_factory``) to swap real
    parts for others."""
    wired = services or bootstrap(settings, **parts)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await wired.start()
        try:
            yield
        finally:
            await wired.stop()

    app = FastAPI(
        title="fraudstream",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs and /redoc are ours (api/routes/docs.py): served offline, and usable with FRAUD_API_KEY set.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = wired
    install_error_handlers(app)
    # feedback before alerts: GET /alerts/{id}/feedback must not be taken for the alert of id '{id}/feedback'
    for router in (
        predict.router,
        feedback.router,
        alerts.router,
        monitoring.router,
        model.router,
        health.router,
        metrics.router,
    ):
        app.include_router(router)
    mount_console(app)
    mount_docs(app)
    app.openapi = documented_openapi(app, api_key=wired.api_key is not None)  # type: ignore[method-assign]
    # Added last runs first: time everything (401s and 413s included), check the key, then that the body is JSON
    # and arrives in time, then its size, then that no query parameter is repeated.
    app.add_middleware(SingleValuedQueryMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestBodyMiddleware, timeout_s=settings.api_body_timeout_s)
    app.add_middleware(ApiKeyMiddleware, key=wired.api_key)
    app.add_middleware(LatencyMiddleware, metrics=wired.metrics)
    return app
