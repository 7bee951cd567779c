"""Hypothesis strategies for transaction messages around every rule of the kernel schema (no tests here).

A message is built as raw JSON text, pair by pair, so that it can hold what no JSON library writes: repeated
keys, escaped keys, NaN and 1e999 literals, lone surrogates, invalid UTF-8, trailing bytes. Most messages carry at
most one or two faults, so that both valid and invalid messages are frequent and each rule is hit on its own.
Used by the differential test of the two decoders (tests/unit/test_wire.py) and by the stream fuzz test
(tests/integration/test_stream_fuzz.py).
"""

from __future__ import annotations

import json
import string
from datetime import datetime, timedelta

from hypothesis import strategies as st

from fraudstream.rules import EARLIEST_TIME, FLOAT32_MAX, LATEST_TIME
from fraudstream.schemas import FEATURES, SEED_EXAMPLE

NUMBER_EDGES = [
    "0", "-0", "-0.0", "0.0", "1", "1E2", "1e-400", "5e-324", "-5e-324", "2.2250738585072014e-308",
    "3.4028234663852886e38", "-3.4028234663852886e38", "3.4028235e38", "3.40282347e38", "3.5e38", "-3.5e38",
    "1e308", "1.7976931348623157e308", "1e309", "1e999", "-1e999", "NaN", "Infinity", "-Infinity", "-NaN",
    "9007199254740993", "10000000000000000000", "-9223372036854775809", "123456789012345678901234567890",
    "1" + "0" * 400, "0.1000000000000000055511151231257827", "1.00000000000000011102230246251565404236316680908203125",
    "true", "false", "null", '"1.5"', '""', "[]", "{}", "[1.5]", "01", "1.", ".5", "+1", "0x10", "1e", "-",
]  # fmt: skip
NEGATIVE_EDGES = ["-1", "-1e-300", "-0.000001", "-3.4028234663852886e38"]
ID_EDGES = [
    "", " ", "   ", "\t", "a\nb", "a\rb", "\x00", "a\x00", "\x1b[31mred\x1b[0m", "\x7f", "\x85", "\u200b", "\u202e",
    "\u2028", "\u00a0", "\u3000", "a b", " a", "a ", "a" * 200, "a" * 201, "\u00e9" * 200, "\u00e9" * 201,
    "\U0001f600", "creditcard.csv:123", "x:1/2?3#4%5", '"quoted"', "back\\slash", "\ufeff", "\ue000", "\ufffd",
]  # fmt: skip
RAW_ID_EDGES = [
    '"\\ud800"', '"a\\udfff"', '"\\ud83d\\ude00"', '"\\u0000"', '"\\u0041"', '"\\/"', '"\\u00e9"', "1", "null",
    "true", "[]", '"\\x41"', '"\\u12"', "'a'",
]  # fmt: skip
TIME_EDGES = [
    "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "1970-01-01T00:59:59+01:00", "1970-01-01T01:00:00+01:00",
    "1969-12-31T10:00:00-14:00", "2099-12-31T23:59:59.999999Z", "2100-01-01T00:00:00Z", "2100-01-01T00:59:59+01:00",
    "2099-12-31T23:59:59-00:01", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999Z", "2024-05-01T12:00:00", "2024-05-01", "12:00:00Z", "2024-05-01T12:00Z",
    "2024-05-01T12:00:00.Z", "2024-05-01T24:00:00Z", "2024-05-01T12:00:60Z", "2024-02-30T12:00:00Z",
    "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+23:59",
    "2024-05-01T12:00:00+0100", "2024-05-01T12:00:00+01", "2024-05-01t12:00:00z", "2024-05-01 12:00:00Z",
    "2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00,5Z", "+2024-05-01T12:00:00Z", "20240501T120000Z",
    "2024-05-01T12:00:00 Z", " 2024-05-01T12:00:00Z", "2024-5-1T12:00:00Z", "yesterday", "",
]  # fmt: skip
RAW_TIME_EDGES = ["1714564800", "1714564800.5", "0", "-1", "null", "true", "[]", '"\\u0032024-05-01T12:00:00Z"']
LABEL_EDGES = ["0", "1", "null", "true", "false", "1.0", "0.0", "2", "-1", '"1"', "1e0", "[]", "-0", "10"]
WHOLE_MESSAGE_EDGES = [
    b"", b" ", b"{", b"}", b"{}", b"[]", b"[{}]", b"null", b"42", b'"text"', b"{not json", b"\xff\xfe\x00",
    b"\xef\xbb\xbf{}", b"{\"Time\": 0.0", b"{\"Time\" 0.0}", b"{,}", b"{\"a\":1,}",
]  # fmt: skip
OPTIONAL = ("label",)


