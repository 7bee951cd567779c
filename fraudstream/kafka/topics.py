"""Cluster administration every component shares: is the cluster reachable, and create the topics it needs.

Works against any cluster (the local broker or ``FRAUD_KAFKA_BOOTSTRAP``). Topic creation is idempotent, so
every entry point may call :func:`ensure_topics` at start-up without coordinating with the others: the flow's
topics through :func:`ensure_flow_topics`, the compacted verdicts topic through :func:`ensure_feedback_topic`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.clients import admin_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.errors import kafka_error

if TYPE_CHECKING:
    from fraudstream.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 15.0
CLUSTER_DEFAULT = -1
"""Replication factor of a CreateTopics request that lets the broker apply its default.replication.factor."""


def min_insync_replicas_for(replication_factor: int) -> int:
    """The ``min.insync.replicas`` of a topic with this many replicas: 2 from 3 replicas on, else 1.

    With 3 replicas and 2 in sync required, an ``acks=all`` write survives one broker down and still lands on two
    brokers; with fewer replicas, requiring 2 would stop every write as soon as one broker is down.
    """
    return 2 if replication_factor >= 3 else 1


@dataclass(frozen=True)
class ClusterInfo:
    """What a metadata request said about the cluster."""

    bootstrap: str
    cluster_id: str | None
    brokers: int
    topics: frozenset[str]
    broker_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class TopicsReport:
    """Outcome of :func:`ensure_topics`: which topics this call created, which were there already."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    partitions: dict[str, int] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)


BROKER_MAX_MESSAGE_BYTES = 1_048_588
"""Kafka's default ``max.message.bytes`` of a topic (the broker's message.max.bytes), assumed when unreadable."""


def standard_topics(settings: Settings) -> dict[str, int]:
    """The topics of the fraudstream flow (transactions, alerts, the scorer's and the sink's dead letters, the
    monitoring windows) with their partition counts."""
    partitions = settings.topic_partitions
    names = (
        settings.topic_transactions,
        settings.topic_alerts,
        settings.topic_dlq,
        settings.topic_sink_dlq,
        settings.topic_monitoring,
    )
    return dict.fromkeys(names, partitions)


def max_message_bytes(conn: KafkaConnection, topics: Iterable[str], *, timeout: float = 10.0) -> dict[str, int]:
    """Each topic's ``max.message.bytes`` (the largest record batch its brokers accept), read from the cluster;
    a topic whose configuration cannot be read gets Kafka's default (logged)."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    names = list(topics)
    admin = admin_client(conn)
    limits = dict.fromkeys(names, BROKER_MAX_MESSAGE_BYTES)
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name) for name in names])
    for resource, future in futures.items():
        try:
            entry = future.result(timeout=timeout).get("max.message.bytes")
            if entry is not None and entry.value is not None:
                limits[resource.name] = int(entry.value)
        except (KafkaException, concurrent.futures.TimeoutError, ValueError) as exc:
            log.warning(
                "cannot read max.message.bytes of %s (%s): assuming %d", resource.name, exc, limits[resource.name]
            )
    return limits


COMPACTED: dict[str, str] = {"cleanup.policy": "compact"}
"""Topic configuration of keyed state topics: the latest record per key is kept."""


def feedback_topics(settings: Settings) -> dict[str, int]:
    """The analysts' verdicts topic, compacted (create it with ``config=COMPACTED``)."""
    return {settings.topic_feedback: settings.topic_partitions}


def ensure_flow_topics(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_S) -> TopicsReport:
    """:func:`ensure_topics` of :func:`standard_topics`, replicated as the settings say: what each service (and
    ``fraudstream kafka topics``, and the demo) makes sure of before it builds its clients."""
    return ensure_topics(
        settings.kafka(),
        standard_topics(settings),
        replication_factor=settings.topic_replication_factor,
        timeout=timeout,
    )


def ensure_feedback_topic(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_S) -> TopicsReport:
    """:func:`ensure_topics` of :func:`feedback_topics`, compacted and replicated as the settings say."""
    return ensure_topics(
        settings.kafka(),
        feedback_topics(settings),
        replication_factor=settings.topic_replication_factor,
        timeout=timeout,
        config=COMPACTED,
    )


def ensure_monitoring_state_topic(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_S) -> TopicsReport:
    """The compacted one-partition topic where each scorer replica keeps its open monitoring window (its state,
    written in every transaction, read back at start and after an abort)."""
    return ensure_topics(
        settings.kafka(),
        {settings.topic_monitoring_state: 1},
        replication_factor=settings.topic_replication_factor,
        timeout=timeout,
        config=COMPACTED,
    )


def admin_client(conn: KafkaConnection, **overrides: Any) -> AdminClient:
    """An AdminClient whose librdkafka logs go to Python logging (not stderr)."""
    return AdminClient({**admin_config(conn), **overrides})


def probe_cluster(conn: KafkaConnection, *, timeout: float = 5.0, client: AdminClient | None = None) -> ClusterInfo:
    """Ask the cluster for its metadata; raise BrokerError naming the bootstrap address when nobody answers."""
    metadata = _metadata(conn, client or admin_client(conn), timeout)
    return ClusterInfo(
        bootstrap=conn.bootstrap_servers,
        cluster_id=metadata.cluster_id,
        brokers=len(metadata.brokers),
        topics=frozenset(name for name in metadata.topics if not name.startswith("__")),
        broker_ids=frozenset(metadata.brokers),
    )


