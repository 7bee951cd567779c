"""POST /predict and /predict/batch: the serving model's decision, scored by the kernel's FraudModel.

/predict is the hot path, so it is lean on purpose (FastAPI's machinery is about half of a request's cost):
``async def`` (scoring one row in ONNX Runtime costs less than a hop to the thread pool), no dependency tree,
the body parsed and validated in one step by pydantic's JSON parser into the kernel's TransactionFeatures
(errors still come out as FastAPI's standard 422, naming the field), and the answer encoded once with orjson. The
OpenAPI document still describes the body and the answer exactly. Both routes read their body the same way, so
both refuse repeated keys (``kernel parse_json``), which FastAPI's own body parsing would let through (last wins).

Reason codes come from the kernel's FraudModel.explain, the scorer's own path: for fraudulent answers, and for any
answer with ``?explain=true``. An exact row costs milliseconds, run inline; while the forest is still loading (the first
seconds after a model is loaded) the wait happens in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from api.deps import NO_MODEL_MESSAGE, MetricsDep, ModelDep, SettingsDep
from api.exceptions import InvalidInputError, ModelUnavailableError
from api.openapi import BODY_ERRORS, KEY_ERROR, error
from api.schemas import ExplanationPublic, PredictionPublic, PredictionsPublic, TransactionBatch
from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES, SEED_EXAMPLE, TransactionFeatures, feature_matrix, parse_json

SEED = {"seed": {"summary": "The first row of creditcard.csv (legitimate)", "value": SEED_EXAMPLE}}
EXPLAIN_DESCRIPTION = "Return the reason codes for any answer, not only a fraudulent one."
EXPLAIN_PARAMETER = {
    "name": "explain",
    "in": "query",
    "required": False,
    "description": EXPLAIN_DESCRIPTION,
    "schema": {"type": "boolean", "default": False},
}
BOOLEANS = {"true": True, "false": False}
"""What the schema's boolean allows: anything else is 422 (not a silent false)."""
INLINE_ROWS = 8
"""Up to this many rows are explained on the event loop once the forest is loaded (an exact row costs milliseconds)."""


def _json_body(model: type[BaseModel], examples: dict[str, Any]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "parameters": [EXPLAIN_PARAMETER],
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema, "examples": examples}}},
    }


TRANSACTION_BODY = _json_body(TransactionFeatures, SEED)
BATCH_BODY = _json_body(TransactionBatch, {"two": {"value": {"transactions": [SEED_EXAMPLE] * 2}}})
ERRORS: dict[int | str, dict[str, Any]] = {
    **KEY_ERROR,
    **BODY_ERRORS,
    503: error("No production model yet: run `fraudstream train`."),
}
_FEATURE_KEYS = len(FEATURES)

router = APIRouter(prefix="/predict", tags=["predict"], responses=ERRORS)
Body = TypeVar("Body", bound=BaseModel)


def _validated(model: type[Body], raw: bytes, tokens: Any = None) -> Body:
    """The body as ``model``; FastAPI's standard 422 (``loc`` starting with "body") when it is not one."""
    try:
        return parse_json(model, raw, tokens=tokens)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc


def _batch_tokens(batch: TransactionBatch) -> tuple[int, int]:
    return 1 + _FEATURE_KEYS * len(batch.transactions), 0


@router.post("", response_model=PredictionPublic, summary="Score one transaction", openapi_extra=TRANSACTION_BODY)
async def predict(request: Request) -> Response:
    """The fraud probability of one transaction and the serving model's decision at its threshold."""
    explain = _explain_asked(request)  # validated first: a fraudulent answer must not hide a bad parameter
    transaction = _validated(TransactionFeatures, await request.body())
    services = request.app.state.services
    model = services.models.current  # read once: the whole request uses one version
    if model is None:
        services.metrics.unavailable()
        raise ModelUnavailableError(NO_MODEL_MESSAGE)
    matrix = feature_matrix([transaction])
    scores = model.score(matrix)
    fraudulent = bool(model.flags(scores)[0])
    services.metrics.predicted(int(fraudulent), 1)
    explanation = None
    if fraudulent or explain:
        (found,) = await explanations(model, matrix)
        explanation = None if found is None else found.model_dump()
    answer = {
        "fraudulent": fraudulent,
        "score": float(scores[0]),
        "threshold": model.threshold,
        "model_version": model.version,
        "explanation": explanation,
    }
    return Response(orjson.dumps(answer), media_type="application/json")


def _explain_asked(request: Request) -> bool:
    value = request.query_params.get("explain")
    if value is None:
        return False
    if value in BOOLEANS:
        return BOOLEANS[value]
    raise InvalidInputError("explain", "must be true or false")


async def explanations(model: FraudModel, matrix: np.ndarray) -> list[ExplanationPublic | None]:
    """The kernel's explanations of the rows as the API shows them (with plain-words lines)."""
    loader = model.explainer
    if loader is not None and loader.ready and len(matrix) <= INLINE_ROWS:
        found = model.explain(matrix)
    else:
        found = await asyncio.to_thread(model.explain, matrix)
    return [None if e is None else ExplanationPublic.model_validate(e.model_dump()) for e in found]


@router.post(
    "/batch",
    response_model=PredictionsPublic,
    summary="Score up to FRAUD_API_MAX_BATCH transactions",
    openapi_extra=BATCH_BODY,
)
async def predict_batch(
    request: Request, model: ModelDep, metrics: MetricsDep, settings: SettingsDep
) -> PredictionsPublic:
    """Decisions for several transactions in one call, in request order, all by the same model version; reason
    codes for the fraudulent ones (for all with ``?explain=true``)."""
    batch = _validated(TransactionBatch, await request.body(), _batch_tokens)
    explain = _explain_asked(request)
    if len(batch.transactions) > settings.api_max_batch:
        raise InvalidInputError(
            "transactions",
            f"at most {settings.api_max_batch} transactions per call (FRAUD_API_MAX_BATCH), "
            f"got {len(batch.transactions)}",
            location="body",
        )
    matrix = feature_matrix(batch.transactions)
    scores = model.score(matrix)
    flags = model.flags(scores)
    metrics.predicted(int(flags.sum()), len(flags))
    threshold, version = model.threshold, model.version
    chosen = np.arange(len(flags)) if explain else np.flatnonzero(flags)
    reasons: dict[int, ExplanationPublic | None] = {}
    if len(chosen):
        reasons = dict(zip(chosen.tolist(), await explanations(model, matrix[chosen]), strict=True))
    data = [
        PredictionPublic(
            fraudulent=bool(flag),
            score=float(score),
            threshold=threshold,
            model_version=version,
            explanation=reasons.get(index),
        )
        for index, (score, flag) in enumerate(zip(scores, flags, strict=True))
    ]
    return PredictionsPublic(data=data, count=len(data))
