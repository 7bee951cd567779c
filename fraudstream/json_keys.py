"""Duplicate keys in a JSON document: refused, because the parsers we use keep the last value silently.

Neither pydantic's parser nor msgspec's reports a repeated key, so ``{"transaction_id": "a", ...,
"transaction_id": "b"}`` would be read as ``b`` by one reader and perhaps ``a`` by another. Checking costs one
byte count on a message that already validated: in a document without backslashes every string token has exactly
two quote characters, so a flat object known to hold ``keys`` distinct keys and ``strings`` string values has
``2 * (keys + strings)`` quotes, and more exactly when a key repeats (a repeated key and its value can only add
quotes). Only a document with backslashes, or one that fails the count, is parsed again to find the key.
"""

from __future__ import annotations

import json
from typing import Any

Path = tuple[str | int, ...]


def repeated_key(raw: bytes | str, *, keys: int, strings: int) -> Path | None:
    """Where the first repeated key is in a document that validated with ``keys`` keys and ``strings`` strings."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if b"\\" not in raw and raw.count(b'"') == 2 * (keys + strings):
        return None
    return find_repeated_key(raw)


def find_repeated_key(raw: bytes | str) -> Path | None:
    """The path to the first key that appears twice in one object (e.g. ``("transactions", 3, "V5")``), or None.

    ``raw`` has validated already; it is parsed again by the standard library with every pair kept (a document
    that parser cannot read, which a validating parser accepted, is taken as holding no repeated key).
    """
    found: list[bool] = []
    try:
        document = json.loads(raw, object_pairs_hook=lambda pairs: _object(pairs, found))
    except (ValueError, RecursionError):
        return None
    return _locate(document, ()) if found else None


class _Repeated(dict):  # type: ignore[type-arg]
    key: str


def _object(pairs: list[tuple[str, Any]], found: list[bool]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    repeated = _Repeated(result)
    repeated.key = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
    found.append(True)
    return repeated


def _locate(node: Any, path: Path) -> Path | None:
    if isinstance(node, _Repeated):
        return (*path, node.key)
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for name, child in children:
        located = _locate(child, (*path, name))
        if located is not None:
            return located
    return None
