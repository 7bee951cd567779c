"""Records a service produces (alerts, dead letters), and the consumed message each one is about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Source:
    """Where a consumed message sits: the identity a retried batch meets again."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce (the scorer: inside the batch's transaction).

    ``source`` is the consumed message it is about; ``original_headers`` counts the leading ``headers`` copied
    from that message (a dead letter keeps them; the service's own headers follow them).
    """

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None
    source: Source | None = None
    original_headers: int = 0
