"""Compile the fitted forest to ONNX for the serving engine, and prove it scores like the sklearn model."""

from __future__ import annotations

import numpy as np
from imblearn.pipeline import Pipeline

from fraudstream.model.engine import OnnxEngine
from trainer.exceptions import TrainingError

# ONNX Runtime sums tree votes in float32: measured differences from sklearn are below 1e-6. A larger gap
# means the export does not reproduce the registered model, and nothing is registered.
PARITY_TOLERANCE = 1e-5


def forest_to_onnx(pipeline: Pipeline) -> bytes:
    """The pipeline's scoring path (the forest: SMOTE acts only in fit) as an ONNX model."""
    from skl2onnx import to_onnx

    forest = pipeline.steps[-1][1]
    sample = np.zeros((1, forest.n_features_in_), dtype=np.float32)
    onnx_model = to_onnx(
        forest, sample, options={id(forest): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3}
    )
    return onnx_model.SerializeToString()


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
