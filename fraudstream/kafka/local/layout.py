"""Where the local Kafka of a state folder lives, and which one the command line means.

One node lives in ``<state_dir>/kafka`` (as it always has; its KRaft controller process in ``kafka/controller``);
a cluster of ``n`` nodes in ``<state_dir>/kafka-<n>-nodes``, so switching between them never mixes their data.
Node ``i`` serves clients on FRAUD_KAFKA_LOCAL_PORT + i - 1: node 1 of a cluster answers where a single broker
would, so a client given only FRAUD_KAFKA_LOCAL_PORT still reaches the cluster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from fraudstream.kafka.local.cluster import LocalCluster
from fraudstream.kafka.local.node import running_broker

if TYPE_CHECKING:
    from fraudstream.settings import Settings

_CLUSTER_HOME = re.compile(r"^kafka-(\d+)-nodes$")


def local_home(state_dir: Path, nodes: int) -> Path:
    return state_dir / "kafka" if nodes == 1 else state_dir / f"kafka-{nodes}-nodes"


def local_cluster(settings: Settings, nodes: int | None = None) -> LocalCluster:
    """The local cluster of ``nodes`` nodes (default FRAUD_KAFKA_LOCAL_NODES) on FRAUD_KAFKA_LOCAL_PORT and up."""
    count = nodes or settings.kafka_local_nodes
    ports = [settings.kafka_local_port + i for i in range(count)]
    return LocalCluster(ports=ports, home=local_home(settings.state_dir, count), cache_dir=settings.kafka_cache_dir)


def running_layouts(state_dir: Path) -> list[int]:
    """The node counts of the local clusters in ``state_dir`` of which at least one process runs (the lone
    broker's controller counts)."""
    state_dir = state_dir.resolve()
    lone = state_dir / "kafka"
    homes = {1: [(lone, "broker"), (lone / "controller", "controller")]}
    if state_dir.is_dir():
        for path in state_dir.iterdir():
            match = _CLUSTER_HOME.match(path.name)
            if match and path.is_dir() and int(match.group(1)) > 1:
                homes[int(match.group(1))] = [(path / f"node-{i}", "broker") for i in range(1, int(match.group(1)) + 1)]
    return sorted(
        count for count, processes in homes.items() if any(running_broker(home, name) for home, name in processes)
    )


def resolve_nodes(settings: Settings, requested: int | None = None) -> int:
    """How many nodes a `fraudstream kafka` command means: ``requested`` (its --nodes), else FRAUD_KAFKA_LOCAL_NODES
    when set, else the layout that runs in the state folder (when exactly one does), else 1."""
    if requested:
        return requested
    if "kafka_local_nodes" in settings.model_fields_set:
        return settings.kafka_local_nodes
    running = running_layouts(settings.state_dir)
    return running[0] if len(running) == 1 else settings.kafka_local_nodes