def known_malformed() -> list[bytes | None]:
    """The malformed messages the stream and decode tests send (tests/integration/test_stream_scoring.py,
    tests/unit/scorer/test_decode.py), each a fault on its own, and the valid message they start from."""
    good = {**SEED_EXAMPLE, "transaction_id": "bad:0", "event_time": "2024-05-01T12:00:00Z", "label": 0}
    raw = json.dumps(good, separators=(",", ":")).encode()

    def changed(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    def without(name: str) -> bytes:
        return json.dumps({key: value for key, value in good.items() if key != name}).encode()

    return [
        raw, None, b"", b"{this is not json", b"{not json", b"[1, 2, 3]", b"42", b'"text"', b"null", b"\xff\xfe\x00",
        raw + b"}", raw + b"trailing", without("V7"), without("transaction_id"), without("label"),
        changed(merchant="ACME"), changed(foo=1), changed(V3="2.5"), changed(V3=True), changed(V9=True),
        changed(V10=None),
        raw.replace(b'"V3":2.536347', b'"V3":NaN'), raw.replace(b'"V3":2.536347', b'"V3":Infinity'),
        raw.replace(b'"V3":2.536347', b'"V3":1e999'), changed(Amount=-12.5), changed(label=2), changed(label=True),
        changed(label=1.0), changed(transaction_id=""), changed(transaction_id="   "), changed(transaction_id="bad\n0"),
        changed(transaction_id="a\x00b"), changed(transaction_id="\x1b[31mred"), changed(event_time="not a time"),
        changed(event_time=1714564800), changed(event_time="2024-05-01T12:00:00"),
        changed(event_time="0001-01-01T00:00:00+14:00"), changed(event_time="2100-01-01T00:00:00Z"),
        raw[:-1] + b',"V3":1.0}', raw[:-1] + b',"transaction_id":"bad:1"}', raw[:-1] + b',"\\u0056\\u0033":1.0}',
    ]  # fmt: skip


def _json_string(value: str, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


def _key_text(name: str, escaped: int) -> str:
    if escaped == 1:  # the whole key as \\u escapes: the same key to every parser
        return '"' + "".join(f"\\u{ord(c):04x}" for c in name) + '"'
    if escaped == 2:  # the last character escaped
        return '"' + name[:-1] + f"\\u{ord(name[-1]):04x}" + '"'
    return json.dumps(name)


@st.composite
def number_text(draw: st.DrawFn, non_negative: bool = False) -> str:
    choice = draw(st.integers(0, 9))
    if choice <= 5:
        low = 0.0 if non_negative else -FLOAT32_MAX
        return repr(draw(st.floats(min_value=low, max_value=FLOAT32_MAX, allow_nan=False, allow_infinity=False)))
    if choice == 6:
        return str(draw(st.integers(-(2**70), 2**70)))
    if choice == 7:
        return draw(st.sampled_from(NEGATIVE_EDGES if non_negative else NUMBER_EDGES[:20]))
    return draw(st.sampled_from(NUMBER_EDGES))


@st.composite
def id_text(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 10))
    if choice == 10:  # around the length limit, counted in characters (not bytes)
        return _json_string(draw(st.sampled_from("a\u00e9\U0001f600 ")) * draw(st.integers(198, 202)), False)
    if choice <= 3:
        return json.dumps(f"creditcard.csv:{draw(st.integers(0, 10**7))}")
    if choice <= 5:
        text = draw(st.text(min_size=0, max_size=210))
        return _json_string(text, draw(st.booleans()))
    if choice <= 7:
        return _json_string(draw(st.sampled_from(ID_EDGES)), draw(st.booleans()))
    if choice == 8:
        alphabet = st.characters(codec="utf-8") | st.sampled_from(string.whitespace)
        return _json_string(draw(st.text(alphabet, min_size=1, max_size=12)), draw(st.booleans()))
    return draw(st.sampled_from(RAW_ID_EDGES))


@st.composite
def time_text(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 9))
    if choice <= 5:
        near = draw(st.sampled_from([None, EARLIEST_TIME, LATEST_TIME]))
        if near is None:
            moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
        else:
            seconds = draw(st.integers(-2 * 86400, 2 * 86400))
            moment = near.replace(tzinfo=None) + timedelta(seconds=seconds, microseconds=draw(st.integers(0, 999999)))
        minutes = draw(st.sampled_from([0, 0, 60, -60, 14 * 60, -14 * 60, 330, -1, 1439, -1439]))
        sign = "-" if minutes < 0 else "+"
        zone = draw(
            st.sampled_from(["Z", f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}", "z", "", "+00:00"])
        )
        micros = moment.microsecond
        fraction = draw(st.sampled_from(["", f".{micros:06d}", ".5", ".123456789", f".{micros}"]))
        separator = draw(st.sampled_from(["T", "T", "t", " "]))
        return json.dumps(f"{moment:%Y-%m-%d}{separator}{moment:%H:%M:%S}{fraction}{zone}")
    if choice <= 7:
        return json.dumps(draw(st.sampled_from(TIME_EDGES)))
    if choice == 8:
        return draw(st.sampled_from(RAW_TIME_EDGES))
    return json.dumps(draw(st.text(max_size=30)))


@st.composite
def message(draw: st.DrawFn, features: st.SearchStrategy[dict[str, float]] | None = None) -> bytes:
    """One message value: a transaction with zero, one or a few faults, or a whole-message oddity.

    ``features`` draws the valid features it starts from (default: the seed example).
    """
    if draw(st.integers(0, 29)) == 29:  # (hypothesis favours small numbers: 0 is the plain case everywhere)
        return draw(st.sampled_from(WHOLE_MESSAGE_EDGES))
    base = draw(features) if features is not None else SEED_EXAMPLE
    values: dict[str, str] = {name: repr(float(base[name])) for name in FEATURES}
    values["transaction_id"] = json.dumps(f"creditcard.csv:{draw(st.integers(0, 10**6))}")
    values["event_time"] = json.dumps("2024-05-01T12:00:00Z")
    values["label"] = draw(st.sampled_from(["0", "1", "null"]))
    for name in draw(st.lists(st.sampled_from(FEATURES), max_size=4)):
        values[name] = draw(number_text(non_negative=name in ("Time", "Amount")))
    faults = draw(st.integers(0, 3))
    if faults in (1, 3):
        values["transaction_id"] = draw(id_text())
    if faults in (2, 3):
        values["event_time"] = draw(time_text())
    if draw(st.integers(0, 3)) == 3:
        values["label"] = draw(st.sampled_from(LABEL_EDGES))
    pairs = [(json.dumps(name), text) for name, text in values.items()]
    structure = draw(st.integers(0, 13))
    if structure == 6:  # a field left out
        pairs.pop(draw(st.integers(0, len(pairs) - 1)))
    elif structure == 7:  # an unknown field
        unknown = draw(st.sampled_from(["merchant", "v3", "V29", "label ", "", "Label", "transaction_ID"]))
        pairs.insert(draw(st.integers(0, len(pairs))), (json.dumps(unknown), draw(number_text())))
    elif structure in (8, 9):  # a repeated key, perhaps escaped, with the same or another value
        name, text = pairs[draw(st.integers(0, len(pairs) - 1))]
        key = _key_text(json.loads(name), draw(st.integers(0, 2)))
        other = draw(st.sampled_from([text, "1.5", '"x"', "null", '{"a":"b"}', "[]"]))
        pairs.insert(draw(st.integers(0, len(pairs))), (key, other))
    elif structure in (10, 11):  # label absent
        pairs = [pair for pair in pairs if pair[0] != '"label"']
    elif structure == 12:  # keys escaped, no repetition
        pairs = [(_key_text(json.loads(k), 1) if draw(st.booleans()) else k, v) for k, v in pairs]
    if draw(st.booleans()):
        pairs = draw(st.permutations(pairs))
    space = draw(st.sampled_from(["", " ", "\n", "\t", "  "]))
    body = "{" + space + ("," + space).join(f"{k}{space}:{space}{v}" for k, v in pairs) + space + "}"
    raw = body.encode("utf-8", "surrogatepass")
    tail = draw(st.integers(0, 39))
    if tail == 37:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif tail == 38:
        raw += draw(st.sampled_from([b" ", b"\n", b"}", b"x", b"\x00", b",", b" {}"]))
    elif tail == 39:
        raw = draw(st.sampled_from([b"\xef\xbb\xbf", b" ", b"\xff"])) + raw
    return raw
