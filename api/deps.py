"""Shared inputs of the routes as ``Annotated`` aliases.

Each reads ``app.state.services`` from the request directly, with no sub-dependency: on the /predict path every
dependency node FastAPI resolves is a measurable share of the request. All are ``async`` so FastAPI calls them
on the event loop rather than through the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.bootstrap import ApiServices
from api.exceptions import ModelUnavailableError
from api.metrics import ApiMetrics
from api.store.alerts import AlertRepository
from fraudstream.model.serving import FraudModel
from fraudstream.settings import Settings

NO_MODEL_MESSAGE = "no production model yet: run `fraudstream train`"


def _services(request: Request) -> ApiServices:
    return request.app.state.services  # type: ignore[no-any-return]


async def get_services(request: Request) -> ApiServices:
    return _services(request)


async def get_settings(request: Request) -> Settings:
    return _services(request).settings


async def get_store(request: Request) -> AlertRepository:
    return _services(request).store


async def get_metrics(request: Request) -> ApiMetrics:
    return _services(request).metrics


async def get_model(request: Request) -> FraudModel:
    """The serving model, read once so the whole request uses one version; 503 before any model exists."""
    services = _services(request)
    model = services.models.current
    if model is None:
        services.metrics.unavailable()
        raise ModelUnavailableError(NO_MODEL_MESSAGE)
    return model


ServicesDep = Annotated[ApiServices, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[AlertRepository, Depends(get_store)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
ModelDep = Annotated[FraudModel, Depends(get_model)]
