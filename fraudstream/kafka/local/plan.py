"""The plan of a local cluster: its id and each voter's controller port, kept in a JSON file in the cluster's home.

Every process's ``controller.quorum.voters`` lists all controller ports, so they must stay the same while any
process runs; a port another program took is moved only while the whole cluster is down. The lone broker keeps
its plan in ``meta.json``: the cluster id, the port of its controller-only process (``controller_port``) and that
process's node id (``controller_node_id``).
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
    """The plan in ``file`` for the broker ``nodes`` (node ``i`` at index ``i - 1``) and, for a lone broker, its
    controller-only process ``controller`` (then the one voter; else every node is a voter)."""

    def __init__(self, file: Path, nodes: Sequence[KraftNode], controller: KraftNode | None = None) -> None:
        self.file = file
        self.nodes = tuple(nodes)
        self.controller = controller
        self.voters = (controller,) if controller is not None else self.nodes
        self.client_ports = tuple(node.port for node in self.nodes)

    def settle(self, live: Mapping[int, int], report: Progress = ignore) -> Quorum:
        """The cluster id and controller ports: kept from the plan file, new ones where missing or taken.

        ``live`` maps the node id of each running process (brokers and controller) to its pid. A controller port
        another program took moves only while nothing runs (a running process's voters list cannot change under
        it); the storage's own cluster id wins over the plan's.
        """
        stored = self._read()
        storages = (*self.nodes, *((self.controller,) if self.controller is not None else ()))
        formatted = next((cid for node in storages if (cid := node.formatted_cluster_id())), None)
        cluster_id = formatted or str(stored.get("cluster_id") or new_cluster_id())
        ports = _stored_ports(stored, len(self.voters))
        taken = set(self.client_ports)
        chosen: list[int] = []
        for index, voter in enumerate(self.voters):
            port = ports[index] if ports else None
            mine = voter.node_id in live
            if port is not None and (mine or (port not in taken and not port_in_use(port))):
                chosen.append(port)
                taken.add(port)
                continue
            what = "the KRaft controller" if self.controller is not None else f"Kafka node {voter.node_id}"
            if live and port is not None:
                raise BrokerError(
                    f"controller port {port} of {what} is held by another process; stop it, or "
                    "stop the cluster (`fraudstream kafka down`) so that its next start picks new controller ports"
                )
            picked = self._pick_controller_port(taken)
            if port is not None:
                log.info("controller port of %s moved from %d to %d", what, port, picked)
                report(f"controller port of {what} moved to {picked}")
            chosen.append(picked)
            taken.add(picked)
        controller_id = self.controller.node_id if self.controller is not None else None
        quorum = Quorum(cluster_id, tuple(chosen), controller_node_id=controller_id)
        self._write(quorum)
        return quorum

    def stored_controller_ports(self) -> list[int] | None:
        """The controller ports the plan file records (None when it records none that fit); it changes nothing."""
        return _stored_ports(self._read(), len(self.voters))

    def _read(self) -> dict[str, object]:
        with contextlib.suppress(ValueError, OSError):
            stored = json.loads(self.file.read_text())
            if isinstance(stored, dict):
                return stored
        return {}

    def _write(self, quorum: Quorum) -> None:
        plan: dict[str, object] = {"cluster_id": quorum.cluster_id, "controller_ports": list(quorum.controller_ports)}
        if quorum.controller_node_id is not None:  # the lone broker's controller-only process
            plan["controller_port"] = quorum.controller_ports[0]
            plan["controller_node_id"] = quorum.controller_node_id
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
