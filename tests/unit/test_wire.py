"""The differential test of the two decoders: the stream's wire decoder (msgspec, derived from the kernel's
pydantic model) and the pydantic model itself accept exactly the same messages, give the same values, and name
the same field when they refuse one. The corpus (tests/message_corpus.py) is generated around every rule."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime, timezone
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from message_corpus import SEED_EXAMPLE, known_malformed, message
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fraudstream.rules import EARLIEST_TIME, LATEST_TIME, PRINTABLE_ID, TIME_IN_RANGE
from fraudstream.schemas import FEATURES, Transaction, parse_json
from fraudstream.wire import WireDecoder
from scorer.decode import decode, decode_batch

WIRE = WireDecoder(Transaction)
EXAMPLES = 2500
seen: Counter[str] = Counter()


def _pydantic(raw: bytes) -> Transaction | ValidationError:
    try:
        return parse_json(Transaction, raw)
    except ValidationError as exc:
        return exc


def _same_float(a: float, b: float) -> bool:
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True)
@given(raw=message())
def test_both_decoders_accept_the_same_messages_with_the_same_values(raw: bytes) -> None:
    _same_verdict(raw)


@pytest.mark.parametrize("raw", known_malformed())
def test_both_decoders_agree_on_the_malformed_kinds_the_stream_tests_send(raw: bytes | None) -> None:
    if raw is None:  # a tombstone: no JSON at all
        assert WIRE.decode_many([raw]).rows == []
        assert decode(raw).kind == "empty"  # type: ignore[union-attr]
        return
    _same_verdict(raw)


def _same_verdict(raw: bytes) -> None:
    """Both decoders accept ``raw`` with the same values, or both refuse it naming the same field."""
    reference = _pydantic(raw)
    wired = WIRE.decode_many([raw])
    if isinstance(reference, Transaction):
        seen["accepted"] += 1
        assert wired.rows == [0], (raw, wired.refused)
        (struct,) = wired.accepted
        for name in FEATURES:
            assert _same_float(getattr(struct, name), getattr(reference, name)), (name, raw)
        assert struct.transaction_id == reference.transaction_id
        assert struct.event_time == reference.event_time
        assert struct.event_time.utcoffset() == reference.event_time.utcoffset()
        assert struct.label == reference.label
        assert type(struct.label) is type(reference.label)
        return
    seen["refused"] += 1
    assert wired.rows == [], (raw, reference)
    (refusal,) = wired.refused
    errors = reference.errors()
    fields = {str(error["loc"][0]) for error in errors if error["loc"]}
    seen[errors[0]["type"]] += 1
    if all(error["loc"] for error in errors) and refusal.field is not None:
        assert refusal.field in fields, (raw, refusal, errors)
        assert repr(refusal.field) in decode(raw).reason or len(fields) > 1  # type: ignore[union-attr]


def test_the_corpus_hits_every_rule() -> None:
    """The corpus exercises each rule, not just valid input (counted by the differential test, run first)."""
    if not seen:  # this test selected alone
        test_both_decoders_accept_the_same_messages_with_the_same_values()
    assert seen["accepted"] >= EXAMPLES // 5, seen
    assert seen["refused"] >= EXAMPLES // 5, seen
    for kind in (
        "duplicate_key",
        "extra_forbidden",
        "missing",
        "float_type",
        "finite_number",
        "greater_than_equal",
        "less_than_equal",
        "string_not_printable",
        "string_blank",
        "string_too_long",
        "timestamp_format",
        "timestamp_range",
        "timestamp_timezone",
        "int_type",
        "json_invalid",
    ):
        assert seen[kind] > 0, (kind, seen)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(message(), min_size=1, max_size=40))
def test_a_batch_decodes_as_its_messages_one_by_one(raws: list[bytes]) -> None:
    batch = decode_batch(raws)
    accepted = [index for index, raw in enumerate(raws) if isinstance(_pydantic(raw), Transaction)]
    assert batch.rows == accepted
    assert [index for index, _ in batch.rejections] == [i for i in range(len(raws)) if i not in accepted]
    for index, rejection in batch.rejections:
        assert rejection == decode(raws[index])  # the DLQ reason is the schema's own
    assert batch.matrix.shape == (len(accepted), len(FEATURES))


def _valid(index: int, **changes: object) -> bytes:
    good = {**SEED_EXAMPLE, "transaction_id": f"ok:{index}", "event_time": "2024-05-01T12:00:00Z", "label": 0}
    return json.dumps({**good, **changes}, separators=(",", ":")).encode()


def _decoded_alone(raws: list[bytes]) -> list[tuple[int, tuple[object, ...]]]:
    """(index, every field's value) of each message the wire decoder accepts on its own."""
    names = list(Transaction.model_fields)
    out = []
    for index, raw in enumerate(raws):
        alone = WIRE.decode_many([raw])
        if alone.rows:
            out.append((index, tuple(getattr(alone.accepted[0], name) for name in names)))
    return out


def _decoded_together(raws: list[bytes]) -> list[tuple[int, tuple[object, ...]]]:
    names = list(Transaction.model_fields)
    batch = WIRE.decode_many(raws)
    pairs = zip(batch.rows, batch.accepted, strict=True)
    return [(row, tuple(getattr(struct, name) for name in names)) for row, struct in pairs]


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(message(), min_size=8, max_size=30), valid=st.integers(min_value=8, max_value=30))
def test_a_batch_of_valid_messages_in_one_call_is_what_each_is_alone(raws: list[bytes], valid: int) -> None:
    """The scorer's batches are mostly valid: then the whole batch is one msgspec call (a JSON array of its
    messages). It must give exactly what each message gives alone."""
    accepted = [raw for raw in raws if WIRE.decode_many([raw]).rows]
    plain = [raw for raw in accepted if b"\\" not in raw and raw[:1] == b"{" and raw[-1:] == b"}"]
    batch = plain + [_valid(index) for index in range(valid)]
    assert WIRE._decode_joined(batch) is not None  # the one-call path is the one under test
    assert _decoded_together(batch) == _decoded_alone(batch)
    mixed = accepted + batch  # escapes, white space: one by one, with the same result
    assert _decoded_together(mixed) == _decoded_alone(mixed)


