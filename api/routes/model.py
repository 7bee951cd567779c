"""GET /model: the serving model and the test metrics of the MLflow run that trained it."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import NO_MODEL_MESSAGE, ServicesDep
from api.exceptions import ModelUnavailableError
from api.openapi import KEY_ERROR, error
from api.schemas import ModelPublic

router = APIRouter(
    prefix="/model",
    tags=["model"],
    responses={**KEY_ERROR, 503: error("No production model yet: run `fraudstream train`.")},
)


@router.get("", response_model=ModelPublic, summary="The serving model")
def read_model(services: ServicesDep) -> ModelPublic:
    """Name, version, threshold, run id, and the run's test_* metrics (read from MLflow once per version)."""
    described = services.models.describe()
    if described is None:
        raise ModelUnavailableError(NO_MODEL_MESSAGE)
    return ModelPublic(
        name=described.name,
        version=described.version,
        threshold=described.threshold,
        run_id=described.run_id,
        metrics=described.metrics,
    )
