"""A local Kafka cluster: ``n`` KRaft nodes on 127.0.0.1, from one jar set.

One node is the development broker. It runs as two processes: a broker-only process and a controller-only one
(node 3000, the quorum's one voter, in ``<home>/controller``), so a broker that crashes (``kill -9``) comes back
to a live controller, which fences the dead incarnation after 5 s and lets the new one register. With broker and
controller in one process, the restarted node elected itself transaction coordinator under its stale registration
and dropped the end markers of a transaction in PrepareCommit (issue #9). Three nodes are each broker and
controller, a quorum of three voters with every topic replicated three times and two replicas required in sync,
so a node can crash (or be restarted, one at a time) while producers with ``acks=all`` and transactions go on.
The cluster's id and the controller ports are kept in a plan file in the cluster's home, so a restart of the whole
cluster or of one node keeps its data, topics and offsets.

``up``, ``down`` and the per-node actions are safe to repeat; a file lock orders them across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException

from fraudstream.exceptions import BrokerError, ToolMissingError
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.jars import KAFKA_VERSION, JarCache, Progress, ignore
from fraudstream.kafka.local.node import BrokerStatus, KraftNode
from fraudstream.kafka.local.plan import QuorumPlan
from fraudstream.kafka.local.prerequisites import INSTALL_JAVA, MIN_JAVA, OR_EXTERNAL, java_major_version, require_tool
from fraudstream.kafka.local.processes import port_in_use
from fraudstream.kafka.local.server_config import BROKER, COMBINED, CONTROLLER, CONTROLLER_NODE_ID, Quorum
from fraudstream.kafka.topics import admin_client

log = logging.getLogger(__name__)

SINGLE_NODE_HEAP = "1g"
CONTROLLER_HEAP = "256m"
"""Heap of the lone broker's controller-only process: it keeps the metadata of one broker and a few topics."""
CLUSTER_NODE_HEAP = "512m"
"""Heap of each node of a multi-node cluster: three JVMs share one machine with everything else."""


@dataclass(frozen=True)
class ClusterStatus:
    """Where every process of the local cluster stands (``running``: every node's process, and the lone broker's
    controller, is alive)."""

    nodes: tuple[BrokerStatus, ...]
    bootstrap: str
    controller: BrokerStatus | None = None
    """The lone broker's controller-only process (None for a cluster of combined nodes)."""

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes) and (self.controller is None or self.controller.running)

    @property
    def any_running(self) -> bool:
        return any(node.running for node in self.nodes) or (self.controller is not None and self.controller.running)

    @property
    def up_count(self) -> int:
        return sum(node.running for node in self.nodes)


