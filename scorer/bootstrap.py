"""Wire a scorer from the settings: consumer, transactional producer, model watcher, metrics. Tests swap parts.

The replica id ``FRAUD_SCORER_TRANSACTIONAL_ID`` (a stable name, e.g. the pod name) is two things:

* the ``transactional.id``: a restarted replica fences its crashed predecessor at once (``init_transactions``
  aborts the dead transaction, so ``read_committed`` readers and the group's offsets do not wait for
  ``transaction.timeout.ms``); an in-process replacement of the producer uses it the same way;
* the ``group.instance.id`` (static membership, KIP-345): a replica restarted after ``kill -9`` gets its
  partitions back at once, without a rebalance, instead of waiting for the dead member's session to expire.
  A static member does not leave the group when it stops: its partitions wait ``FRAUD_SCORER_SESSION_TIMEOUT_MS``
  for it, then move to the surviving replicas.

Unset, the transactional.id is ``<group>-<host>-<pid>`` (unique, never reused), and the membership is dynamic: a
static id that changed at every restart would leave a dead member holding partitions for a whole session. A
replica restarted after a crash then waits for the old member's session to expire; KIP-447 (the consumer group
metadata sent with the offsets) still fences zombies, and a dead transaction blocks readers until it times out.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fraudstream.kafka.clients import PRODUCER_MESSAGE_MAX_BYTES, consumer_config, producer_config
from fraudstream.kafka.dead_letter import dead_letter_limit
from fraudstream.kafka.health import ConsumerHealth
from fraudstream.kafka.outage import ClientEvents, OutageLog
from fraudstream.kafka.topics import ensure_flow_topics, ensure_monitoring_state_topic, max_message_bytes
from fraudstream.kafka.watchdog import Watchdog
from fraudstream.memory import freeze_long_lived
from fraudstream.model.serving import FraudModel
from fraudstream.model.watcher import ModelWatcher, VersionSource
from fraudstream.settings import Settings
from fraudstream.shutdown import GracefulStop, Stop, stop_on_signals
from scorer.loop import Consumer, ScorerLoop, ScorerStatus
from scorer.metrics import ScorerMetrics
from scorer.monitoring import StateSource, WindowMonitor, WindowRule
from scorer.observer import BatchObserver
from scorer.transaction import WATCHDOG_MARGIN_S, TransactionalProducer, Transactor

log = logging.getLogger(__name__)

CLIENT_ID = "fraudstream-scorer"


def transactional_id(settings: Settings) -> str:
    """The configured transactional.id, else one unique to this process."""
    if settings.scorer_transactional_id:
        return settings.scorer_transactional_id
    return f"{settings.scorer_group_id}-{socket.gethostname()}-{os.getpid()}"


def build_consumer(
    settings: Settings, events: ClientEvents | None = None, health: ConsumerHealth | None = None
) -> Consumer:
    """The group consumer: explicit commits (through the transaction), read_committed, cooperative-sticky, and
    a static member when the replica id is set."""
    from confluent_kafka import Consumer as KafkaConsumer

    config = consumer_config(
        settings.kafka(),
        group_id=settings.scorer_group_id,
        client_id=CLIENT_ID,
        read_committed=True,
        group_instance_id=settings.scorer_transactional_id,
        session_timeout_ms=settings.scorer_session_timeout_ms,
        events=events,
        stats=health.on_stats if health is not None else None,
    )
    return KafkaConsumer(config)  # type: ignore[return-value]


def build_producer(
    settings: Settings,
    txn_id: str,
    events: ClientEvents | None = None,
    message_max_bytes: int = PRODUCER_MESSAGE_MAX_BYTES,
) -> TransactionalProducer:
    """The transactional producer for alerts and dead letters."""
    from confluent_kafka import Producer

    config = producer_config(
        settings.kafka(),
        client_id=CLIENT_ID,
        transactional_id=txn_id,
        events=events,
        **{
            "transaction.timeout.ms": settings.scorer_transaction_timeout_ms,
            # No batch may outgrow the smallest topic limit (the broker would refuse it whole).
            "message.max.bytes": message_max_bytes,
            # Right after a commit the coordinator is still writing that transaction's markers and answers the
            # next AddOffsetsToTxn with CONCURRENT_TRANSACTIONS; librdkafka then waits retry.backoff.ms (100 ms by
            # default) before retrying. The Java client uses 20 ms for this case (KAFKA-5477); a short back-off
            # halves send_offsets_to_transaction a batch (benchmarks/README.md, "What was tuned, measured").
            "retry.backoff.ms": 10,
        },
    )
    return Producer(config)  # type: ignore[return-value]


def build_watcher(settings: Settings) -> ModelWatcher:
    """Follows ``models:/<name>@<alias>`` in the MLflow registry, checking every model_poll_interval_s.

    The registry client is built at its first use: importing MLflow takes seconds, which the scorer spends
    starting its Kafka side meanwhile.
    """

    def registry() -> VersionSource:
        from fraudstream.model.registry import ModelRegistry

        return ModelRegistry(settings, explain_process=settings.scorer_explain_process)

    return ModelWatcher(_LazyRegistry(registry), settings.model_poll_interval_s)


def build_challenger_watcher(settings: Settings) -> ModelWatcher:
    """Follows ``models:/<name>@<challenger alias>``; no such alias: no model (the shadow is optional)."""

    def registry() -> VersionSource:
        from fraudstream.model.registry import ModelRegistry

        return ModelRegistry(settings, alias=settings.model_challenger_alias)

    return ModelWatcher(_LazyRegistry(registry), settings.model_poll_interval_s, optional=True, role="challenger")


def build_monitor(
    settings: Settings,
    txn_id: str,
    metrics: ScorerMetrics,
    challenger: ModelWatcher | None = None,
    replacements: Callable[[], int] | None = None,
    state_source: StateSource | None = None,
) -> WindowMonitor | None:
    """The monitoring observer (None when FRAUD_MONITOR_ENABLED is off), with the challenger's watcher when
    FRAUD_MONITOR_CHALLENGER is on (``challenger``: that watcher, built here when not given). ``state_source``:
    where its committed state is read back from (default: the monitoring state topic)."""
    if not settings.monitor_enabled:
        return None
    from fraudstream.monitoring import Thresholds
    from scorer.monitor_state import StateReader

    if settings.monitor_challenger and challenger is None:
        challenger = build_challenger_watcher(settings)
    return WindowMonitor(
        scorer=txn_id,
        topic=settings.topic_monitoring,
        state_topic=settings.topic_monitoring_state,
        rule=WindowRule(rows=settings.monitor_window_rows, seconds=settings.monitor_window_s),
        thresholds=Thresholds.from_settings(settings),
        state_source=state_source or StateReader(settings.kafka(), settings.topic_monitoring_state),
        challenger=challenger if settings.monitor_challenger else None,
        gauges=metrics,
        replacements=replacements,
    )


class _LazyRegistry:
    """A registry built on first use."""

    def __init__(self, build: Callable[[], VersionSource]) -> None:
        self._build = build
        self._registry: VersionSource | None = None

    def _get(self) -> VersionSource:
        if self._registry is None:
            self._registry = self._build()
        return self._registry

    def serving_version(self) -> object | None:
        return self._get().serving_version()

    def load(self, version: str) -> FraudModel:
        return self._get().load(version)


@dataclass
class Scorer:
    """A wired scorer: ``run()`` serves metrics and scores until its stop flag is set."""

    loop: ScorerLoop
    metrics: ScorerMetrics
    metrics_port: int
    transactional_id: str
    metrics_host: str = "127.0.0.1"

    def run(self) -> ScorerStatus:
        self.metrics.serve(self.metrics_port, self.metrics_host, readiness=self.loop.readiness)
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
    observer: BatchObserver | None = None,
    on_started: Callable[[], object] | None = None,
) -> Scorer:
    """Build a scorer from ``settings``; any part passed in is used instead of the real one.

    ``create_topics`` makes sure transactions, alerts and DLQ topics exist (idempotent) before the clients are
    built; it raises BrokerError with the bootstrap address when the cluster does not answer. ``on_started`` runs
    once before the first batch (see :class:`scorer.loop.ScorerLoop`).
    """
    stop = stop if stop is not None else GracefulStop()
    output_limit = PRODUCER_MESSAGE_MAX_BYTES
    if create_topics:
        ensure_flow_topics(settings)
        if settings.monitor_enabled:
            ensure_monitoring_state_topic(settings)
        limits = max_message_bytes(settings.kafka(), [settings.topic_alerts, settings.topic_dlq])
        output_limit = min(PRODUCER_MESSAGE_MAX_BYTES, *limits.values())
    txn_id = transactional_id(settings)
    metrics = metrics or ScorerMetrics()
    outage = OutageLog("scorer")
    consumer_events, producer_events = ClientEvents(outage), ClientEvents(outage)
    watchdog = Watchdog(
        "scorer",
        stop=stop,
        margin_s=WATCHDOG_MARGIN_S,
        on_abandoned=lambda _: metrics.abandoned_calls.inc(),
        on_slow=lambda what, seconds: outage.failed(f"{what} has not returned for {seconds:.0f} s"),
    )
    health = ConsumerHealth(outage, settings.topic_transactions)

    def new_consumer() -> Consumer:
        return consumer if consumer is not None else build_consumer(settings, consumer_events, health)

    def new_producer() -> TransactionalProducer:
        return producer if producer is not None else build_producer(settings, txn_id, producer_events, output_limit)

    transactor = Transactor(
        new_producer,
        None,  # type: ignore[arg-type]  # the loop hands it each consumer it builds
        alerts_topic=settings.topic_alerts,
        dlq_topic=settings.topic_dlq,
        timeout_s=settings.scorer_transaction_timeout_ms / 1000,
        watchdog=watchdog,
        outage=outage,
        stop=stop,
        dead_letter_limit=dead_letter_limit(PRODUCER_MESSAGE_MAX_BYTES, output_limit),
        on_fallback=lambda how: metrics.dlq_fallbacks.labels(how=how).inc(),
    )
    loop = ScorerLoop(
        consumer_factory=new_consumer,
        transactor=transactor,
        watcher=watcher or build_watcher(settings),
        metrics=metrics,
        topic=settings.topic_transactions,
        batch_size=settings.scorer_batch_size,
        batch_timeout_s=settings.scorer_batch_timeout_s,
        close_when_idle=settings.scorer_batch_close_when_idle,
        linger_s=settings.scorer_batch_linger_s,
        overlap=settings.scorer_commit_overlap,
        score_chunk=settings.scorer_score_chunk,
        stop=stop,
        watchdog=watchdog,
        health=health,
        consumer_events=consumer_events,
        on_status=on_status,
        status_interval_s=settings.scorer_status_interval_s,
        model_wait_s=min(1.0, settings.model_poll_interval_s),
        observer=observer or build_monitor(settings, txn_id, metrics, replacements=lambda: transactor.replacements),
        on_started=on_started,
    )
    membership = "static" if settings.scorer_transactional_id else "dynamic (FRAUD_SCORER_TRANSACTIONAL_ID unset)"
    log.info(
        "scorer wired",
        extra={
            "group": settings.scorer_group_id,
            "transactional_id": txn_id,
            "membership": membership,
            "topic": settings.topic_transactions,
        },
    )
    return Scorer(
        loop=loop,
        metrics=metrics,
        metrics_port=settings.scorer_metrics_port,
        transactional_id=txn_id,
        metrics_host=settings.scorer_metrics_host,
    )


def run_scorer(settings: Settings, *, stop: Stop | None = None, **parts: Any) -> ScorerStatus:
    """Bootstrap and run until Ctrl-C / SIGTERM (signals are caught in the main thread), then return the totals.
    Once started, the process's long-lived objects (imports, the model) are frozen out of the garbage collector's
    full collections (:func:`fraudstream.memory.freeze_long_lived`)."""
    parts.setdefault("on_started", freeze_long_lived)
    with stop_on_signals(stop) as running:
        return bootstrap(settings, stop=running, **parts).run()
