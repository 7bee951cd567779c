"""POST /predict and /predict/batch: the serving model's decision, scored by the kernel's FraudModel.

/predict is the hot path, so it is lean on purpose (measured: ~100 us of FastAPI machinery per request out of
~200): ``async def`` (scoring one row costs ~10 us in ONNX Runtime, far less than a thread-pool hop), no dependency
tree, the body parsed and validated in one step by pydantic's JSON parser into the kernel's TransactionFeatures
(errors still come out as FastAPI's standard 422, naming the field), and the answer encoded once with orjson. The
OpenAPI document still describes the body and the answer exactly. Both routes read their body the same way, so
both refuse repeated keys (``kernel parse_json``), which FastAPI's own body parsing would let through (last wins).
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from api.deps import NO_MODEL_MESSAGE, MetricsDep, ModelDep, SettingsDep
from api.exceptions import InvalidInputError, ModelUnavailableError
from api.openapi import BODY_ERRORS, KEY_ERROR, error
from api.schemas import PredictionPublic, PredictionsPublic, TransactionBatch
from fraudstream.schemas import FEATURES, SEED_EXAMPLE, TransactionFeatures, feature_matrix, parse_json

SEED = {"seed": {"summary": "The first row of creditcard.csv (legitimate)", "value": SEED_EXAMPLE}}


def _json_body(model: type[BaseModel], examples: dict[str, Any]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema, "examples": examples}}}
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
    transaction = _validated(TransactionFeatures, await request.body())
    services = request.app.state.services
    model = services.models.current  # read once: the whole request uses one version
    if model is None:
        services.metrics.unavailable()
        raise ModelUnavailableError(NO_MODEL_MESSAGE)
    scores = model.score(feature_matrix([transaction]))
    fraudulent = bool(model.flags(scores)[0])
    services.metrics.predicted(int(fraudulent), 1)
    answer = {
        "fraudulent": fraudulent,
        "score": float(scores[0]),
        "threshold": model.threshold,
        "model_version": model.version,
    }
    return Response(orjson.dumps(answer), media_type="application/json")


@router.post(
    "/batch",
    response_model=PredictionsPublic,
    summary="Score up to FRAUD_API_MAX_BATCH transactions",
    openapi_extra=BATCH_BODY,
)
async def predict_batch(
    request: Request, model: ModelDep, metrics: MetricsDep, settings: SettingsDep
) -> PredictionsPublic:
    """Decisions for several transactions in one call, in request order, all by the same model version."""
    batch = _validated(TransactionBatch, await request.body(), _batch_tokens)
    if len(batch.transactions) > settings.api_max_batch:
        raise InvalidInputError(
            "transactions",
            f"at most {settings.api_max_batch} transactions per call (FRAUD_API_MAX_BATCH), "
            f"got {len(batch.transactions)}",
            location="body",
        )
    scores = model.score(feature_matrix(batch.transactions))
    flags = model.flags(scores)
    metrics.predicted(int(flags.sum()), len(flags))
    threshold, version = model.threshold, model.version
    data = [
        PredictionPublic(fraudulent=bool(flag), score=float(score), threshold=threshold, model_version=version)
        for score, flag in zip(scores, flags, strict=True)
    ]
    return PredictionsPublic(data=data, count=len(data))
