"""The stream's fast decoder, derived from a kernel pydantic model: the same rules at a third of the cost.

``WireDecoder(Transaction)`` reads the model's fields and their constraints and builds a ``msgspec.Struct``
(unknown fields forbidden, not tracked by the garbage collector, bounds and lengths as ``msgspec.Meta``). What
msgspec cannot check natively is done after decoding, over the whole batch, by the same functions the pydantic
model runs (``fraudstream.rules.Check``), and repeated keys by the same quote count (``fraudstream.json_keys``).
A constraint the translation does not understand stops the import, so a rule can never silently be lost on one
path. A differential test (``tests/unit/test_wire.py``) holds that both decoders accept the same messages and
give the same values.

The decoder only says *which* messages it refuses (and msgspec's own words, for the tests); the reason a dead
letter carries is written by the pydantic model, so the DLQ and the API describe a problem in one vocabulary.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import msgspec
import numpy as np
from pydantic import AfterValidator, AllowInfNan, BaseModel, BeforeValidator, Strict
from pydantic.fields import FieldInfo

from fraudstream.json_keys import repeated_key
from fraudstream.rules import Check, parse_timestamp

_BOUNDS = {
    annotated_types.Ge: "ge",
    annotated_types.Le: "le",
    annotated_types.Gt: "gt",
    annotated_types.Lt: "lt",
    annotated_types.MinLen: "min_length",
    annotated_types.MaxLen: "max_length",
}
_PLAIN = (float, int, str, bool, datetime, type(None))
_QUOTE = ord('"')
_OPEN, _CLOSE = ord("{"), ord("}")
_CHUNK = 100
_JOINED_MIN = 8
"""Batches this small are decoded message by message: one joined call saves nothing there."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message the wire decoder refused: its index in the batch, and msgspec's (or the check's) words."""

    index: int
    message: str
    field: str | None = None


@dataclass(slots=True)
class WireBatch:
    """What a batch decoded to: the accepted structs and their indexes in the batch, and the refusals."""

    accepted: list[Any] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


