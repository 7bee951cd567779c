from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fraudstream.exceptions import ModelLoadError
from fraudstream.model.engine import OnnxEngine
from fraudstream.model.serving import FraudModel


def _constant_classifier(fraud: float, n_features: int = 30) -> bytes:
    """An ONNX graph answering ``probabilities = [1 - fraud, fraud]`` for every row (MatMul by zeros + bias)."""
    weights = helper.make_tensor("W", TensorProto.FLOAT, [n_features, 2], [0.0] * (n_features * 2))
    bias = helper.make_tensor("B", TensorProto.FLOAT, [2], [1.0 - fraud, fraud])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Z"]), helper.make_node("Add", ["Z", "B"], ["probabilities"])],
        "constant",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_a_float32_sum_a_hair_above_one_stays_a_probability_and_is_still_flagged() -> None:
    engine = OnnxEngine(_constant_classifier(1.0000004))
    scores = engine.fraud_probability(np.zeros((3, 30), dtype=np.float32))
    assert scores.dtype == np.float64
    assert scores.tolist() == [1.0, 1.0, 1.0]
    model = FraudModel(name="m", version="1", threshold=1.0, engine=engine)
    assert model.flags(scores).all()


def test_shapes_are_checked_and_empty_batches_allowed() -> None:
    engine = OnnxEngine(_constant_classifier(0.25))
    assert engine.n_features == 30
    assert engine.fraud_probability(np.zeros((0, 30))).shape == (0,)
    np.testing.assert_allclose(engine.fraud_probability(np.ones((2, 30))), [0.25, 0.25])
    with pytest.raises(ValueError, match=r"expected shape \(n, 30\)"):
        engine.fraud_probability(np.zeros((2, 29)))


def test_bytes_that_are_not_a_model_are_a_load_error() -> None:
    with pytest.raises(ModelLoadError, match="ONNX model cannot be loaded"):
        OnnxEngine(b"not an onnx model")
