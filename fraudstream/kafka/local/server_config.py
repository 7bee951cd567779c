"""What each local KRaft process is told: its quorum (cluster id, voters) and its server.properties.

The lone local broker runs as two processes: a controller-only process (node :data:`CONTROLLER_NODE_ID`, the one
voter) and a broker-only process (node 1), so a broker killed with ``kill -9`` comes back to a live controller
that fences its old incarnation. Each node of a multi-node cluster is broker and controller at once; ``n`` nodes
form a quorum of ``n`` voters. Replication follows the broker count: topics and Kafka's internal topics (consumer
offsets, transaction state, share-group state) get ``min(n, 3)`` replicas and a ``min.insync.replicas`` of 2 from
3 replicas on, so an ``acks=all`` write or a transaction commit survives the loss of one node of three. Every
broker heartbeats each second and is fenced after 5 s without one (:data:`BROKER_SESSION_TIMEOUT_MS`).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fraudstream.kafka.local.processes import HOST
from fraudstream.kafka.topics import min_insync_replicas_for

MAX_REPLICATION = 3
"""Replicas per partition on a local cluster of 3 nodes or more (Kafka's usual choice; more buys little here)."""
CONTROLLER_NODE_ID = 3000
"""Node id of the lone broker's controller-only process (far from the brokers' ids 1, 2, ...)."""
BROKER_SESSION_TIMEOUT_MS = 5000
BROKER_HEARTBEAT_INTERVAL_MS = 1000
"""How soon the controllers fence a broker that stopped heartbeating (a ``kill -9``). In a multi-node cluster this
moves its partitions' leadership and its coordinators to the others: Kafka's defaults (9 s, heartbeats every 2 s)
left the scorer's transactions waiting 10-15 s for a killed leader or coordinator on our 2-core machine (14.6 s
at load 20), against the 15 s the scorer may stop for; with 6 s a new leader still took 10.6 s once at load 22,
past the scorer's 10 s transaction. Five missed heartbeats of 1 s still spare a node that is only slow (the
defaults spare four and a half). For the lone broker it bounds how long its restarted incarnation waits for the
controller to fence the killed one before it may register again (DUPLICATE_BROKER_REGISTRATION until then)."""


@dataclass(frozen=True)
class Quorum:
    """The cluster id and the port of each voter.

    Without ``controller_node_id`` every broker node is a controller too (node ``i`` is voter ``i``, 1-based); with
    it, the one voter is a controller-only process of that node id, and ``controller_ports`` holds its port alone.
    """

    cluster_id: str
    controller_ports: tuple[int, ...]
    host: str = HOST
    controller_node_id: int | None = None

    @property
    def nodes(self) -> int:
        """How many broker nodes the quorum serves (one per voter, or the lone broker of a dedicated controller)."""
        return len(self.controller_ports)

    @property
    def voter_ids(self) -> tuple[int, ...]:
        if self.controller_node_id is not None:
            return (self.controller_node_id,)
        return tuple(range(1, len(self.controller_ports) + 1))

    @property
    def voters(self) -> str:
        """``controller.quorum.voters``: ``1@host:port,2@host:port,...`` (``3000@host:port`` for the lone broker)."""
        return ",".join(
            f"{node_id}@{self.host}:{port}" for node_id, port in zip(self.voter_ids, self.controller_ports, strict=True)
        )

    @property
    def replication_factor(self) -> int:
        return min(self.nodes, MAX_REPLICATION)

    @property
    def min_insync_replicas(self) -> int:
        return min_insync_replicas_for(self.replication_factor)

    def controller_port(self, node_id: int) -> int:
        return self.controller_ports[self.voter_ids.index(node_id)]


COMBINED = "broker,controller"
BROKER = "broker"
CONTROLLER = "controller"


def render_server_properties(
    *,
    node_id: int,
    port: int | None,
    quorum: Quorum,
    data_dir: Path,
    roles: str = COMBINED,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """server.properties of one KRaft process of ``quorum`` with ``roles`` (combined, broker-only or
    controller-only), sized for one machine. ``port`` is the client port (unused by a controller-only process);
    ``overrides`` replace or add settings (e.g. benchmarks/scorer.py: Kafka's own group.initial.rebalance.delay.ms)."""
    host = quorum.host
    replicas, min_isr = str(quorum.replication_factor), str(quorum.min_insync_replicas)
    client = f"PLAINTEXT://{host}:{port}"
    controller = f"CONTROLLER://{host}:{quorum.controller_port(node_id)}" if roles != BROKER else None
    listeners = [listener for listener in (None if roles == CONTROLLER else client, controller) if listener]
    settings = {"process.roles": roles, "node.id": str(node_id), "controller.quorum.voters": quorum.voters}
    settings["listeners"] = ",".join(listeners)
    if roles != CONTROLLER:
        settings["advertised.listeners"] = client
        settings["inter.broker.listener.name"] = "PLAINTEXT"
    settings["controller.listener.names"] = "CONTROLLER"
    settings |= {
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir).replace("\\", "\\\\"),
        # topic defaults: KRaft's controller applies them to CreateTopics, brokers to their internal topics
        "num.partitions": "3",
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        # Kafka's own 10 s sweep for timed-out transactions is kept: with a 1 s sweep (and 10 s scorer
        # transactions) a scorer whose transaction spanned a 60 s outage never read its committed offsets again in
        # 4 of 4 runs of tests/integration/test_stream_outage.py; with the defaults in 3 of 11 (both measured when
        # the lone broker was its own controller, whose restarted node dropped end markers: README, "Always scoring").
        # the controller fences a silent broker after 5 s; brokers heartbeat each second (both ends read both keys)
        "broker.session.timeout.ms": str(BROKER_SESSION_TIMEOUT_MS),
        "broker.heartbeat.interval.ms": str(BROKER_HEARTBEAT_INTERVAL_MS),
    }
    settings |= dict(overrides or {})
    header = "# Written by fraudstream at each `fraudstream kafka up`: edits here are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in settings.items())


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64 without padding (22 chars), as Kafka's tool makes."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids ids a command line would read as an option
            return cluster_id


def formatted_cluster_id(data_dir: Path) -> str | None:
    """The cluster id a formatted storage folder records in meta.properties, if it is formatted."""
    meta = data_dir / "meta.properties"
    if not meta.is_file():
        return None
    for line in meta.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "cluster.id":
            return value.strip()
    return None
