"""What the OpenAPI document says beyond what FastAPI infers: every error status a route can answer, with its
body's schema, and the request bodies the lean routes read themselves.

Each status a route returns is documented (a unit test and the schemathesis run hold it): 401 from the API-key
middleware, 408/413/415 from the body middlewares, 422 from validation (one shape for FastAPI's and ours), 404 and
503 from the routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.schemas import ErrorPublic, TransactionBatch, ValidationErrorPublic
from api.security import document_security
from fraudstream.schemas import TransactionFeatures

Responses = dict[int | str, dict[str, Any]]
REQUEST_BODIES: tuple[type[BaseModel], ...] = (TransactionFeatures, TransactionBatch)
"""Bodies read by the routes themselves (not through a FastAPI body parameter): added to the components."""


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorPublic, "description": description}


KEY_ERROR: Responses = {401: error("An API key is configured (FRAUD_API_KEY) and was not sent.")}
VALIDATION_ERROR: dict[str, Any] = {
    "model": ValidationErrorPublic,
    "description": "An input is not valid; each error names its field.",
}
QUERY_ERRORS: Responses = {422: VALIDATION_ERROR}
BODY_ERRORS: Responses = {
    408: error("The request body did not arrive within FRAUD_API_BODY_TIMEOUT_S."),
    413: error("The request body is over FRAUD_API_MAX_BODY_BYTES."),
    415: error("The request body is not JSON (Content-Type: application/json)."),
    422: VALIDATION_ERROR,
}
STORE_ERROR: Responses = {503: error("The alert store cannot be reached.")}


def documented_openapi(app: FastAPI, *, api_key: bool) -> Callable[[], dict[str, Any]]:
    """app.openapi with the request bodies in the components, and the API key when one is configured."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _, definitions = models_json_schema(
                [(model, "validation") for model in REQUEST_BODIES], ref_template="#/components/schemas/{model}"
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions.get("$defs", {}))
            app.openapi_schema = document_security(schema) if api_key else schema
        return app.openapi_schema

    return openapi
