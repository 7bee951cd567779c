from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from fraudstream.schemas import (
    CSV_COLUMNS,
    FEATURES,
    SEED_EXAMPLE,
    Alert,
    Transaction,
    TransactionFeatures,
    feature_matrix,
)


def _transaction(index: int) -> Transaction:
    features = {name: float(index * 100 + position) for position, name in enumerate(FEATURES)}
    return Transaction(**features, transaction_id=f"f.csv:{index}", event_time=datetime.now(timezone.utc), label=1)


def test_columns_are_the_ulb_file() -> None:
    assert ("Time", *(f"V{i}" for i in range(1, 29)), "Amount") == FEATURES
    assert (*FEATURES, "Class") == CSV_COLUMNS


def test_features_are_declared_first_in_model_order() -> None:
    # The declaration order is the model's column order, and the documented order of the API's schema.
    assert tuple(TransactionFeatures.model_fields)[: len(FEATURES)] == FEATURES
    assert tuple(Transaction.model_fields)[: len(FEATURES)] == FEATURES


def test_feature_matrix_holds_the_features_in_order_and_never_the_label() -> None:
    batch = [_transaction(i) for i in range(3)]
    matrix = feature_matrix(batch)
    assert matrix.dtype == np.float32
    assert matrix.shape == (3, 30)
    expected = np.array([[getattr(t, name) for name in FEATURES] for t in batch], dtype=np.float32)
    np.testing.assert_array_equal(matrix, expected)
    assert feature_matrix([]).shape == (0, 30)


def test_seed_example_is_a_valid_transaction() -> None:
    assert TransactionFeatures(**SEED_EXAMPLE).Amount == 149.62


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"V3": "2.5"}, "V3"),
        ({"V3": True}, "V3"),
        ({"V3": float("nan")}, "V3"),
        ({"V3": float("inf")}, "V3"),
        ({"Amount": -1.0}, "Amount"),
        ({"Time": -5.0}, "Time"),
        ({"extra": 1.0}, "extra"),
        ({"V5": 1e300}, "V5"),  # finite, but infinity once the model reads it as float32
    ],
)
def test_bad_transactions_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TransactionFeatures(**{**SEED_EXAMPLE, **change})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_missing_field_is_named() -> None:
    values = dict(SEED_EXAMPLE)
    del values["V17"]
    with pytest.raises(ValidationError) as caught:
        TransactionFeatures(**values)
    assert caught.value.errors()[0]["loc"] == ("V17",)


def test_event_time_needs_a_time_zone() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        Transaction(**SEED_EXAMPLE, transaction_id="x:1", event_time=datetime(2026, 1, 1))


def test_alert_score_is_a_probability() -> None:
    now = datetime.now(timezone.utc)
    common = {
        "transaction_id": "x:1",
        "threshold": 0.5,
        "model_name": "m",
        "model_version": "1",
        "event_time": now,
        "scored_at": now,
        "partition": 0,
        "offset": 0,
        "amount": 1.0,
    }
    assert Alert(score=0.9, **common).score == 0.9
    with pytest.raises(ValidationError):
        Alert(score=1.5, **common)
