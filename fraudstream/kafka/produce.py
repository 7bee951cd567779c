"""Hand a record to a producer, waiting (and serving delivery reports) while its local queue is full.

``produce()`` raises ``BufferError`` when librdkafka's queue (``queue.buffering.max.messages`` / ``.kbytes``) is
full, e.g. while the broker is away: the records wait in memory and the caller must let librdkafka deliver some
before it may add more. Every producer of fraudstream goes through :func:`produce`, so the waiting, the stop
check and the ``poll()`` that serves delivery reports meanwhile are the same everywhere.
"""

from __future__ import annotations

from typing import Any, Protocol

from fraudstream.shutdown import Stop

FULL_QUEUE_POLL_S = 0.1


class Producing(Protocol):
    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None: ...

    def poll(self, timeout: float) -> int: ...


def produce(
    producer: Producing,
    topic: str,
    *,
    value: bytes | str | None,
    key: bytes | str | None = None,
    stop: Stop | None = None,
    on_full: Any = None,
    **options: Any,
) -> bool:
    """``producer.produce(topic, value=..., key=..., **options)``, retried after ``poll(0.1)`` while the local
    queue is full. True once queued; False when ``stop`` was set while waiting (the record was not queued).

    ``on_full`` (optional, no arguments) is called once per wait, e.g. to note a broker that is slow to drain.
    Other errors (``KafkaException``, e.g. MSG_SIZE_TOO_LARGE) reach the caller.
    """
    options = {name: option for name, option in options.items() if option is not None}
    while True:
        try:
            producer.produce(topic, value=value, key=key, **options)
            return True
        except BufferError:
            if stop is not None and stop.is_set():
                return False
            if on_full is not None:
                on_full()
            producer.poll(FULL_QUEUE_POLL_S)