class LocalCluster:
    """``len(ports)`` nodes; node ``i`` (1-based) serves clients on ``ports[i-1]``.

    A single node is a broker-only process keeping its files in ``home`` itself, with a controller-only process in
    ``home/controller``; the nodes of a larger cluster are combined broker+controller processes in ``home/node-<i>``.
    """

    def __init__(
        self,
        *,
        ports: Sequence[int],
        home: Path,
        cache_dir: Path,
        heap_max: str | None = None,
        kafka_version: str = KAFKA_VERSION,
        server_overrides: Mapping[str, str] | None = None,
    ) -> None:
        """``server_overrides``: settings of every broker's server.properties to replace or add."""
        if not ports or len(set(ports)) != len(ports):
            raise ValueError(f"a local cluster needs distinct ports, one per node, not {list(ports)}")
        self.ports = tuple(ports)
        self.home = Path(home).expanduser().resolve()
        self.jars = JarCache(cache_dir, kafka_version)
        self.cache_dir = self.jars.cache_dir
        self.kafka_version = kafka_version
        self.heap_max = heap_max or (SINGLE_NODE_HEAP if len(ports) == 1 else CLUSTER_NODE_HEAP)
        lone = len(ports) == 1
        homes = [self.home] if lone else [self.home / f"node-{i}" for i in range(1, len(ports) + 1)]
        self._nodes = tuple(
            KraftNode(
                node_id=i,
                port=port,
                home=node_home,
                libs_dir=self.jars.libs_dir,
                heap_max=self.heap_max,
                roles=BROKER if lone else COMBINED,
                server_overrides=server_overrides,
            )
            for i, (port, node_home) in enumerate(zip(self.ports, homes, strict=True), 1)
        )
        self._controller = (
            KraftNode(
                node_id=CONTROLLER_NODE_ID,
                port=0,
                home=self.home / "controller",
                libs_dir=self.jars.libs_dir,
                heap_max=CONTROLLER_HEAP,
                heap_min="64m",
                roles=CONTROLLER,
                name="controller",
            )
            if lone
            else None
        )
        self.nodes = tuple(ClusterNode(self, node) for node in self._nodes)
        plan_file = self.home / ("meta.json" if lone else "cluster.json")
        self.plan = QuorumPlan(plan_file, self._nodes, self._controller)

    # ---- where things are ------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.ports)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self._nodes)

    @property
    def libs_dir(self) -> Path:
        return self.jars.libs_dir

    @property
    def plan_file(self) -> Path:
        """The cluster id and controller ports (``meta.json`` beside a single node's data, as before clusters)."""
        return self.plan.file

    @property
    def controller_home(self) -> Path | None:
        """Where the lone broker's controller-only process keeps its files (None for a cluster)."""
        return self._controller.home if self._controller is not None else None

    def node(self, node_id: int) -> ClusterNode:
        if not 1 <= node_id <= self.size:
            raise ValueError(f"node ids of this cluster are 1 to {self.size}, not {node_id}")
        return self.nodes[node_id - 1]

    def connection(self) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers=self.bootstrap)

    # ---- jars ------------------------------------------------------------------------------------------------
    def jars_ready(self) -> bool:
        return self.jars.ready()

    def ensure_jars(self, progress: Progress | None = None) -> Path:
        return self.jars.ensure(progress)

    # ---- the whole cluster -----------------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        """Whether each node's process (and the lone broker's controller) runs (reads pid files; changes nothing)."""
        controller = self._controller.status() if self._controller is not None else None
        return ClusterStatus(tuple(node.status() for node in self._nodes), self.bootstrap, controller)

    def ping(self, timeout: float = 3.0) -> bool:
        """True when every node answers and each sees all the cluster's brokers."""
        deadline = time.monotonic() + timeout
        return all(node.ping(max(0.5, deadline - time.monotonic()), brokers=self.size) for node in self._nodes)

    def up(self, timeout: float = 60.0, progress: Progress | None = None) -> ClusterStatus:
        """Start the nodes that are not running (fetching jars and formatting storage the first time), then wait
        until every node answers and sees all the others. Harmless when the cluster already runs."""
        self._bring_up({node.node_id for node in self._nodes}, timeout, progress or ignore)
        return self.status()

    def down(self, timeout: float = 30.0) -> list[int]:
        """Stop every node: SIGTERM to all at once (a clean shutdown), SIGKILL after ``timeout`` s; then the lone
        broker's controller, once its broker is gone (a broker's clean shutdown asks the controller).

        All nodes at once, because a node stopped after the others have gone would wait for a quorum that is not
        there. Returns the pids stopped (the brokers' first).
        """
        with self._locked():
            live = self._live_pids()
            for node_id, pid in live.items():
                self._node(node_id).terminate(pid)
            deadline = time.monotonic() + timeout
            for node_id, pid in live.items():
                self._node(node_id).await_exit(pid, max(0.0, deadline - time.monotonic()))
            stopped = list(live.values())
            controller_pid = self._controller_pid()
            if self._controller is not None and controller_pid is not None:
                self._controller.stop(controller_pid, timeout)
                stopped.append(controller_pid)
            return stopped

    def wait_in_sync(self, timeout: float = 60.0) -> None:
        """Wait until every partition (internal topics too) has a leader and all its replicas in sync."""
        admin = admin_client(self.connection(), log_level=2)
        deadline = time.monotonic() + timeout
        behind: list[str] = []
        while time.monotonic() < deadline:
            try:
                metadata = admin.list_topics(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            except KafkaException:
                continue
            behind = [
                f"{name}[{pid}]"
                for name, topic in metadata.topics.items()
                for pid, part in topic.partitions.items()
                if part.leader < 0 or set(part.isrs) != set(part.replicas)
            ]
            if not behind:
                return
            time.sleep(0.25)
        shown = ", ".join(behind[:5]) + (f" and {len(behind) - 5} more" if len(behind) > 5 else "")
        raise BrokerError(f"partitions still under-replicated after {timeout:g}s: {shown or 'no metadata answer'}")

    def elect_preferred_leaders(self, timeout: float = 30.0) -> None:
        """Give each partition back to its preferred leader (after restarts, leadership piles up on survivors)."""
        from confluent_kafka import ElectionType

        admin = admin_client(self.connection(), log_level=2)
        # confluent-kafka 2.16 documents request_timeout/operation_timeout here, but any keyword raises TypeError
        future = admin.elect_leaders(ElectionType.PREFERRED, None)
        with contextlib.suppress(KafkaException):  # "election not needed" partitions come back as errors
            future.result(timeout=timeout)

    def rolling_restart(self, timeout: float = 120.0, progress: Progress | None = None) -> None:
        """Restart the nodes one after another, as an operator upgrades a cluster: each node is stopped cleanly
        only when every partition is fully in sync, and the next waits until it has caught up again."""
        report = progress or ignore
        for node in self.nodes:
            self.wait_in_sync(timeout)
            report(f"restarting node {node.node_id}")
            node.down(timeout)
            node.up(timeout)
        self.wait_in_sync(timeout)
        self.elect_preferred_leaders()

    # ---- starting nodes --------------------------------------------------------------------------------------
    def _bring_up(self, wanted: set[int], timeout: float, report: Progress) -> None:
        """Start the lone broker's controller when it does not run, waiting until it listens; then the nodes of
        ``wanted`` that do not run; wait until each of ``wanted`` answers and sees every running node registered."""
        deadline = time.monotonic() + timeout
        controller = self._controller
        with self._locked():
            live = self._live_pids()
            for node_id, pid in live.items():
                self._refuse_port_change(self._node(node_id), pid)
            self._refuse_combined_layout()
            controller_pid = self._controller_pid()
            missing = sorted(wanted - set(live))
            start_controller = controller is not None and controller_pid is None
            started: dict[int, int] = {}
            started_controller: int | None = None
            try:
                if missing or start_controller:
                    self._check_ports_free(missing)  # before any download: nobody should wait a minute to learn this
                    self.ensure_jars(report)
                    java = self._checked_java()
                    running = dict(live)
                    if controller is not None and controller_pid is not None:
                        running[controller.node_id] = controller_pid
                    quorum = self.plan.settle(running, report)
                    self._prepare(missing, quorum, java, report, controller=start_controller)
                    if controller is not None and start_controller:
                        report(f"starting the KRaft controller on {controller.bootstrap}")
                        controller_pid = started_controller = controller.spawn(java)
                        self._await_controller(started_controller, deadline, timeout)
                    if missing:
                        where = (
                            self.bootstrap
                            if len(missing) == self.size
                            else ", ".join(self._node(node_id).bootstrap for node_id in missing)
                        )
                        report(f"starting Kafka {self.kafka_version} on {where}")
                        started = {node_id: self._node(node_id).spawn(java) for node_id in missing}
                        report(f"waiting for Kafka on {where}")
                expected = set(live) | set(started)
                pids = {**live, **started}
                self._await_ready(wanted, pids, started, len(expected), deadline, timeout, controller_pid)
            except BaseException:
                for node_id, pid in started.items():  # nothing half-started is left behind
                    self._node(node_id).stop(pid, timeout=10.0)
                if controller is not None and started_controller is not None:
                    controller.stop(started_controller, timeout=10.0)
                raise
            if controller is not None and started_controller is not None:
                log.info("KRaft controller up at %s (pid %d)", controller.bootstrap, started_controller)
            for node_id in sorted(started):
                log.info("Kafka node %d up at %s (pid %d)", node_id, self._node(node_id).bootstrap, started[node_id])

    def _await_ready(
        self,
        wanted: set[int],
        pids: dict[int, int],
        started: dict[int, int],
        brokers: int,
        deadline: float,
        timeout: float,
        controller_pid: int | None = None,
    ) -> None:
        """Poll the nodes of ``wanted`` until each is ready; fail at once when any node's process (or the lone
        broker's controller ``controller_pid``) exits."""
        pending = sorted(wanted)
        clients = {node_id: self._node(node_id).probe_client() for node_id in pending}
        while pending:
            for node_id, pid in pids.items():  # every node, not only the one polled: a dead one stalls the rest
                self._node(node_id).check_alive(pid)
            if self._controller is not None and controller_pid is not None:
                self._controller.check_alive(controller_pid)
            node_id = pending[0]
            node = self._node(node_id)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if node_id in started:
                    raise BrokerError(node.failure(f"Kafka did not answer on {node.bootstrap} within {timeout:g}s"))
                raise BrokerError(
                    node.failure(
                        f"the Kafka broker (pid {pids[node_id]}) runs but does not answer on {node.bootstrap}; "
                        "restart it with `fraudstream kafka down && fraudstream kafka up`"
                    )
                )
            if node.ready(clients[node_id], min(1.0, remaining), brokers=brokers):
                pending.pop(0)
            else:
                time.sleep(0.1)

    def _await_controller(self, pid: int, deadline: float, timeout: float) -> None:
        """Wait until the lone broker's controller listens on its port (it then serves the broker's registration)."""
        controller = self._controller
        assert controller is not None
        while not controller.listening(timeout=1.0):
            controller.check_alive(pid)
            if time.monotonic() >= deadline:
                raise BrokerError(
                    controller.failure(f"the KRaft controller did not listen on {controller.bootstrap} in {timeout:g}s")
                )
            time.sleep(0.1)

    def _refuse_combined_layout(self) -> None:
        """A lone broker's home made before the controller got a process of its own holds the quorum's metadata in
        the broker's storage: a broker-only process cannot start on it. Say what to do instead of failing later."""
        controller = self._controller
        if controller is None or controller.formatted_cluster_id() is not None:
            return
        if self._nodes[0].formatted_cluster_id() is None:
            return
        raise BrokerError(
            f"the Kafka data in {self.home} is of the older layout (one process, broker and controller at once); "
            "this release runs the broker and its KRaft controller as two processes and cannot start on it. "
            f"Stop the old broker with `fraudstream kafka down`, delete {self.home} (its topics and offsets go "
            "with it), then `fraudstream kafka up` starts afresh"
        )

    def _check_ports_free(self, node_ids: list[int]) -> None:
        for node_id in node_ids:
            port = self._node(node_id).port
            if port_in_use(port):
                span = "" if self.size == 1 else f" (this {self.size}-node cluster uses ports {self.ports[0]}+)"
                raise BrokerError(
                    f"port {port} is in use by another process{span}; stop it or set FRAUD_KAFKA_LOCAL_PORT"
                )

    def _refuse_port_change(self, node: KraftNode, pid: int) -> None:
        """A running node keeps the port it started with; say so instead of waiting for it on another port."""
        running = node.running_port()
        if running is not None and running != node.port:
            raise BrokerError(
                f"the local broker already runs on port {running} (pid {pid}), not {node.port}; "
                "stop it with `fraudstream kafka down` before changing FRAUD_KAFKA_LOCAL_PORT"
            )

    def _checked_java(self) -> str:
        java = require_tool("java")
        major = java_major_version(java)
        if major is None:
            log.warning("could not read the version of %s; assuming Java %d+", java, MIN_JAVA)
        elif major < MIN_JAVA:
            raise ToolMissingError(
                f"Kafka {self.kafka_version} needs Java {MIN_JAVA}+, but {java} is Java {major}: "
                f"{INSTALL_JAVA} (and put it first on PATH), {OR_EXTERNAL}"
            )
        return java

    def _prepare(self, node_ids: list[int], quorum: Quorum, java: str, report: Progress, *, controller: bool) -> None:
        """Write the configuration of each node (and of the lone broker's controller, when ``controller``); format
        the storage of those never formatted, all with the same cluster id (in parallel)."""
        nodes = [self._node(node_id) for node_id in node_ids]
        if controller and self._controller is not None:
            nodes.insert(0, self._controller)
        fresh = []
        for node in nodes:
            node.configure(quorum)
            if node.formatted_cluster_id() is None:
                fresh.append(node)
        if not fresh:
            return
        report("formatting the storage of " + ("the broker" if self.size == 1 else f"{len(fresh)} node(s)"))
        formatting = [(node, node.start_format(java, quorum.cluster_id)) for node in fresh]
        failure: BrokerError | None = None
        for node, process in formatting:
            try:
                node.finish_format(process, quorum.cluster_id)
            except BrokerError as exc:
                failure = failure or exc
        if failure is not None:
            if self._controller is not None and self._controller in fresh:
                for node in fresh:  # an unformatted controller beside a formatted broker reads as the old layout
                    (node.data_dir / "meta.properties").unlink(missing_ok=True)
            raise failure

    # ---- bookkeeping -----------------------------------------------------------------------------------------
    def _node(self, node_id: int) -> KraftNode:
        return self._nodes[node_id - 1]

    def _live_pids(self) -> dict[int, int]:
        return {node.node_id: pid for node in self._nodes if (pid := node.live_pid(cleanup=True)) is not None}

    def _controller_pid(self) -> int | None:
        return self._controller.live_pid(cleanup=True) if self._controller is not None else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One up/down at a time per cluster home, across processes."""
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class ClusterNode:
    """One node of a :class:`LocalCluster`, for an operator's (or a fault test's) hands: stop, kill, restart it.

    For the lone broker these act on the broker process only; its controller keeps running.
    """

    def __init__(self, cluster: LocalCluster, node: KraftNode) -> None:
        self._cluster = cluster
        self._node = node

    def __repr__(self) -> str:
        return f"ClusterNode(node_id={self.node_id}, bootstrap={self.bootstrap!r})"

    @property
    def node_id(self) -> int:
        return self._node.node_id

    @property
    def port(self) -> int:
        return self._node.port

    @property
    def bootstrap(self) -> str:
        return self._node.bootstrap

    @property
    def home(self) -> Path:
        return self._node.home

    @property
    def log_file(self) -> Path:
        return self._node.log_file

    @property
    def data_dir(self) -> Path:
        return self._node.data_dir

    @property
    def pid_file(self) -> Path:
        return self._node.pid_file

    @property
    def properties_file(self) -> Path:
        return self._node.properties_file

    @property
    def log4j_file(self) -> Path:
        return self._node.log4j_file

    def status(self) -> BrokerStatus:
        return self._node.status()

    def ping(self, timeout: float = 3.0) -> bool:
        """True when this node answers a metadata request within ``timeout`` s."""
        return self._node.ping(timeout)

    def up(self, timeout: float = 60.0, progress: Progress | None = None) -> BrokerStatus:
        """Start this node if it does not run (same home, same ports) and wait until it is registered again (the
        lone broker's controller too, if it is not running)."""
        self._cluster._bring_up({self.node_id}, timeout, progress or ignore)
        return self.status()

    def down(self, timeout: float = 30.0) -> int | None:
        """Stop this node cleanly (SIGTERM, SIGKILL after ``timeout`` s); the pid stopped, or None."""
        with self._cluster._locked():
            pid = self._node.live_pid(cleanup=True)
            if pid is None:
                return None
            self._node.stop(pid, timeout)
            return pid

    def kill(self) -> int | None:
        """SIGKILL this node at once, as a crash would: no clean shutdown, no lock. The pid killed, or None."""
        return self._node.kill()