def ensure_topics(
    conn: KafkaConnection,
    topics: Mapping[str, int] | Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    config: Mapping[str, str] | None = None,
) -> TopicsReport:
    """Create the topics that are missing and wait until every partition of them has a leader.

    ``topics`` maps name to partition count, or lists names that all get ``partitions``. New topics get
    ``replication_factor`` replicas (None: the cluster's default.replication.factor) and ``min.insync.replicas``
    of ``min_insync_replicas`` (None: :func:`min_insync_replicas_for` the replication factor; the cluster's
    default when that is the cluster's too). A topic that exists already (or that another process creates at the
    same moment) is reported as existing and left as it is, with a warning when its replication differs.
    On return, producers and consumers can use every topic at once. ``config`` (e.g. COMPACTED) adds topic
    configuration to the topics this call creates.
    """
    wanted = dict(topics) if isinstance(topics, Mapping) else dict.fromkeys(topics, partitions)
    admin = admin_client(conn)
    before = _metadata(conn, admin, timeout)
    counts = {name: len(before.topics[name].partitions) for name in wanted if name in before.topics}
    missing = {name: count for name, count in wanted.items() if name not in before.topics}
    topic_config = {**_topic_config(replication_factor, min_insync_replicas), **(config or {})}
    replicas = replication_factor or CLUSTER_DEFAULT
    created = _create(admin, conn, missing, replicas, topic_config, timeout) if missing else []
    after = before
    if missing:
        counts.update(_await_leaders(admin, conn, list(missing), timeout))
        log.info("created topics %s on %s", ", ".join(created) or "(none)", conn.bootstrap_servers)
        after = _metadata(conn, admin, timeout)
    existing = [name for name in wanted if name not in created]
    for name in existing:
        if counts[name] != wanted[name]:
            log.warning("topic %s has %d partitions, not %d; left as it is", name, counts[name], wanted[name])
        replicas = _replicas(before, name)
        if replication_factor and replicas and replicas != replication_factor:
            log.warning(
                "topic %s has %d replicas, not %d; left as it is (kafka-reassign-partitions changes it)",
                name,
                replicas,
                replication_factor,
            )
    return TopicsReport(
        created=created,
        existing=existing,
        partitions={name: counts[name] for name in wanted},
        replicas={name: _replicas(after, name) for name in wanted},
    )


def delete_topics(conn: KafkaConnection, names: Iterable[str], *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """Delete topics, ignoring those already gone (used to clean up after tests)."""
    names = list(names)
    if not names:
        return
    admin = admin_client(conn)  # keep a reference: a collected client cancels its pending requests
    futures = admin.delete_topics(names, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            error = kafka_error(exc)
            if error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise BrokerError(f"cannot delete topic {name} on {conn.bootstrap_servers}: {error.str()}") from exc


def _metadata(conn: KafkaConnection, admin: AdminClient, timeout: float) -> ClusterMetadata:
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(
            f"cannot reach Kafka at {conn.bootstrap_servers} within {timeout:g}s ({kafka_error(exc).str()}); "
            "is it running? Start the local broker with `fraudstream kafka up`, or check FRAUD_KAFKA_BOOTSTRAP"
        ) from exc


def _await_leaders(admin: AdminClient, conn: KafkaConnection, names: list[str], timeout: float) -> dict[str, int]:
    """Poll metadata until each new topic shows all its partitions with a leader; their partition counts."""
    deadline = time.monotonic() + timeout
    while True:
        metadata = _metadata(conn, admin, timeout)
        ready = {name: count for name in names if (count := _led_partitions(metadata, name))}
        if len(ready) == len(names):
            return ready
        if time.monotonic() >= deadline:
            late = ", ".join(name for name in names if name not in ready)
            raise BrokerError(f"topics {late} on {conn.bootstrap_servers} lack partition leaders after {timeout:g}s")
        time.sleep(0.05)


def _led_partitions(metadata: ClusterMetadata, name: str) -> int:
    """The partition count of a topic when every partition has a leader, else 0."""
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None or not topic.partitions:
        return 0
    if any(part.error is not None or part.leader < 0 for part in topic.partitions.values()):
        return 0
    return len(topic.partitions)


def _topic_config(replication_factor: int | None, min_insync_replicas: int | None) -> dict[str, str]:
    if min_insync_replicas is None and replication_factor is not None:
        min_insync_replicas = min_insync_replicas_for(replication_factor)
    return {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}


def _replicas(metadata: ClusterMetadata, name: str) -> int:
    """The replica count of a topic's first partition (0 when the metadata does not say)."""
    topic = metadata.topics.get(name)
    if topic is None or not topic.partitions:
        return 0
    return len(topic.partitions[min(topic.partitions)].replicas)


def _create(
    admin: AdminClient,
    conn: KafkaConnection,
    missing: Mapping[str, int],
    replication_factor: int,
    config: Mapping[str, str],
    timeout: float,
) -> list[str]:
    new_topics = [
        NewTopic(name, num_partitions=count, replication_factor=replication_factor, config=dict(config))
        for name, count in missing.items()
    ]
    futures = admin.create_topics(new_topics, operation_timeout=timeout, request_timeout=timeout)
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            error = kafka_error(exc)
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise BrokerError(f"cannot create topic {name} on {conn.bootstrap_servers}: {error.str()}") from exc
        except concurrent.futures.TimeoutError as exc:
            raise BrokerError(
                f"creating topic {name} on {conn.bootstrap_servers} took longer than {timeout:g}s"
            ) from exc
        created.append(name)
    return created
