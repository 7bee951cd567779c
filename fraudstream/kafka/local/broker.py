"""The local Apache Kafka broker: one KRaft broker on 127.0.0.1 and its controller, run on the machine's Java.

Our machines have no Docker engine, so development, tests and the demo run a real broker from the official jars
(fetched once by :mod:`fraudstream.kafka.local.jars`). It runs as two processes: a broker-only process, whose data,
log, pid and metadata live in a home folder (``<state_dir>/kafka``), and a controller-only KRaft process (node
3000, 256 MB of heap) in ``<home>/controller``, so a restart keeps topics and offsets and a broker killed with
``kill -9`` comes back to a live controller. It is a :class:`LocalCluster` of one node with the paths of a single
broker; fault tests stop, kill and restart the broker through this class (the controller stays up).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.cluster import SINGLE_NODE_HEAP, LocalCluster
from fraudstream.kafka.local.jars import KAFKA_VERSION, Progress
from fraudstream.kafka.local.node import BrokerStatus

if TYPE_CHECKING:
    from fraudstream.settings import Settings


class LocalBroker:
    """One KRaft broker on ``127.0.0.1:<port>`` (with its controller) whose state lives in ``home`` and whose jars
    live in ``cache_dir``.

    ``up`` and ``down`` (both processes) are safe to repeat; several processes may call them (a file lock orders
    them). ``status`` and ``kill`` are the broker's alone.
    """

    def __init__(
        self,
        *,
        port: int,
        home: Path,
        cache_dir: Path,
        heap_max: str = SINGLE_NODE_HEAP,
        kafka_version: str = KAFKA_VERSION,
        server_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.cluster = LocalCluster(
            ports=[port],
            home=home,
            cache_dir=cache_dir,
            heap_max=heap_max,
            kafka_version=kafka_version,
            server_overrides=server_overrides,
        )
        self._node = self.cluster.nodes[0]
        self.port = port
        self.home = self.cluster.home
        self.jars = self.cluster.jars
        self.cache_dir = self.cluster.cache_dir
        self.heap_max = heap_max
        self.kafka_version = kafka_version

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        """The broker of ``fraudstream kafka up``: FRAUD_KAFKA_LOCAL_PORT, <state_dir>/kafka, FRAUD_KAFKA_CACHE_DIR."""
        from fraudstream.kafka.local.layout import local_home

        home = local_home(settings.state_dir, 1)
        return cls(port=settings.kafka_local_port, home=home, cache_dir=settings.kafka_cache_dir)

    # ---- where things are ------------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return self._node.bootstrap

    @property
    def libs_dir(self) -> Path:
        return self.jars.libs_dir

    @property
    def data_dir(self) -> Path:
        return self._node.data_dir

    @property
    def log_file(self) -> Path:
        return self._node.log_file

    @property
    def pid_file(self) -> Path:
        return self._node.pid_file

    @property
    def controller_log_file(self) -> Path:
        return self._controller_home / "controller.log"

    @property
    def controller_pid_file(self) -> Path:
        return self._controller_home / "controller.pid"

    @property
    def _controller_home(self) -> Path:
        home = self.cluster.controller_home
        assert home is not None  # a cluster of one node always has a controller of its own
        return home

    @property
    def meta_file(self) -> Path:
        return self.cluster.plan_file

    @property
    def properties_file(self) -> Path:
        return self._node.properties_file

    @property
    def log4j_file(self) -> Path:
        return self._node.log4j_file

    def connection(self) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers=self.bootstrap)

    # ---- jars ------------------------------------------------------------------------------------------------
    def jars_ready(self) -> bool:
        """True when the jars were resolved completely before (no network needed)."""
        return self.jars.ready()

    def ensure_jars(self, progress: Progress | None = None) -> Path:
        """Resolve the jars with Maven once (about a minute from nothing), then reuse them; returns the folder."""
        return self.jars.ensure(progress)

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def status(self) -> BrokerStatus:
        """Whether this home's broker process runs (it reads the pid file; it changes nothing)."""
        return self._node.status()

    def controller_status(self) -> BrokerStatus:
        """Whether this home's KRaft controller process runs (it reads the pid file; it changes nothing)."""
        controller = self.cluster.status().controller
        assert controller is not None
        return controller

    def ping(self, timeout: float = 3.0) -> bool:
        """True when the broker answers a metadata request within ``timeout`` seconds."""
        return self._node.ping(timeout)

    def up(self, timeout: float = 60.0, progress: Progress | None = None) -> BrokerStatus:
        """Start the controller, then the broker (fetching jars and formatting storage the first time), and wait
        until the broker answers. Harmless when they already run: it waits for the broker and returns its status.
        """
        self.cluster.up(timeout, progress)
        return self.status()

    def down(self, timeout: float = 30.0) -> int | None:
        """Stop the broker, then its controller: SIGTERM (a clean shutdown), SIGKILL after ``timeout`` s each.
        Returns the broker's pid stopped, if one ran."""
        broker = self._node.status().pid
        stopped = self.cluster.down(timeout)
        return broker if broker in stopped else None

    def kill(self) -> int | None:
        """SIGKILL the broker process at once, as a crash would (no clean shutdown); its controller keeps running.
        The pid killed, or None if no broker ran."""
        return self._node.kill()
