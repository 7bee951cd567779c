"""What a registered model version carries for serving, and the loaded model every scorer and API uses.

Contract with the trainer: the version is an MLflow sklearn model whose MLmodel ``metadata`` holds a
``fraudstream`` entry (:class:`ServingSpec`: threshold, feature order, where the ONNX file is) and whose
``extra_files`` hold that ONNX file. One model, one threshold, one scoring path for the stream and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fraudstream.model.engine import OnnxEngine
from fraudstream.schemas import FEATURES

if TYPE_CHECKING:
    from fraudstream.model.explain import ExplainerLoader
    from fraudstream.schemas import Explanation

METADATA_KEY = "fraudstream"
SPEC_VERSION = 1


class ServingSpec(BaseModel):
    """Serving facts written by the trainer into the model's MLmodel metadata."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    spec_version: int = SPEC_VERSION
    threshold: float = Field(ge=0.0, le=1.0)
    features: tuple[str, ...] = FEATURES
    onnx_path: str = Field(description="Path of the ONNX file inside the model directory.")
    onnx_max_abs_diff: float | None = Field(None, description="Largest |ONNX - sklearn| probability measured.")

    def as_metadata(self) -> dict[str, Any]:
        return {METADATA_KEY: self.model_dump(mode="json")}


@dataclass(frozen=True)
class FraudModel:
    """A loaded model version: scores a feature matrix and flags scores at or above its threshold."""

    name: str
    version: str
    threshold: float
    engine: OnnxEngine
    run_id: str | None = None
    explainer: ExplainerLoader | None = None
    """Reason codes from the same version's forest; None when explanations are off or the version has no forest."""

    def score(self, features: np.ndarray) -> np.ndarray:
        """Fraud probabilities for an (n, 30) matrix in FEATURES order."""
        return self.engine.fraud_probability(features)

    def flags(self, scores: np.ndarray) -> np.ndarray:
        return scores >= self.threshold

    def explain(self, features: np.ndarray) -> list[Explanation | None]:
        """Reason codes of rows of an (n, 30) matrix (callers pass the flagged ones); None each without an explainer."""
        if self.explainer is None:
            return [None] * len(features)
        return self.explainer.explain(features)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"
