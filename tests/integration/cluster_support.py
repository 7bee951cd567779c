"""The session's three-node Kafka cluster, for the tests that ask for it, and what fault tests need to aim at it.

``kafka_cluster3`` starts one local cluster of three combined KRaft nodes per session, and only when a test
requests it; ``cluster3`` hands it to a test with every node up and every partition in sync, whatever the test
before it killed. The cluster lives in ``<state>/kafka-3-nodes`` on three consecutive ports, the layout of
``fraudstream kafka up --nodes 3``, so a `fraudstream kafka ...` process started with FRAUD_STATE_DIR=<state> and
FRAUD_KAFKA_LOCAL_PORT=<first port> addresses the very same cluster.

Aiming a fault: :func:`busiest_leader` (the node leading the most partitions of a topic) and
:func:`transaction_coordinator` (the node coordinating a transactional.id); then ``cluster.node(i).kill()``
(SIGKILL), ``.up()`` (same home, same ports), ``cluster.rolling_restart()``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer

from fraudstream.kafka.clients import producer_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.cluster import LocalCluster
from fraudstream.kafka.local.layout import local_home
from fraudstream.kafka.local.processes import free_port_run
from fraudstream.kafka.topics import admin_client

from .child_env import child_env

log = logging.getLogger(__name__)

FRAUDSTREAM = Path(sys.executable).with_name("fraudstream")
TRANSACTION_STATE = "__transaction_state"
CLUSTER_START_TIMEOUT_S = 180.0


# ---- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kafka_cluster3(tmp_path_factory: pytest.TempPathFactory, kafka_cache_dir: Path) -> Iterator[LocalCluster]:
    """A local cluster of three KRaft nodes (3 voters; topics at replication 3, min.insync.replicas 2).

    Started once per session when a test first asks for it, stopped at the end of the session.
    """
    if shutil.which("java") is None:
        pytest.skip("the local three-node cluster needs Java 17+")
    state = tmp_path_factory.mktemp("cluster3-state")
    first = free_port_run(3)
    cluster = LocalCluster(ports=[first, first + 1, first + 2], home=local_home(state, 3), cache_dir=kafka_cache_dir)
    try:
        started = time.monotonic()
        cluster.up(timeout=CLUSTER_START_TIMEOUT_S)
        log.info("three-node cluster up at %s in %.1f s", cluster.bootstrap, time.monotonic() - started)
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def cluster3(kafka_cluster3: LocalCluster) -> LocalCluster:
    """The session's three-node cluster, every node up and every partition in sync (undoes an earlier test's kill)."""
    kafka_cluster3.up(timeout=CLUSTER_START_TIMEOUT_S)
    kafka_cluster3.wait_in_sync(timeout=120)
    return kafka_cluster3


def cluster_cli_env(cluster: LocalCluster, **extra: str) -> dict[str, str]:
    """The environment of a `fraudstream` process that addresses ``cluster`` as its local Kafka."""
    fields = {"state_dir": cluster.home.parent, "kafka_local_port": cluster.ports[0]}
    return child_env({**fields, "kafka_cache_dir": cluster.cache_dir}, COLUMNS="200", **extra)


# ---- who leads, who coordinates ---------------------------------------------------------------------------------
def partition_leaders(conn: KafkaConnection, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """Partition -> id of the node leading it (-1 while it has no leader)."""
    metadata = admin_client(conn).list_topics(topic, timeout=timeout)
    return {pid: part.leader for pid, part in metadata.topics[topic].partitions.items()}


def leader_counts(conn: KafkaConnection, topic: str) -> dict[int, int]:
    """Node id -> how many partitions of ``topic`` it leads (nodes leading none are listed with 0)."""
    metadata = admin_client(conn).list_topics(timeout=10)
    counts = Counter(part.leader for part in metadata.topics[topic].partitions.values() if part.leader >= 0)
    return {node_id: counts.get(node_id, 0) for node_id in sorted(metadata.brokers)}


def busiest_leader(conn: KafkaConnection, topic: str) -> int:
    """The node that leads the most partitions of ``topic`` (the lowest id among equals)."""
    counts = leader_counts(conn, topic)
    return max(sorted(counts), key=lambda node_id: counts[node_id])


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode()`` (a signed 32-bit sum over UTF-16 code units)."""
    value = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        value = (31 * value + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def transaction_state_partition(transactional_id: str, partitions: int) -> int:
    """The ``__transaction_state`` partition of a transactional.id, as the broker computes it."""
    hashed = java_string_hash(transactional_id)
    return (0 if hashed == -(1 << 31) else abs(hashed)) % partitions  # Kafka's Utils.abs, then modulo


def transaction_coordinator(conn: KafkaConnection, transactional_id: str) -> int:
    """The node coordinating ``transactional_id``: the leader of its ``__transaction_state`` partition.

    Valid once the transaction state topic exists (any transactional producer's init_transactions creates it).
    """
    leaders = partition_leaders(conn, TRANSACTION_STATE)
    return leaders[transaction_state_partition(transactional_id, len(leaders))]


def transaction_coordinator_by_tool(cluster: LocalCluster, transactional_id: str) -> int:
    """The coordinator as Kafka itself reports it: `fraudstream kafka tool kafka-transactions describe`."""
    result = subprocess.run(
        [str(FRAUDSTREAM), "kafka", "tool", "kafka-transactions", "describe", "--transactional-id", transactional_id],
        env=cluster_cli_env(cluster),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    header, values = (line.split("\t") for line in result.stdout.strip().splitlines()[-2:])
    return int(dict(zip((name.strip() for name in header), values, strict=False))["CoordinatorId"])


# ---- writing with acks=all --------------------------------------------------------------------------------------
@dataclass
class Deliveries:
    """What an acks=all producer got back: the keys acknowledged and the errors."""

    acked: set[bytes] = field(default_factory=set)
    errors: list[KafkaError] = field(default_factory=list)

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.errors.append(error)
        else:
            self.acked.add(message.key())


def acks_all_producer(conn: KafkaConnection, client_id: str) -> Producer:
    """The project's idempotent producer (acks=all), with a short delivery timeout so a stuck write fails a test."""
    return Producer(producer_config(conn, client_id=client_id, **{"delivery.timeout.ms": 60_000}))


def write_acks_all(conn: KafkaConnection, topic: str, keys: list[bytes], timeout: float = 90.0) -> Deliveries:
    """Send one record per key with acks=all; return once every record is acknowledged or has failed."""
    deliveries = Deliveries()
    producer = acks_all_producer(conn, "fault-writer")
    for key in keys:
        producer.produce(topic, key=key, value=b"v-" + key, on_delivery=deliveries)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} records neither acknowledged nor failed after {timeout:g}s"
    return deliveries
