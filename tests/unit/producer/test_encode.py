"""A CSV row becomes a validated Transaction message with a stable key and its event time as timestamp."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fraudstream.exceptions import DataValidationError
from fraudstream.schemas import FEATURES, SEED_EXAMPLE, Transaction
from producer.encode import encode_row

EVENT = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=timezone.utc)
ROW = [SEED_EXAMPLE[name] for name in FEATURES]


def test_a_row_is_keyed_by_file_and_row_and_carries_its_label_apart() -> None:
    encoded = encode_row("creditcard.csv", 123, ROW, 1, EVENT)
    assert encoded.key == b"creditcard.csv:123"
    assert encoded.timestamp_ms == 1714564800250
    transaction = Transaction.model_validate_json(encoded.value)
    assert transaction.transaction_id == "creditcard.csv:123"
    assert transaction.event_time == EVENT
    assert transaction.label == 1
    assert transaction.as_row() == ROW  # the features round-trip exactly, label not among them


def test_the_same_row_always_encodes_to_the_same_key() -> None:
    first = encode_row("creditcard.csv", 7, ROW, 0, EVENT)
    again = encode_row("creditcard.csv", 7, ROW, 0, datetime.now(timezone.utc))
    assert first.key == again.key


def test_a_row_the_schema_refuses_names_file_line_and_column() -> None:
    bad = list(ROW)
    bad[FEATURES.index("Amount")] = -3.0
    with pytest.raises(DataValidationError) as caught:
        encode_row("x.csv", 10, bad, 0, EVENT, source="data/x.csv")
    assert str(caught.value) == "data/x.csv, line 12, column 'Amount': Input should be greater than or equal to 0"
