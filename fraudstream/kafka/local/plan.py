"""The plan of a local cluster: its id and each node's controller port, kept in a JSON file in the cluster's home.

Every node's ``controller.quorum.voters`` lists all controller ports, so they must stay the same while any node
runs; a port another program took is moved only while the whole cluster is down. A single node keeps its plan in
``meta.json`` as it did before clusters (``controller_port`` is still written for older releases).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.local.jars import Progress, ignore
from fraudstream.kafka.local.node import KraftNode
from fraudstream.kafka.local.processes import free_port, port_in_use
from fraudstream.kafka.local.server_config import Quorum, new_cluster_id

log = logging.getLogger(__name__)


class QuorumPlan:
    """The plan in ``file`` for ``nodes`` (node ``i`` at index ``i - 1``)."""

    def __init__(self, file: Path, nodes: Sequence[KraftNode]) -> None:
        self.file = file
        self.nodes = tuple(nodes)
        self.client_ports = tuple(node.port for node in self.nodes)

    def settle(self, live: Mapping[int, int], report: Progress = ignore) -> Quorum:
        """The cluster id and controller ports: kept from the plan file, new ones where missing or taken.

        A controller port another program took moves only while no node runs (a running node's voters list
        cannot change under it); the storage's own cluster id wins over the plan's.
        """
        stored = self._read()
        formatted = next((cid for node in self.nodes if (cid := node.formatted_cluster_id())), None)
        cluster_id = formatted or str(stored.get("cluster_id") or new_cluster_id())
        ports = _stored_ports(stored, len(self.nodes))
        taken = set(self.client_ports)
        chosen: list[int] = []
        for node in self.nodes:
            port = ports[node.node_id - 1] if ports else None
            mine = node.node_id in live
            if port is not None and (mine or (port not in taken and not port_in_use(port))):
                chosen.append(port)
                taken.add(port)
                continue
            if live and port is not None:
                raise BrokerError(
                    f"controller port {port} of Kafka node {node.node_id} is held by another process; stop it, or "
                    "stop the cluster (`fraudstream kafka down`) so that its next start picks new controller ports"
                )
            picked = self._pick_controller_port(taken)
            if port is not None:
                log.info("controller port of node %d moved from %d to %d", node.node_id, port, picked)
                report(f"controller port of node {node.node_id} moved to {picked}")
            chosen.append(picked)
            taken.add(picked)
        quorum = Quorum(cluster_id, tuple(chosen))
        self._write(quorum)
        return quorum

    def _read(self) -> dict[str, object]:
        with contextlib.suppress(ValueError, OSError):
            stored = json.loads(self.file.read_text())
            if isinstance(stored, dict):
                return stored
        return {}

    def _write(self, quorum: Quorum) -> None:
        plan: dict[str, object] = {"cluster_id": quorum.cluster_id, "controller_ports": list(quorum.controller_ports)}
        if len(self.nodes) == 1:
            plan["controller_port"] = quorum.controller_ports[0]  # what single-node homes recorded before clusters
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps(plan))

    @staticmethod
    def _pick_controller_port(taken: set[int]) -> int:
        while True:
            port = free_port()
            if port not in taken:
                return port


def _stored_ports(stored: dict[str, object], size: int) -> list[int] | None:
    """The plan's controller ports when they are ``size`` valid ports (a single node's legacy key included)."""
    ports = stored.get("controller_ports")
    if ports is None and "controller_port" in stored:
        ports = [stored["controller_port"]]
    if not isinstance(ports, list) or len(ports) != size:
        return None
    if not all(isinstance(port, int) and 0 < port < 65536 for port in ports) or len(set(ports)) != size:
        return None
    return ports
