"""Dead letters: a message a service could not handle (the scorer: not a valid transaction; the alert sink: not
an alert the store can hold), with why and where it came from, always small enough for Kafka to take.

A dead letter is the original key, value and headers, followed by the service's headers::

    reason            one line naming the field(s) at fault
    error_kind        a stable label (invalid_json, missing_field, ..., alert_refused)
    source_topic, source_partition, source_offset
    original_size     bytes of the original value

The original headers come first, so where a name repeats, the last value is the service's. A message may be
valid for the broker and still too large to copy (a 1 MB value under the topic's 1,048,588-byte limit, or a
5 MB value the producer compressed to 6 KB): :func:`fit` then keeps the key, the headers and as much of the value
as fits under :func:`dead_letter_limit`, and says so (``value_kept``: ``all``, ``part`` or ``none``, and
``dlq_note``). When Kafka refuses a dead letter anyway (at delivery, e.g. a topic limit lowered since start-up),
the retried batch writes :func:`minimal` instead: no value, no original headers, the key cut to 256 bytes.
"""

from __future__ import annotations

from fraudstream.kafka.records import OutRecord, Source

REASON_HEADER = "reason"
KIND_HEADER = "error_kind"
SOURCE_TOPIC_HEADER = "source_topic"
SOURCE_PARTITION_HEADER = "source_partition"
SOURCE_OFFSET_HEADER = "source_offset"
ORIGINAL_SIZE_HEADER = "original_size"
VALUE_KEPT_HEADER = "value_kept"
NOTE_HEADER = "dlq_note"
ALERT_REFUSED = "alert_refused"

HEADER_OVERHEAD = 16
"""Bytes a record header costs besides its name and value (varint lengths), rounded up."""
MINIMAL_KEY_BYTES = 256


def dead_letter_limit(producer_max_bytes: int, topic_max_bytes: int) -> int:
    """The largest dead letter (key + value + headers) a service writes: under the producer's
    ``message.max.bytes`` and the topic's ``max.message.bytes``, less the record batch's framing and what
    compression can add to incompressible bytes (lz4 and gzip grow them by well under 1%)."""
    limit = min(producer_max_bytes, topic_max_bytes)
    return max(1024, limit - 1024 - limit // 100)


def record_size(record: OutRecord) -> int:
    """What a record weighs against ``message.max.bytes``: key, value and headers."""
    size = len(record.key or b"") + len(record.value or b"")
    return size + sum(_header_size(name, value) for name, value in record.headers or ())


def dead_letter(
    *,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None,
    source: Source,
    reason: str,
    kind: str,
) -> OutRecord:
    """The whole message as a dead letter: its key, value and headers, then the service's headers."""
    original = list(headers or ())
    own = [
        (REASON_HEADER, reason.encode()),
        (KIND_HEADER, kind.encode()),
        (SOURCE_TOPIC_HEADER, source.topic.encode()),
        (SOURCE_PARTITION_HEADER, str(source.partition).encode()),
        (SOURCE_OFFSET_HEADER, str(source.offset).encode()),
        (ORIGINAL_SIZE_HEADER, str(len(value or b"")).encode()),
    ]
    return OutRecord(key=key, value=value, headers=original + own, source=source, original_headers=len(original))


def fit(record: OutRecord, limit: int) -> OutRecord:
    """``record`` itself when it is within ``limit`` bytes, else the same dead letter cut to fit: the key (up to
    a quarter of the limit), the original headers while they fit in another quarter, then the value's head."""
    if record_size(record) <= limit:
        return record
    headers = record.headers or []
    original, own = headers[: record.original_headers], headers[record.original_headers :]
    notes: list[str] = []
    budget = limit - _headers_size(own) - _headers_size([(VALUE_KEPT_HEADER, b"part"), (NOTE_HEADER, b"")]) - 400
    key = record.key
    if key is not None and len(key) > budget // 4:
        notes.append(f"key cut from {len(key)} to {budget // 4} bytes")
        key = key[: budget // 4]
    budget -= len(key or b"")
    kept: list[tuple[str, bytes]] = []
    room = budget // 2
    for name, value in original:
        size = _header_size(name, value)
        if size <= room:
            kept.append((name, value))
            room -= size
    if len(kept) < len(original):
        notes.append(f"{len(original) - len(kept)} of {len(original)} original headers left out")
    budget -= _headers_size(kept)
    value = record.value or b""
    room = max(0, budget)
    if len(value) > room:
        notes.append(f"value cut to its first {room} of {len(value)} bytes")
    notes.append(f"to fit the dead-letter limit of {limit} bytes")
    value_kept = b"all" if len(value) <= room else b"part" if room else b"none"
    tail = [(VALUE_KEPT_HEADER, value_kept), (NOTE_HEADER, "; ".join(notes).encode())]
    return OutRecord(
        key=key, value=value[:room] or None, headers=kept + own + tail, source=record.source, original_headers=len(kept)
    )


def minimal(record: OutRecord, refusal: str) -> OutRecord:
    """What is left to say once Kafka refused a fuller dead letter: the service's headers, the key's head, no value
    and no original headers, and the refusal in ``dlq_note``."""
    headers = record.headers or []
    own = [(name, value) for name, value in headers[record.original_headers :] if name not in _CUT_HEADERS]
    note = f"Kafka refused the dead letter ({refusal}): value and original headers left out"
    key = record.key[:MINIMAL_KEY_BYTES] if record.key is not None else None
    return OutRecord(
        key=key,
        value=None,
        headers=[*own, (VALUE_KEPT_HEADER, b"none"), (NOTE_HEADER, note[:1000].encode())],
        source=record.source,
    )


def refused_alert(record: OutRecord, refusal: str) -> OutRecord:
    """An alert Kafka refused, as a dead letter: the alert itself as the value, and the refusal as the reason."""
    source = record.source or Source("", -1, -1)
    return dead_letter(
        key=record.key,
        value=record.value,
        headers=None,
        source=source,
        reason=f"Kafka refused the alert: {refusal}"[:400],
        kind=ALERT_REFUSED,
    )


_CUT_HEADERS = frozenset({VALUE_KEPT_HEADER, NOTE_HEADER})


def _header_size(name: str, value: bytes | None) -> int:
    return len(name.encode()) + len(value or b"") + HEADER_OVERHEAD


def _headers_size(headers: list[tuple[str, bytes]]) -> int:
    return sum(_header_size(name, value) for name, value in headers)
