"""Prove that the forest compiled to ONNX (:func:`fraudstream.model.engine.forest_to_onnx`) scores like the sklearn
model."""

from __future__ import annotations

import numpy as np
from imblearn.pipeline import Pipeline

from fraudstream.model.engine import OnnxEngine
from trainer.exceptions import TrainingError

# ONNX Runtime sums tree votes in float32: measured differences from sklearn are below 1e-6. A larger gap
# means the export does not reproduce the registered model, and nothing is registered.
PARITY_TOLERANCE = 1e-5


def parity(pipeline: Pipeline, engine: OnnxEngine, features: np.ndarray) -> float:
    """Largest |ONNX - sklearn| fraud probability over ``features``; raises when above tolerance."""
    expected = pipeline.predict_proba(features)[:, 1]
    actual = engine.fraud_probability(np.asarray(features, dtype=np.float32))
    worst = float(np.max(np.abs(expected - actual))) if len(expected) else 0.0
    if worst > PARITY_TOLERANCE:
        raise TrainingError(
            f"the ONNX export differs from the sklearn model by up to {worst:.2e} (tolerance {PARITY_TOLERANCE:.0e})"
        )
    return worst
