"""A local Kafka cluster: ``n`` KRaft nodes on 127.0.0.1 (each broker and controller), from one jar set.

One node is the development broker; three form a quorum of three voters with every topic replicated three times
and two replicas required in sync, so a node can crash (or be restarted, one at a time) while producers with
``acks=all`` and transactions go on. The cluster's id and the controller port of each node are kept in a plan
file in the cluster's home, so a restart of the whole cluster or of one node keeps its data, topics and offsets.

``up``, ``down`` and the per-node actions are safe to repeat; a file lock orders them across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator, Sequence
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
from fraudstream.kafka.local.server_config import Quorum
from fraudstream.kafka.topics import admin_client

log = logging.getLogger(__name__)

SINGLE_NODE_HEAP = "1g"
CLUSTER_NODE_HEAP = "512m"
"""Heap of each node of a multi-node cluster: three JVMs share one machine with everything else."""


@dataclass(frozen=True)
class ClusterStatus:
    """Where every node of the local cluster stands (``running``: every node's process is alive)."""

    nodes: tuple[BrokerStatus, ...]
    bootstrap: str

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes)

    @property
    def any_running(self) -> bool:
        return any(node.running for node in self.nodes)

    @property
    def up_count(self) -> int:
        return sum(node.running for node in self.nodes)


class LocalCluster:
    """``len(ports)`` nodes; node ``i`` (1-based) serves clients on ``ports[i-1]``.

    A single node keeps its files in ``home`` itself; nodes of a larger cluster in ``home/node-<i>``.
    """

    def __init__(
        self,
        *,
        ports: Sequence[int],
        home: Path,
        cache_dir: Path,
        heap_max: str | None = None,
        kafka_version: str = KAFKA_VERSION,
    ) -> None:
        if not ports or len(set(ports)) != len(ports):
            raise ValueError(f"a local cluster needs distinct ports, one per node, not {list(ports)}")
        self.ports = tuple(ports)
        self.home = Path(home).expanduser().resolve()
        self.jars = JarCache(cache_dir, kafka_version)
        self.cache_dir = self.jars.cache_dir
        self.kafka_version = kafka_version
        self.heap_max = heap_max or (SINGLE_NODE_HEAP if len(ports) == 1 else CLUSTER_NODE_HEAP)
        homes = [self.home] if len(ports) == 1 else [self.home / f"node-{i}" for i in range(1, len(ports) + 1)]
        self._nodes = tuple(
            KraftNode(node_id=i, port=port, home=node_home, libs_dir=self.jars.libs_dir, heap_max=self.heap_max)
            for i, (port, node_home) in enumerate(zip(self.ports, homes, strict=True), 1)
        )
        self.nodes = tuple(ClusterNode(self, node) for node in self._nodes)
        self.plan = QuorumPlan(self.home / ("meta.json" if self.size == 1 else "cluster.json"), self._nodes)

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
        """Whether each node's process runs (reads pid files; changes nothing)."""
        return ClusterStatus(tuple(node.status() for node in self._nodes), self.bootstrap)

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
        """Stop every node: SIGTERM to all at once (a clean shutdown), SIGKILL after ``timeout`` s.

        All at once, because a node stopped after the others have gone would wait for a quorum that is not there.
        Returns the pids stopped.
        """
        with self._locked():
            live = self._live_pids()
            for node_id, pid in live.items():
                self._node(node_id).terminate(pid)
            deadline = time.monotonic() + timeout
            for node_id, pid in live.items():
                self._node(node_id).await_exit(pid, max(0.0, deadline - time.monotonic()))
            return list(live.values())

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
        """Start the nodes of ``wanted`` that do not run; wait until each of ``wanted`` answers and sees every
        running node registered."""
        deadline = time.monotonic() + timeout
        with self._locked():
            live = self._live_pids()
            for node_id, pid in live.items():
                self._refuse_port_change(self._node(node_id), pid)
            missing = sorted(wanted - set(live))
            started: dict[int, int] = {}
            if missing:
                self._check_ports_free(missing)  # before any download: nobody should wait a minute to learn this
                self.ensure_jars(report)
                java = self._checked_java()
                quorum = self.plan.settle(live, report)
                self._prepare(missing, quorum, java, report)
                where = (
                    self.bootstrap
                    if len(missing) == self.size
                    else ", ".join(self._node(node_id).bootstrap for node_id in missing)
                )
                report(f"starting Kafka {self.kafka_version} on {where}")
                started = {node_id: self._node(node_id).spawn(java) for node_id in missing}
                report(f"waiting for Kafka on {where}")
            expected = set(live) | set(started)
            try:
                self._await_ready(wanted, {**live, **started}, started, len(expected), deadline, timeout)
            except BaseException:
                for node_id, pid in started.items():  # nothing half-started is left behind
                    self._node(node_id).stop(pid, timeout=10.0)
                raise
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
    ) -> None:
        """Poll the nodes of ``wanted`` until each is ready; fail at once when any node's process exits."""
        pending = sorted(wanted)
        clients = {node_id: self._node(node_id).probe_client() for node_id in pending}
        while pending:
            for node_id, pid in pids.items():  # every node, not only the one polled: a dead one stalls the rest
                self._node(node_id).check_alive(pid)
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

    def _prepare(self, node_ids: list[int], quorum: Quorum, java: str, report: Progress) -> None:
        """Write each node's configuration; format the storage of those never formatted (in parallel)."""
        fresh = []
        for node_id in node_ids:
            node = self._node(node_id)
            node.configure(quorum)
            if node.formatted_cluster_id() is None:
                fresh.append(node)
        if fresh:
            report("formatting the storage of " + ("the broker" if self.size == 1 else f"{len(fresh)} node(s)"))
            formatting = [(node, node.start_format(java, quorum.cluster_id)) for node in fresh]
            for node, process in formatting:
                node.finish_format(process, quorum.cluster_id)

    # ---- bookkeeping -----------------------------------------------------------------------------------------
    def _node(self, node_id: int) -> KraftNode:
        return self._nodes[node_id - 1]

    def _live_pids(self) -> dict[int, int]:
        return {node.node_id: pid for node in self._nodes if (pid := node.live_pid(cleanup=True)) is not None}

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
    """One node of a :class:`LocalCluster`, for an operator's (or a fault test's) hands: stop, kill, restart it."""

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
        """Start this node if it does not run (same home, same ports) and wait until it is registered again."""
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
