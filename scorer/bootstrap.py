"""Wire a scorer from the settings: consumer, transactional producer, model watcher, metrics. Tests swap parts.

``transactional.id``: ``FRAUD_SCORER_TRANSACTIONAL_ID`` when set (a stable replica name, e.g. the pod name),
else ``<group>-<host>-<pid>``. A stable id lets a restarted replica fence its crashed predecessor at once:
``init_transactions`` aborts the dead transaction, so ``read_committed`` readers and the group's offsets do not
wait for ``transaction.timeout.ms`` to pass. With the derived id, KIP-447 (the consumer group metadata sent with
the offsets) still fences zombies, and a dead transaction blocks readers until the timeout aborts it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fraudstream.kafka.clients import consumer_config, producer_config
from fraudstream.kafka.topics import ensure_topics, standard_topics
from fraudstream.model.watcher import ModelWatcher
from fraudstream.settings import Settings
from fraudstream.shutdown import GracefulStop
from scorer.loop import Consumer, ScorerLoop, ScorerStatus, Stop
from scorer.metrics import ScorerMetrics
from scorer.transaction import TransactionalProducer, Transactor

log = logging.getLogger(__name__)

CLIENT_ID = "fraudstream-scorer"


def transactional_id(settings: Settings) -> str:
    """The configured transactional.id, else one unique to this process."""
    if settings.scorer_transactional_id:
        return settings.scorer_transactional_id
    return f"{settings.scorer_group_id}-{socket.gethostname()}-{os.getpid()}"


def build_consumer(settings: Settings) -> Consumer:
    """The group consumer: explicit commits (through the transaction), read_committed, cooperative-sticky."""
    from confluent_kafka import Consumer as KafkaConsumer

    config = consumer_config(
        settings.kafka(),
        group_id=settings.scorer_group_id,
        client_id=CLIENT_ID,
        read_committed=True,
        **{"session.timeout.ms": settings.scorer_session_timeout_ms},
    )
    return KafkaConsumer(config)  # type: ignore[return-value]


def build_producer(settings: Settings, txn_id: str) -> TransactionalProducer:
    """The transactional producer for alerts and dead letters."""
    from confluent_kafka import Producer

    config = producer_config(
        settings.kafka(),
        client_id=CLIENT_ID,
        transactional_id=txn_id,
        **{
            "transaction.timeout.ms": settings.scorer_transaction_timeout_ms,
            # Right after a commit the coordinator is still writing that transaction's markers and answers the
            # next AddOffsetsToTxn with CONCURRENT_TRANSACTIONS; librdkafka then waits retry.backoff.ms (100 ms by
            # default) before retrying. The Java client uses 20 ms for this case (KAFKA-5477); measured here, a
            # short back-off halves send_offsets_to_transaction (~50 -> ~21 ms on average a batch, cold broker).
            "retry.backoff.ms": 10,
        },
    )
    return Producer(config)  # type: ignore[return-value]


def build_watcher(settings: Settings) -> ModelWatcher:
    """Follows ``models:/<name>@<alias>`` in the MLflow registry, checking every model_poll_interval_s."""
    from fraudstream.model.registry import ModelRegistry

    return ModelWatcher(ModelRegistry(settings), settings.model_poll_interval_s)


@dataclass
class Scorer:
    """A wired scorer: ``run()`` serves metrics and scores until its stop flag is set."""

    loop: ScorerLoop
    metrics: ScorerMetrics
    metrics_port: int
    transactional_id: str

    def run(self) -> ScorerStatus:
        self.metrics.serve(self.metrics_port)
        try:
            return self.loop.run()
        finally:
            self.metrics.close()

    @property
    def stop(self) -> Stop:
        return self.loop.stop


def bootstrap(
    settings: Settings,
    *,
    stop: Stop | None = None,
    consumer: Consumer | None = None,
    producer: TransactionalProducer | None = None,
    watcher: ModelWatcher | None = None,
    metrics: ScorerMetrics | None = None,
    on_status: Callable[[ScorerStatus], None] | None = None,
    create_topics: bool = True,
) -> Scorer:
    """Build a scorer from ``settings``; any part passed in is used instead of the real one.

    ``create_topics`` makes sure transactions, alerts and DLQ topics exist (idempotent) before the clients are
    built; it raises BrokerError with the bootstrap address when the cluster does not answer.
    """
    if create_topics:
        ensure_topics(settings.kafka(), standard_topics(settings), replication_factor=settings.topic_replication_factor)
    txn_id = transactional_id(settings)
    consumer = consumer if consumer is not None else build_consumer(settings)
    producer = producer if producer is not None else build_producer(settings, txn_id)
    metrics = metrics or ScorerMetrics()
    transactor = Transactor(
        producer,
        consumer,
        alerts_topic=settings.topic_alerts,
        dlq_topic=settings.topic_dlq,
        timeout_s=settings.scorer_transaction_timeout_ms / 1000,
    )
    loop = ScorerLoop(
        consumer=consumer,
        transactor=transactor,
        watcher=watcher or build_watcher(settings),
        metrics=metrics,
        topic=settings.topic_transactions,
        batch_size=settings.scorer_batch_size,
        batch_timeout_s=settings.scorer_batch_timeout_s,
        stop=stop if stop is not None else GracefulStop(),
        on_status=on_status,
        status_interval_s=settings.scorer_status_interval_s,
        model_wait_s=min(1.0, settings.model_poll_interval_s),
    )
    log.info(
        "scorer wired",
        extra={"group": settings.scorer_group_id, "transactional_id": txn_id, "topic": settings.topic_transactions},
    )
    return Scorer(loop=loop, metrics=metrics, metrics_port=settings.scorer_metrics_port, transactional_id=txn_id)


def run_scorer(settings: Settings, *, stop: Stop | None = None, **parts: Any) -> ScorerStatus:
    """Bootstrap and run until Ctrl-C / SIGTERM (signals are caught in the main thread), then return the totals."""
    stop = stop if stop is not None else GracefulStop()
    guard = stop if isinstance(stop, GracefulStop) else contextlib.nullcontext()
    with guard:
        return bootstrap(settings, stop=stop, **parts).run()