def test_messages_that_are_objects_only_when_joined_are_refused_as_they_are_alone() -> None:
    """Joined with commas, ``{m1},{...,"transaction_id":"ab}`` and ``{cd",...}`` make two valid objects; alone,
    neither is one. Each starts with { and ends with }, so only the quote count tells: the batch is decoded
    message by message, and both are refused."""
    spanning = _valid(1, transaction_id="ab},{cd")
    assert WIRE.decode_many([spanning]).rows == [0]
    cut = spanning.index(b"},{cd") + 1
    first, second = _valid(0) + b"," + spanning[:cut], spanning[cut + 1 :]
    assert (first[:1], first[-1:], second[:1], second[-1:]) == (b"{", b"}", b"{", b"}")
    assert msgspec.json.decode(b"[" + first + b"," + second + b"]")  # together they parse
    batch = [_valid(index) for index in range(2, 10)] + [first, second]
    assert WIRE._decode_joined(batch) is None
    wired = WIRE.decode_many(batch)
    assert wired.rows == list(range(8))
    assert [refusal.index for refusal in wired.refused] == [8, 9]
    assert _decoded_together(batch) == _decoded_alone(batch)


def test_a_repeated_key_is_refused_in_a_batch_decoded_in_one_call() -> None:
    batch = [_valid(index) for index in range(10)]
    batch[3] = batch[3][:-1] + b',"V3":1.0}'
    assert WIRE._decode_joined(batch) is not None
    wired = WIRE.decode_many(batch)
    assert [(refusal.index, refusal.field) for refusal in wired.refused] == [(3, "V3")]
    assert _decoded_together(batch) == _decoded_alone(batch)


def test_a_batch_with_one_bad_message_falls_back_to_one_by_one() -> None:
    batch = [_valid(index) for index in range(10)]
    batch[4] = _valid(4, V3="2.5")
    batch[7] = b" " + _valid(7)  # valid alone, but not the shape the one-call path takes
    wired = WIRE.decode_many(batch)
    assert wired.rows == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert _decoded_together(batch) == _decoded_alone(batch)


@settings(max_examples=500, deadline=None, database=None)
@given(values=st.lists(st.text(max_size=8) | st.sampled_from([" ", "\x00", "\u2028", "a\u200bb", "\ud800"])))
def test_the_batch_form_of_the_id_check_agrees_with_the_check(values: list[str]) -> None:
    assert PRINTABLE_ID.all_pass(values) == all(_passes(PRINTABLE_ID, value) for value in values)


zones = st.sampled_from([None, timezone.utc, *(timezone(__import__("datetime").timedelta(hours=h)) for h in (-14, 14))])


@settings(max_examples=500, deadline=None, database=None)
@given(values=st.lists(st.datetimes(timezones=zones)))
def test_the_batch_form_of_the_time_check_agrees_with_the_check(values: list[datetime]) -> None:
    assert TIME_IN_RANGE.all_pass(values) == all(_passes(TIME_IN_RANGE, value) for value in values)


def _passes(check: Any, value: Any) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def test_the_time_bounds_are_instants() -> None:
    assert EARLIEST_TIME.utcoffset() == LATEST_TIME.utcoffset() == __import__("datetime").timedelta(0)


def test_a_constraint_without_a_wire_form_stops_the_translation() -> None:
    forbid = ConfigDict(extra="forbid")

    class Lax(BaseModel):
        model_config = forbid
        score: float = Field(ge=0)

    class Pattern(BaseModel):
        model_config = forbid
        code: Annotated[str, Field(pattern="^[A-Z]+$")]

    class Open(BaseModel):
        code: str

    with pytest.raises(TypeError, match="lax float"):
        WireDecoder(Lax)
    with pytest.raises(TypeError, match="no wire form for the constraint"):
        WireDecoder(Pattern)
    with pytest.raises(TypeError, match="forbids unknown fields"):
        WireDecoder(Open)
