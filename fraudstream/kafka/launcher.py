"""The local Apache Kafka broker: one KRaft node (broker + controller) on 127.0.0.1, run on the machine's Java.

Our machines have no Docker engine, so development, tests and the demo run a real broker from the official jars
(fetched once by :mod:`fraudstream.kafka.jars`); the node keeps its data, log, pid and metadata in a home folder
(``<state_dir>/kafka``), so a restart keeps topics and offsets.

Every process-level action (start, stop) checks that the pid on file really is this broker before signalling it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fraudstream.exceptions import BrokerError, ToolMissingError
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.jars import KAFKA_VERSION, JarCache, Progress, ignore
from fraudstream.kafka.processes import HOST, free_port, port_in_use, process_alive, process_cmdline, tail, wait_exit
from fraudstream.kafka.tools import INSTALL_JAVA, MIN_JAVA, OR_EXTERNAL, java_major_version, require_tool
from fraudstream.kafka.topics import admin_client, probe_cluster

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

    from fraudstream.settings import Settings

log = logging.getLogger(__name__)


_BROKER_MAIN = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
# The readiness probe retries fast and stays quiet: "connection refused" is expected while the JVM starts.
_QUIET_PROBE = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 500, "log_level": 2}


@dataclass(frozen=True)
class BrokerStatus:
    """Where the local broker stands. ``running`` means its process is alive (not necessarily answering yet)."""

    running: bool
    bootstrap: str
    pid: int | None
    log_file: Path
    data_dir: Path


@dataclass(frozen=True)
class NodeMeta:
    """What must stay the same across restarts of one broker home: its cluster id and its controller port."""

    cluster_id: str
    controller_port: int


def render_server_properties(*, port: int, controller_port: int, data_dir: Path, host: str = HOST) -> str:
    """server.properties of a single combined broker+controller node, sized for one machine (replication 1)."""
    voters = f"1@{host}:{controller_port}"
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir).replace("\\", "\\\\"),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    header = "# Written by fraudstream at each `fraudstream kafka up`: edits here are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in settings.items())


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64 without padding (22 chars), as Kafka's tool makes."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids ids a command line would read as an option
            return cluster_id


class LocalBroker:
    """One KRaft node on ``127.0.0.1:<port>`` whose state lives in ``home`` and whose jars live in ``cache_dir``.

    ``up`` and ``down`` are safe to repeat; several processes may call them (a file lock orders them).
    """

    def __init__(
        self, *, port: int, home: Path, cache_dir: Path, heap_max: str = "1g", kafka_version: str = KAFKA_VERSION
    ) -> None:
        self.port = port
        self.home = Path(home).expanduser().resolve()
        self.jars = JarCache(cache_dir, kafka_version)
        self.cache_dir = self.jars.cache_dir
        self.heap_max = heap_max
        self.kafka_version = kafka_version
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        """The broker of ``fraudstream kafka up``: FRAUD_KAFKA_LOCAL_PORT, <state_dir>/kafka, FRAUD_KAFKA_CACHE_DIR."""
        home = settings.state_dir / "kafka"
        return cls(port=settings.kafka_local_port, home=home, cache_dir=settings.kafka_cache_dir)

    # ---- where things are ------------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.jars.libs_dir

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def meta_file(self) -> Path:
        return self.home / "meta.json"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.home / "log4j2.yaml"

    def connection(self) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers=self.bootstrap)

    # ---- jars ------------------------------------------------------------------------------------------------
    def jars_ready(self) -> bool:
        """True when the jars were resolved completely before (no network needed)."""
        return self.jars.ready()

    def ensure_jars(self, progress: Progress | None = None) -> Path:
        """Resolve the broker's jars with Maven once (about a minute, 45 MB), then reuse them; returns the folder."""
        return self.jars.ensure(progress)

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def status(self) -> BrokerStatus:
        """Whether this home's broker process runs (it reads the pid file; it changes nothing)."""
        pid = self._live_pid(cleanup=False)
        return BrokerStatus(pid is not None, self.bootstrap, pid, self.log_file, self.data_dir)

    def ping(self, timeout: float = 3.0) -> bool:
        """True when the broker answers a metadata request within ``timeout`` seconds."""
        try:
            probe_cluster(self.connection(), timeout=timeout, client=self._probe_client())
        except BrokerError:
            return False
        return True

    def up(self, timeout: float = 60.0, progress: Progress | None = None) -> BrokerStatus:
        """Start the broker (fetching jars and formatting storage the first time) and wait until it answers.

        Harmless when it already runs: it waits for it to answer and returns its status.
        """
        report = progress or ignore
        with self._locked():
            pid = self._live_pid(cleanup=True)
            if pid is not None:
                self._refuse_port_change(pid)
                self._wait_ready(pid, timeout, started_here=False)
                log.info("Kafka already up at %s (pid %d)", self.bootstrap, pid)
                return self.status()
            if port_in_use(self.port):  # checked first: no one should wait for a download to learn this
                raise BrokerError(
                    f"port {self.port} is in use by another process; stop it or set FRAUD_KAFKA_LOCAL_PORT"
                )
            self.ensure_jars(report)
            java = self._checked_java()
            meta = self._prepare(java, report)
            report(f"starting Kafka {self.kafka_version} on {self.bootstrap}")
            process = self._spawn(java)
            report(f"waiting for Kafka on {self.bootstrap} (pid {process.pid})")
            self._wait_ready(process.pid, timeout, started_here=True)
            log.info("Kafka up at %s (pid %d, cluster %s)", self.bootstrap, process.pid, meta.cluster_id)
            return self.status()

    def down(self, timeout: float = 30.0) -> int | None:
        """Stop the broker: SIGTERM (a clean shutdown), SIGKILL after ``timeout`` s. Returns the pid stopped, if any."""
        with self._locked():
            pid = self._live_pid(cleanup=True)
            if pid is None:
                return None
            self._stop(pid, timeout)
            return pid

    # ---- start-up steps --------------------------------------------------------------------------------------
    def _refuse_port_change(self, pid: int) -> None:
        """A running broker keeps the port it started with; say so instead of waiting for it on another port."""
        match = re.search(r"^advertised\.listeners=PLAINTEXT://[^:]+:(\d+)$", self._read(self.properties_file), re.M)
        if match and int(match.group(1)) != self.port:
            raise BrokerError(
                f"the local broker already runs on port {match.group(1)} (pid {pid}), not {self.port}; "
                "stop it with `fraudstream kafka down` before changing FRAUD_KAFKA_LOCAL_PORT"
            )

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text()
        except OSError:
            return ""

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

    def _prepare(self, java: str, report: Progress) -> NodeMeta:
        """Pick the controller port, write the configuration files and format the storage on first use."""
        meta = self._load_meta()
        if meta.controller_port == self.port or port_in_use(meta.controller_port):
            meta = NodeMeta(meta.cluster_id, self._pick_controller_port())
            log.info("controller port moved to %d", meta.controller_port)
        self.meta_file.write_text(json.dumps({"cluster_id": meta.cluster_id, "controller_port": meta.controller_port}))
        self.properties_file.write_text(
            render_server_properties(port=self.port, controller_port=meta.controller_port, data_dir=self.data_dir)
        )
        self.log4j_file.write_text(resources.files("fraudstream.kafka").joinpath("log4j2.yaml").read_text("utf-8"))
        if not (self.data_dir / "meta.properties").is_file():
            report("formatting the broker's storage (first run)")
            self._format_storage(java, meta.cluster_id)
        return meta

    def _load_meta(self) -> NodeMeta:
        """The persisted cluster id and controller port; the storage's own cluster id wins when they differ."""
        stored: dict[str, object] = {}
        if self.meta_file.is_file():
            with contextlib.suppress(ValueError, OSError):
                stored = json.loads(self.meta_file.read_text())
        cluster_id = _formatted_cluster_id(self.data_dir) or str(stored.get("cluster_id") or new_cluster_id())
        port = stored.get("controller_port")
        controller_port = port if isinstance(port, int) and 0 < port < 65536 else self._pick_controller_port()
        return NodeMeta(cluster_id, controller_port)

    def _pick_controller_port(self) -> int:
        while True:
            port = free_port()
            if port != self.port:
                return port

    def _format_storage(self, java: str, cluster_id: str) -> None:
        command = [
            *self._java_command(java),
            _STORAGE_TOOL, "format", "--ignore-formatted", "-t", cluster_id, "-c", str(self.properties_file),
        ]  # fmt: skip
        result = subprocess.run(command, cwd=self.home, capture_output=True, text=True, timeout=180, check=False)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise BrokerError(f"formatting the Kafka storage in {self.data_dir} failed:\n{output}")
        log.info("formatted %s for cluster %s", self.data_dir, cluster_id)

    def _java_command(self, java: str) -> list[str]:
        return [
            java,
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-Djava.awt.headless=true",
            "-cp",
            f"{self.libs_dir}{os.sep}*",
        ]

    def _spawn(self, java: str) -> subprocess.Popen[bytes]:
        """Start kafka.Kafka detached (own session, so Ctrl-C in the caller's terminal does not reach it)."""
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        java_command = self._java_command(java)
        command = [
            java_command[0], "-Xms256m", f"-Xmx{self.heap_max}", "-XX:+ExitOnOutOfMemoryError",
            *java_command[1:], _BROKER_MAIN, str(self.properties_file),
        ]  # fmt: skip
        with self.log_file.open("ab") as log_handle:
            process = subprocess.Popen(
                command,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self._process = process
        return process

    def _wait_ready(self, pid: int, timeout: float, *, started_here: bool) -> None:
        """Poll with metadata requests until the broker answers; explain (with the log's end) when it does not."""
        client = self._probe_client()
        deadline = time.monotonic() + timeout
        while True:
            if not process_alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(self._failure(f"the Kafka broker (pid {pid}) exited during start-up"))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if started_here:
                    self._stop(pid, timeout=10.0)
                    raise BrokerError(self._failure(f"Kafka did not answer on {self.bootstrap} within {timeout:g}s"))
                raise BrokerError(
                    self._failure(
                        f"the Kafka broker (pid {pid}) runs but does not answer on {self.bootstrap}; "
                        "restart it with `fraudstream kafka down && fraudstream kafka up`"
                    )
                )
            try:
                probe_cluster(self.connection(), timeout=min(1.0, remaining), client=client)
            except BrokerError:
                continue
            return

    def _probe_client(self) -> AdminClient:
        return admin_client(self.connection(), **_QUIET_PROBE)

    def _failure(self, what: str) -> str:
        end = tail(self.log_file)
        return f"{what}. Last lines of {self.log_file}:\n{end}" if end else f"{what} (the log {self.log_file} is empty)"

    # ---- process bookkeeping ---------------------------------------------------------------------------------
    def _live_pid(self, *, cleanup: bool) -> int | None:
        """The pid on file when it is this home's running broker; a stale pid file is removed when ``cleanup``."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pid = None
        if pid is not None and process_alive(pid) and self._is_our_broker(pid):
            return pid
        if cleanup:
            log.info("removing stale pid file %s (pid %s is not our running broker)", self.pid_file, pid)
            self.pid_file.unlink(missing_ok=True)
        return None

    def _is_our_broker(self, pid: int) -> bool:
        cmdline = process_cmdline(pid)
        return cmdline is not None and _BROKER_MAIN in cmdline and str(self.properties_file) in cmdline

    def _stop(self, pid: int, timeout: float) -> None:
        log.info("stopping Kafka (pid %d)", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_exit(pid, timeout):
            log.warning("Kafka (pid %d) still runs %gs after SIGTERM; sending SIGKILL", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not wait_exit(pid, 10.0):
                raise BrokerError(f"Kafka (pid {pid}) survived SIGKILL; stop it by hand")
        self.pid_file.unlink(missing_ok=True)
        if self._process is not None and self._process.pid == pid:
            self._process = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One up/down at a time per home folder, across processes."""
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _formatted_cluster_id(data_dir: Path) -> str | None:
    """The cluster id a formatted storage folder records in meta.properties, if it is formatted."""
    meta = data_dir / "meta.properties"
    if not meta.is_file():
        return None
    for line in meta.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "cluster.id":
            return value.strip()
    return None
