"""``create_app(settings)``: the FastAPI app, its middleware, routers and error handlers, wired by bootstrap().

The lifespan loads the serving model, starts the watcher that reloads it when the alias moves, and (unless the
sink runs as its own process) the alert sink; on shutdown it stops them and closes the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.bootstrap import ApiServices, bootstrap
from api.errors import install_error_handlers
from api.metrics import LatencyMiddleware
from api.routes import alerts, health, metrics, model, predict
from api.security import ApiKeyMiddleware, BodySizeLimitMiddleware, document_security
from fraudstream import __version__
from fraudstream.settings import Settings

DESCRIPTION = """Scores card transactions with the registered production model (the same model, threshold and
scoring code as the stream scorer) and serves the fraud alerts the stream produced.

When FRAUD_API_KEY is set, every route but /healthz and /readyz needs it, as `X-API-Key` or a bearer token."""


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
        # /docs, /redoc and /openapi.json stay FastAPI's, behind the key like every route but the probes: a
        # deployment that sets FRAUD_API_KEY lets no anonymous caller learn more than that the service is up.
        # (Fetch the schema with the key; browsers need a header-adding extension for /docs then.)
    )
    app.state.services = wired
    install_error_handlers(app)
    for router in (predict.router, alerts.router, model.router, health.router, metrics.router):
        app.include_router(router)
    if wired.api_key is not None:
        app.openapi = _with_security(app)  # type: ignore[method-assign]
    # Added last runs first: time everything (401s and 413s included), check the key, then the body size.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(ApiKeyMiddleware, key=wired.api_key)
    app.add_middleware(LatencyMiddleware, metrics=wired.metrics)
    return app


def _with_security(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """app.openapi, declaring the API key the middleware enforces (so Swagger UI offers "Authorize")."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_security(build())
        return app.openapi_schema

    return openapi