class WireDecoder:
    """Decode JSON messages of ``model`` with msgspec, enforcing every rule of the model."""

    def __init__(self, model: type[BaseModel], *, gc: bool = False) -> None:
        """``gc=False`` (the default) keeps the structs out of the garbage collector's lists: a batch of thousands
        of live structs then costs no collection time (they hold no containers, so they cannot form a cycle)."""
        self.model = model
        if model.model_config.get("extra") != "forbid":
            raise TypeError(f"{model.__name__}: the wire decoder forbids unknown fields; the model must too")
        fields: list[tuple[Any, ...]] = []
        self.checks: list[tuple[str, Check[Any]]] = []
        self.optional: list[str] = []
        strings = 0
        for name, info in model.model_fields.items():
            if info.alias not in (None, name) or info.validation_alias is not None:
                raise TypeError(f"field {name!r}: aliases have no wire form")
            wire_type, checks = _translate(_annotation(info), name)
            self.checks += [(name, check) for check in checks]
            if wire_type in (str, datetime) or get_args(wire_type)[:1] in ((str,), (datetime,)):
                strings += 1
            if info.is_required():
                fields.append((name, wire_type))
            else:
                fields.append((name, wire_type | msgspec.UnsetType, msgspec.UNSET))  # to count the keys present
                self.optional.append(name)
        if any(name for name, check in self.checks if name in self.optional):
            raise TypeError(f"{model.__name__}: checks on optional fields are not supported by the wire decoder")
        self.defaults = {name: model.model_fields[name].get_default() for name in self.optional}
        self.struct: type[msgspec.Struct] = msgspec.defstruct(
            f"{model.__name__}Wire", fields, forbid_unknown_fields=True, gc=gc
        )
        self._decode = msgspec.json.Decoder(self.struct).decode
        self._decode_list = msgspec.json.Decoder(list[self.struct]).decode  # type: ignore[name-defined]
        self._required_keys = len(fields) - len(self.optional)
        self._strings = strings
        self._getters = {name: attrgetter(name) for name in [*(name for name, _ in self.checks), *self.optional]}

    def decode_many(self, values: Sequence[bytes | None]) -> WireBatch:
        """Every value decoded: the accepted structs (defaults filled in) in order, and the refused indexes."""
        batch = WireBatch()
        quotes: int | None = None
        joined = self._decode_joined(values)
        if joined is not None:
            (batch.accepted, quotes), batch.rows = joined, list(range(len(values)))
        else:
            decode, accepted, rows, refused = self._decode, batch.accepted, batch.rows, batch.refused
            for index, value in enumerate(values):
                if not value:
                    refused.append(Refusal(index, "empty message"))
                    continue
                try:
                    accepted.append(decode(value))
                except msgspec.MsgspecError as exc:
                    refused.append(Refusal(index, str(exc), _field_of(str(exc))))
                    continue
                rows.append(index)
        if batch.accepted:
            self._repeated_keys(batch, values, quotes)
        if batch.accepted and self.checks:
            self._check(batch)
        return batch

    def _decode_joined(self, values: Sequence[bytes | None]) -> tuple[list[Any], int] | None:
        """The whole batch in one msgspec call, as one JSON array of its messages, and the quotes it holds; None
        when that cannot be told apart from decoding each message alone (then the caller does so).

        A joined array could accept what the messages alone refuse: ``{"a":1},{"b":"x}`` then ``{y"}`` are two
        objects once joined with a comma (the second's string is ``x},{y``), though neither message is one alone.
        So the result stands only when no message can reach into the next: none is empty, each
        begins with ``{`` and ends with ``}``, none holds a backslash and each holds an even number of quotes (so
        every message begins and ends outside a string), and the array has as many elements as the batch has
        messages. A struct holds no nested object or array, so each message then starts and ends exactly one
        element: it is decoded as it would be alone. Any refusal in the batch falls back as well.
        """
        if len(values) < _JOINED_MIN or not all(values):
            return None
        raws: Sequence[bytes] = values  # type: ignore[assignment]  # none is None or empty (checked above)
        body = b",".join(raws)
        if b"\\" in body:
            return None
        lengths = np.fromiter(map(len, raws), dtype=np.int64, count=len(raws))
        ends = np.cumsum(lengths + 1) - 2  # the last byte of each message in body
        starts = ends - lengths + 1
        edges = np.frombuffer(body, dtype=np.uint8)
        if not (np.all(edges[ends] == _CLOSE) and np.all(edges[starts] == _OPEN)):
            return None
        quotes = (edges == _QUOTE).view(np.uint8)
        if np.any(np.bitwise_xor.reduceat(quotes, starts)):  # some message holds an odd count of quotes
            return None
        try:
            structs = self._decode_list(b"[" + body + b"]")
        except msgspec.MsgspecError:
            return None
        return (structs, int(np.count_nonzero(quotes))) if len(structs) == len(raws) else None

    def _repeated_keys(self, batch: WireBatch, values: Sequence[bytes | None], quotes: int | None = None) -> None:
        """Refuse the accepted messages that repeat a key; fill in the defaults of the optional fields left out.

        One quote count over the batch (numpy, 100 messages at a time) settles it for every message at once:
        without backslashes, the batch has exactly the quotes its keys and string values make unless some message
        repeats a key. Otherwise (a backslash somewhere, or a count over) each message is looked at on its own.
        ``quotes`` is that count when the caller has it (the joined decode: every message accepted, none with a
        backslash).
        """
        present = [self._fill_defaults(name, batch.accepted) for name in self.optional]
        keys = [self._required_keys] * len(batch.accepted)
        for column in present:
            keys = [count + given for count, given in zip(keys, column, strict=True)]
        raws: list[bytes] = [values[row] for row in batch.rows]  # type: ignore[misc]
        if quotes is None:
            quotes = _quotes_and_no_backslash(raws)
        if quotes == 2 * (sum(keys) + self._strings * len(raws)):
            return
        failed: dict[int, Refusal] = {}
        for position, (raw, count) in enumerate(zip(raws, keys, strict=True)):
            where = repeated_key(raw, keys=count, strings=self._strings)
            if where is not None:
                failed[position] = Refusal(batch.rows[position], f"repeated key {where[-1]!r}", str(where[-1]))
        _drop(batch, failed)

    def _fill_defaults(self, name: str, structs: list[Any]) -> list[int]:
        """1 where ``name`` was given, 0 where it was left out (then set to the model's default)."""
        column = list(map(self._getters[name], structs))
        if msgspec.UNSET not in column:
            return [1] * len(column)
        default = self.defaults[name]
        for struct, value in zip(structs, column, strict=True):
            if value is msgspec.UNSET:
                setattr(struct, name, default)
        return [0 if value is msgspec.UNSET else 1 for value in column]

    def _check(self, batch: WireBatch) -> None:
        """Run each Check over the whole batch; only a batch with a failure is walked value by value."""
        failed: dict[int, Refusal] = {}
        for name, check in self.checks:
            values = list(map(self._getters[name], batch.accepted))
            if check.all_pass(values):
                continue
            for position, value in enumerate(values):
                if position in failed:
                    continue
                try:
                    check(value)
                except ValueError as exc:  # PydanticCustomError is a ValueError
                    failed[position] = Refusal(batch.rows[position], str(exc), name)
        _drop(batch, failed)


