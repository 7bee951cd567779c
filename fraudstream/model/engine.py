"""The scoring engine: the registered forest compiled to ONNX and run by ONNX Runtime on one thread.

Why not the sklearn object itself: sklearn's RandomForest pays Python and thread start-up on every call, which
dominates at the sizes we score (one row for /predict, a few thousand for a scorer batch); ONNX Runtime runs the
same trees in one C++ call, orders of magnitude faster for one row and several times faster in batches, with
the same fraud probabilities (the figures: benchmarks/README.md, "Figures behind the code"). The trainer checks
that parity for every model it registers and records the largest difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fraudstream.exceptions import ModelLoadError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

PROBABILITIES_OUTPUT = "probabilities"
FRAUD_CLASS_INDEX = 1


def forest_to_onnx(pipeline: Pipeline) -> bytes:
    """The pipeline's scoring path (its last step, the forest: SMOTE acts only in fit) as the ONNX model this
    engine reads: no ZipMap, so the fraud probabilities come out as the :data:`PROBABILITIES_OUTPUT` tensor.

    It lives beside :class:`OnnxEngine` because the two are one contract (the graph's outputs, its opsets); the
    trainer compiles every model it registers with it, and the tests build their small forests with it too.
    """
    from skl2onnx import to_onnx

    forest = pipeline.steps[-1][1]
    sample = np.zeros((1, forest.n_features_in_), dtype=np.float32)
    onnx_model = to_onnx(
        forest, sample, options={id(forest): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3}
    )
    return onnx_model.SerializeToString()


class OnnxEngine:
    """Fraud probabilities from an ONNX classifier whose second output column is the fraud class."""

    def __init__(self, onnx_bytes: bytes) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread each: the callers (scorer, API) already batch or serve one row at a time, and thread
        # pools only add latency at these sizes on a 2-core machine.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"the ONNX model cannot be loaded: {exc}") from exc
        inputs = self._session.get_inputs()
        outputs = [output.name for output in self._session.get_outputs()]
        if len(inputs) != 1 or PROBABILITIES_OUTPUT not in outputs:
            raise ModelLoadError(f"unexpected ONNX signature: inputs {inputs}, outputs {outputs}")
        self._input = inputs[0].name
        self.n_features = int(inputs[0].shape[1])

    @classmethod
    def from_path(cls, path: Path) -> OnnxEngine:
        try:
            return cls(path.read_bytes())
        except OSError as exc:
            raise ModelLoadError(f"cannot read {path}: {exc}") from exc

    def fraud_probability(self, features: np.ndarray) -> np.ndarray:
        """Probabilities of fraud for an (n, n_features) matrix; float64, shape (n,)."""
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected shape (n, {self.n_features}), got {matrix.shape}")
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        (probabilities,) = self._session.run([PROBABILITIES_OUTPUT], {self._input: matrix})
        # ONNX Runtime sums the trees' votes in float32, which can land a hair above 1: keep them probabilities.
        # (A threshold is at most 1, so clipping never changes a decision.)
        return np.clip(probabilities[:, FRAUD_CLASS_INDEX].astype(np.float64), 0.0, 1.0)
