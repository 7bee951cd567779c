"""Every kind of malformed message gets a one-line reason naming the field at fault."""

from __future__ import annotations

import orjson
import pytest

from fraudstream.schemas import SEED_EXAMPLE, Transaction, feature_matrix
from scorer.decode import MAX_REASON_CHARS, Rejection, decode, decode_batch

VALID = {**SEED_EXAMPLE, "transaction_id": "creditcard.csv:0", "event_time": "2024-05-01T12:00:00Z", "label": 0}
RAW = orjson.dumps(VALID)


def with_(**changes: object) -> bytes:
    return orjson.dumps({**VALID, **changes})


def without(name: str) -> bytes:
    return orjson.dumps({key: value for key, value in VALID.items() if key != name})


def test_a_valid_message_decodes_to_the_kernel_transaction() -> None:
    decoded = decode(RAW)
    assert isinstance(decoded, Transaction)
    assert decoded.transaction_id == "creditcard.csv:0"
    assert SEED_EXAMPLE["V3"] == decoded.V3
    assert decoded.label == 0


def test_a_message_without_label_is_valid() -> None:
    decoded = decode(without("label"))
    assert isinstance(decoded, Transaction)
    assert decoded.label is None


@pytest.mark.parametrize(
    ("raw", "kind", "reason"),
    [
        (None, "empty", "empty message: expected a JSON transaction"),
        (b"", "empty", "empty message: expected a JSON transaction"),
        (b"{not json", "invalid_json", "invalid JSON: key must be a string at line 1 column 2"),
        (RAW + b"}", "invalid_json", "invalid JSON: trailing characters"),
        (b"\xff\xfe\x00", "invalid_json", "invalid JSON:"),
        (b"[1, 2]", "not_an_object", "not a JSON object: got an array"),
        (b"42", "not_an_object", "not a JSON object: got a number"),
        (b'"text"', "not_an_object", "not a JSON object: got a string"),
        (b"null", "not_an_object", "not a JSON object: got null"),
        (without("V3"), "missing_field", "missing field 'V3'"),
        (without("transaction_id"), "missing_field", "missing field 'transaction_id'"),
        (with_(foo=1), "unknown_field", "unknown field 'foo'"),
        (with_(V3="1.5"), "wrong_type", "field 'V3': Input should be a valid number"),
        (with_(V3=True), "wrong_type", "field 'V3': Input should be a valid number"),
        (with_(V3=None), "wrong_type", "field 'V3': Input should be a valid number"),
        (RAW.replace(b'"V3":2.536347', b'"V3":NaN'), "non_finite", "field 'V3': Input should be a finite number"),
        (RAW.replace(b'"V3":2.536347', b'"V3":Infinity'), "non_finite", "field 'V3': Input should be a finite"),
        (RAW.replace(b'"V3":2.536347', b'"V3":1e999'), "non_finite", "field 'V3': Input should be a finite number"),
        (with_(Amount=-5.0), "out_of_range", "field 'Amount': Input should be greater than or equal to 0"),
        (with_(label=2), "out_of_range", "field 'label': Input should be less than or equal to 1"),
        (with_(label=True), "wrong_type", "field 'label': Input should be a valid integer"),
        (with_(label=1.0), "wrong_type", "field 'label': Input should be a valid integer"),
        (with_(transaction_id=""), "invalid_value", "field 'transaction_id': String should have at least 1"),
        (with_(transaction_id="   "), "invalid_value", "field 'transaction_id': String should not be blank"),
        (with_(transaction_id="a\nb"), "invalid_value", "field 'transaction_id': String should hold printable"),
        (with_(transaction_id="a\x00b"), "invalid_value", "field 'transaction_id': String should hold printable"),
        (with_(transaction_id="\x1b[31mred"), "invalid_value", "field 'transaction_id': String should hold printable"),
        (with_(event_time="yesterday"), "invalid_timestamp", "field 'event_time': Input should be an RFC 3339 date"),
        (with_(event_time=1714564800), "invalid_timestamp", "field 'event_time': Input should be an RFC 3339 date"),
        (with_(event_time="2024-05-01T12:00:00"), "invalid_timestamp", "field 'event_time': Input should have a time"),
        (with_(event_time="0001-01-01T00:00:00+14:00"), "invalid_timestamp", "field 'event_time': Input should be"),
        (with_(event_time="2100-01-01T00:00:00Z"), "invalid_timestamp", "field 'event_time': Input should be from"),
        (RAW[:-1] + b',"V3":1.0}', "duplicate_key", "duplicate key 'V3'"),
        (RAW[:-1] + b',"transaction_id":"other"}', "duplicate_key", "duplicate key 'transaction_id'"),
        (RAW[:-1] + b',"\\u0056\\u0033":1.0}', "duplicate_key", "duplicate key 'V3'"),  # the same key, escaped
    ],
)
def test_each_malformed_kind_gets_a_kind_and_a_reason(raw: bytes | None, kind: str, reason: str) -> None:
    decoded = decode(raw)
    assert isinstance(decoded, Rejection)
    assert decoded.kind == kind
    assert decoded.reason.startswith(reason), decoded.reason
    assert "\n" not in decoded.reason


def test_event_times_at_the_edges_of_the_range_are_accepted() -> None:
    for moment in ("1970-01-01T00:00:00Z", "2099-12-31T23:59:59.999999Z", "1970-01-01T01:00:00+01:00"):
        assert isinstance(decode(with_(event_time=moment)), Transaction), moment
    assert isinstance(decode(with_(event_time="1970-01-01T00:59:59+01:00")), Rejection)  # 23:59:59 UTC the day before


def test_decode_batch_scores_the_valid_and_explains_the_refused_in_the_schema_s_words() -> None:
    values = [RAW, with_(V3="x"), None, RAW[:-1] + b',"label":1}', with_(transaction_id="b", label=None)]

    batch = decode_batch(values)

    assert batch.rows == [0, 4]
    assert [t.transaction_id for t in batch.transactions] == ["creditcard.csv:0", "b"]
    assert batch.transactions[1].label is None
    assert batch.matrix.shape == (2, 30)
    assert batch.matrix[0].tolist() == feature_matrix([decode(RAW)])[0].tolist()  # type: ignore[list-item]
    assert [(index, rejection) for index, rejection in batch.rejections] == [
        (index, decode(values[index])) for index in (1, 2, 3)
    ]


def test_several_problems_are_named_together_on_one_bounded_line() -> None:
    decoded = decode(orjson.dumps({"transaction_id": "x"}))
    assert isinstance(decoded, Rejection)
    assert decoded.kind == "missing_field"
    assert decoded.reason.startswith("missing field 'Time'; missing field 'V1'; missing field 'V2'; and ")
    assert decoded.reason.endswith("more")
    assert len(decoded.reason) <= MAX_REASON_CHARS
