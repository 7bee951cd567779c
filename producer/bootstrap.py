"""Wire a replay from the settings: the data file, the topics, the idempotent (or transactional) producer. Tests
swap parts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from fraudstream.kafka.clients import producer_config
from fraudstream.kafka.outage import ClientEvents, OutageLog
from fraudstream.kafka.topics import ensure_flow_topics
from fraudstream.settings import Settings
from fraudstream.shutdown import GracefulStop, Stop, stop_on_signals
from producer.commit_check import record_committed
from producer.replay import Producer, Replayer, ReplayOptions, ReplayStats
from producer.transactional import TRANSACTION_TIMEOUT_MS, TransactionalProducer, TransactionalSender

log = logging.getLogger(__name__)

CLIENT_ID = "fraudstream-replay"


def build_producer(settings: Settings, events: ClientEvents | None = None) -> Producer:
    """An idempotent producer (acks=all, ordered retries) built from the kernel's configuration.

    Its records never time out (``message.timeout.ms`` 0): during a broker outage they wait in its queue, however
    long it lasts, and are delivered (in order, once) when the broker is back.
    """
    from confluent_kafka import Producer as KafkaProducer

    config = producer_config(settings.kafka(), client_id=CLIENT_ID, events=events, **{"message.timeout.ms": 0})
    return KafkaProducer(config)  # type: ignore[return-value]


def build_transactional_producer(settings: Settings, events: ClientEvents | None = None) -> TransactionalProducer:
    """A transactional producer with the replay's transactional.id (FRAUD_REPLAY_TRANSACTIONAL_ID, else derived
    from the host and the topic).

    Unlike the idempotent one, its records cannot wait forever: librdkafka requires ``message.timeout.ms`` <=
    ``transaction.timeout.ms``. A record still undelivered when it times out makes its transaction abortable; the
    sender aborts it and sends the same rows again, so an outage of any length still only delays the replay.
    """
    from confluent_kafka import Producer as KafkaProducer

    config = producer_config(
        settings.kafka(),
        client_id=CLIENT_ID,
        transactional_id=settings.replay_transaction_id,
        events=events,
        **{"transaction.timeout.ms": TRANSACTION_TIMEOUT_MS, "message.timeout.ms": TRANSACTION_TIMEOUT_MS},
    )
    return KafkaProducer(config)  # type: ignore[return-value]


def choose_data(settings: Settings, data: Path | None) -> tuple[Path, bool]:
    """The CSV to replay and whether it is synthetic: ``data`` when given (it must exist), else the kernel's
    choice (``FRAUD_DATA_PATH`` when present, else a cached synthetic set, announced loudly)."""
    from fraudstream.data.source import resolve_dataset

    choice = resolve_dataset(settings, data)
    log.info("replaying %s", choice.description)
    return choice.path, choice.synthetic


def bootstrap(
    settings: Settings,
    options: ReplayOptions,
    *,
    producer: Producer | None = None,
    stop: Stop | None = None,
    progress: Callable[[ReplayStats], None] | None = None,
    create_topics: bool = True,
    transactional_producer: Callable[[], TransactionalProducer] | None = None,
) -> Replayer:
    """Build a replayer; ``create_topics`` makes sure the flow's topics exist (BrokerError when unreachable).

    With FRAUD_REPLAY_TRANSACTIONAL it sends in transactions, through producers from ``transactional_producer``
    (default: :func:`build_transactional_producer`); else through ``producer`` (default: :func:`build_producer`).
    """
    data, synthetic = choose_data(settings, options.data)
    if create_topics:
        ensure_flow_topics(settings)
    outage = OutageLog("replay")
    events = ClientEvents(outage)
    running = stop if stop is not None else GracefulStop()
    common: dict[str, Any] = {
        "outage": outage,
        "topic": settings.topic_transactions,
        "data": data,
        "synthetic": synthetic,
        "options": options,
        "stop": running,
        "progress": progress,
    }
    if settings.replay_transactional:
        factory = transactional_producer or (lambda: build_transactional_producer(settings, events))

        def sender(stats: ReplayStats, on_wait: Callable[[], None]) -> TransactionalSender:
            return TransactionalSender(
                factory,
                topic=settings.topic_transactions,
                stats=stats,
                stop=running,
                outage=outage,
                rows=settings.replay_transaction_rows,
                interval_s=settings.replay_transaction_ms / 1000,
                flush_timeout_s=options.flush_timeout_s,
                on_wait=on_wait,
                check_committed=partial(record_committed, settings.kafka()),
            )

        log.info("replaying in transactions (transactional.id %s)", settings.replay_transaction_id)
        return Replayer(transactions=sender, **common)
    return Replayer(
        producer=producer if producer is not None else build_producer(settings, events),
        producer_factory=None if producer is not None else lambda: build_producer(settings, events),
        **common,
    )


def replay(
    settings: Settings,
    options: ReplayOptions,
    *,
    stop: Stop | None = None,
    progress: Callable[[ReplayStats], None] | None = None,
    producer: Producer | None = None,
) -> ReplayStats:
    """Replay until done or until Ctrl-C / SIGTERM (caught when called from the main thread); flushes at the end."""
    with stop_on_signals(stop) as running:
        return bootstrap(settings, options, producer=producer, stop=running, progress=progress).run()
