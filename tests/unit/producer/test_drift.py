"""The replay's drift option: the documented spec, applied to the features only, errors that name the term."""

from __future__ import annotations

import numpy as np
import pytest

from fraudstream.schemas import FEATURES
from producer.drift import DEFAULT_DRIFT, Drift
from producer.exceptions import ReplayError


def test_scales_and_shifts_only_the_named_features_and_keeps_amount_non_negative() -> None:
    matrix = np.arange(2 * len(FEATURES), dtype=np.float64).reshape(2, len(FEATURES))
    drift = Drift.parse("Amount*3, V1+2,V2-1.5,Time-1000")
    out = drift.apply(matrix)
    amount, v1, v2 = FEATURES.index("Amount"), FEATURES.index("V1"), FEATURES.index("V2")
    assert out[:, amount].tolist() == (matrix[:, amount] * 3).tolist()
    assert out[:, v1].tolist() == (matrix[:, v1] + 2).tolist()
    assert out[:, v2].tolist() == (matrix[:, v2] - 1.5).tolist()
    assert out[:, 0].tolist() == [0.0, 0.0]  # Time stays non-negative
    untouched = [i for i, name in enumerate(FEATURES) if name not in ("Amount", "V1", "V2", "Time")]
    assert np.array_equal(out[:, untouched], matrix[:, untouched])
    assert drift.features == ["Time", "V1", "V2", "Amount"]


def test_default_is_the_documented_preset() -> None:
    assert Drift.parse("default").spec == DEFAULT_DRIFT
    assert Drift.parse("default").features == ["V13", "V15", "Amount"]


@pytest.mark.parametrize(("spec", "names"), [("V99+1", "V99"), ("Amount/2", "Amount/2"), ("", "at least one")])
def test_a_bad_spec_names_the_term(spec: str, names: str) -> None:
    with pytest.raises(ReplayError, match=names):
        Drift.parse(spec)