def _quotes_and_no_backslash(raws: list[bytes]) -> int:
    """How many quote characters ``raws`` hold (-1 when a backslash is among them), counted by numpy in chunks
    small enough (~100 kB) to be served from the heap rather than by fresh pages of the OS."""
    quotes = 0
    for start in range(0, len(raws), _CHUNK):
        joined = b"".join(raws[start : start + _CHUNK])
        if b"\\" in joined:
            return -1
        quotes += int(np.count_nonzero(np.frombuffer(joined, np.uint8) == _QUOTE))
    return quotes


def _drop(batch: WireBatch, failed: dict[int, Refusal]) -> None:
    """Move the accepted messages at the positions of ``failed`` to the refusals (kept in batch order)."""
    if not failed:
        return
    keep = [position for position in range(len(batch.accepted)) if position not in failed]
    batch.refused = sorted([*batch.refused, *failed.values()], key=lambda refusal: refusal.index)
    batch.accepted = [batch.accepted[position] for position in keep]
    batch.rows = [batch.rows[position] for position in keep]


def _annotation(info: FieldInfo) -> Any:
    """The field's type with its field-level constraints, as one Annotated type."""
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _translate(annotation: Any, name: str, *, strict: bool = False) -> tuple[Any, list[Check[Any]]]:
    """The msgspec type of a pydantic annotation, and the Checks msgspec cannot do; TypeError when unknown.

    msgspec is always strict (no number from a string, no boolean as a number), so a number pydantic would read
    laxly has no wire form.
    """
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        flat = _flatten(metadata)
        strict = any(isinstance(item, Strict) and item.strict for item in flat)
        wire_base, checks = _translate(base, name, strict=strict)
        constraints: dict[str, Any] = {}
        for item in flat:
            if isinstance(item, tuple(_BOUNDS)):
                key = _BOUNDS[type(item)]  # annotated_types names the bound as msgspec.Meta does
                constraints[key] = getattr(item, key)
            elif isinstance(item, AfterValidator) and isinstance(item.func, Check):
                checks.append(item.func)
            elif isinstance(item, BeforeValidator) and item.func is parse_timestamp and wire_base is datetime:
                pass  # parse_timestamp is msgspec's own RFC 3339 reader
            elif isinstance(item, Strict) and item.strict:
                pass
            elif isinstance(item, AllowInfNan) and not item.allow_inf_nan:
                pass  # msgspec's JSON parser never yields NaN or infinity ("Number out of range")
            else:
                raise TypeError(f"field {name!r}: no wire form for the constraint {item!r}")
        return (Annotated[wire_base, msgspec.Meta(**constraints)] if constraints else wire_base), checks
    if origin in (Union, types.UnionType):
        parts = [_translate(arg, name) for arg in get_args(annotation)]
        if any(checks for _, checks in parts):
            raise TypeError(f"field {name!r}: checks inside a union have no wire form")
        return Union[tuple(wire for wire, _ in parts)], []  # noqa: UP007 (built at run time)
    if annotation in (float, int, bool) and not strict:
        raise TypeError(f"field {name!r}: a lax {annotation.__name__} has no wire form (annotate it Strict())")
    if origin is Literal or annotation in _PLAIN:
        return annotation, []
    raise TypeError(f"field {name!r}: no wire form for the type {annotation!r}")


def _flatten(metadata: Sequence[Any]) -> list[Any]:
    """Field(...) objects nested in Annotated carry their constraints in their own metadata."""
    flat: list[Any] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            flat += _flatten(item.metadata)
        else:
            flat.append(item)
    return flat


def _field_of(message: str) -> str | None:
    """The field msgspec names: "... - at `$.V3`", "Object missing required field `V3`", "unknown field `x`"."""
    if " - at `$." in message:
        return message.rsplit(" - at `$.", 1)[1].rstrip("`").split(".")[0].split("[")[0]
    if message.startswith(("Object missing required field `", "Object contains unknown field `")):
        return message.split("`")[1]
    return None
