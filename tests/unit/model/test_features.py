from __future__ import annotations

import numpy as np
import pytest

from fraudstream.model.features import SECONDS_PER_DAY, model_input
from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES


class Echo:
    """An engine answering the Time column it was given, so a test sees what the forest would read."""

    n_features = len(FEATURES)

    def fraud_probability(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features[:, 0], dtype=np.float64)


def test_encodings_change_time_only_and_never_the_callers_matrix() -> None:
    matrix = np.ones((3, len(FEATURES)), dtype=np.float32)
    matrix[:, 0] = [10.0, SECONDS_PER_DAY + 10.0, 2 * SECONDS_PER_DAY + 0.5]
    before = matrix.copy()
    assert model_input(matrix, "raw") is matrix
    np.testing.assert_array_equal(model_input(matrix, "time_of_day")[:, 0], [10.0, 10.0, 0.5])
    np.testing.assert_array_equal(model_input(matrix, "none")[:, 0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(model_input(matrix, "time_of_day")[:, 1:], before[:, 1:])
    np.testing.assert_array_equal(matrix, before)
    with pytest.raises(ValueError, match="unknown Time encoding"):
        model_input(matrix, "hour")  # type: ignore[arg-type]


@pytest.mark.parametrize(("encoding", "expected"), [("raw", 86_410.0), ("time_of_day", 10.0), ("none", 0.0)])
def test_the_serving_model_applies_its_encoding(encoding: str, expected: float) -> None:
    model = FraudModel("m", "1", 0.5, Echo(), time_encoding=encoding)  # type: ignore[arg-type]
    row = np.zeros((1, len(FEATURES)), dtype=np.float32)
    row[0, 0] = 86_410.0
    assert model.score(row).tolist() == [expected]
