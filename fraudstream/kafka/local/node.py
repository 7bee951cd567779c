"""One local Kafka JVM (a KRaft node: broker and controller at once, broker only, or controller only) and the files
it keeps in its home folder.

A node knows how to format its storage, start detached, answer "is it up", stop cleanly and be killed. It does
not decide its configuration: :mod:`fraudstream.kafka.local.cluster` renders it from the cluster's quorum.
Every signal is sent only after checking that the pid on file really is this home's process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.processes import HOST, process_alive, process_cmdline, tail, wait_exit
from fraudstream.kafka.local.server_config import (
    COMBINED,
    CONTROLLER,
    Quorum,
    formatted_cluster_id,
    render_server_properties,
)
from fraudstream.kafka.topics import admin_client, probe_cluster

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)

BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
BROKER_GC_OPTIONS = ("-XX:+UseZGC",)
"""The collector of a node that serves clients: ZGC, which does its work concurrently with the broker's threads.
Under the latency benchmark on our 2 shared cores, G1 (the JVM's default) paused the broker 20-222 ms and Kafka's
own G1 settings (``MaxGCPauseMillis=20``, as ``kafka-run-class.sh`` sets them) up to 125 ms: its parallel workers
wait for the cores the scorer and the replay hold, and every pause holds up the commit an alert waits for. The
scorer's p99 alert latency at 2,000 tx/s went from 46-251 ms (9 runs, median 128) to 41-72 ms (4 runs):
benchmarks/README.md, latency."""
# The readiness probe retries fast and stays quiet: "connection refused" is expected while the JVM starts.
_QUIET_PROBE = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 500, "log_level": 2}


@dataclass(frozen=True)
class BrokerStatus:
    """Where one local node stands. ``running`` means its process is alive (not necessarily answering yet)."""

    running: bool
    bootstrap: str
    pid: int | None
    log_file: Path
    data_dir: Path
    node_id: int = 1


class KraftNode:
    """The JVM of node ``node_id`` on ``127.0.0.1:<port>``, whose data, log, pid and configuration live in ``home``.

    ``roles`` is its ``process.roles``; ``name`` names its log and pid files (``broker.log``, ``controller.pid``).
    A controller-only process has no client port: ``port`` is 0 and its address is its controller listener.
    """

    def __init__(
        self,
        *,
        node_id: int,
        port: int,
        home: Path,
        libs_dir: Path,
        heap_max: str,
        heap_min: str = "256m",
        roles: str = COMBINED,
        name: str = "broker",
        server_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.node_id = node_id
        self.port = port
        self.home = home
        self.libs_dir = libs_dir
        self.heap_max = heap_max
        self.heap_min = heap_min
        self.roles = roles
        self.name = name
        self.server_overrides = dict(server_overrides or {})
        self._process: subprocess.Popen[bytes] | None = None

    # ---- where things are ------------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """Where clients reach it (a controller-only process: its controller listener, once configured)."""
        if self.roles == CONTROLLER:
            port = self.controller_port()
            return f"{HOST}:{port}" if port is not None else f"{HOST}:?"
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.home / "log4j2.yaml"

    def connection(self) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers=self.bootstrap)

    # ---- state -----------------------------------------------------------------------------------------------
    def status(self) -> BrokerStatus:
        """Whether this node's process runs (it reads the pid file; it changes nothing)."""
        pid = self.live_pid(cleanup=False)
        return BrokerStatus(pid is not None, self.bootstrap, pid, self.log_file, self.data_dir, self.node_id)

    def live_pid(self, *, cleanup: bool) -> int | None:
        """The pid on file when it is this home's running process; a stale pid file is removed when ``cleanup``."""
        pid = running_broker(self.home, self.name)
        if pid is None and cleanup and self.pid_file.exists():
            log.info("removing stale pid file %s (its pid is not our running %s)", self.pid_file, self.name)
            self.pid_file.unlink(missing_ok=True)
        return pid

    def running_port(self) -> int | None:
        """The port the running configuration advertises (None before the first start)."""
        with contextlib.suppress(OSError):
            text = self.properties_file.read_text()
            match = re.search(r"^advertised\.listeners=PLAINTEXT://[^:]+:(\d+)$", text, re.M)
            if match:
                return int(match.group(1))
        return None

    def controller_port(self) -> int | None:
        """The port of the configured controller listener (None before the first start, or on a broker-only node)."""
        with contextlib.suppress(OSError):
            match = re.search(r"^listeners=.*CONTROLLER://[^:]+:(\d+)", self.properties_file.read_text(), re.M)
            if match:
                return int(match.group(1))
        return None

    def listening(self, timeout: float = 1.0) -> bool:
        """True when the controller listener accepts a connection (how a controller-only process says it is up)."""
        port = self.controller_port()
        if port is None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=timeout):
                return True
        except OSError:
            return False

    def formatted_cluster_id(self) -> str | None:
        return formatted_cluster_id(self.data_dir)

    def ping(self, timeout: float = 3.0, *, brokers: int = 1) -> bool:
        """True when this node answers a metadata request within ``timeout`` s and knows ``brokers`` live brokers."""
        try:
            info = probe_cluster(self.connection(), timeout=timeout, client=self.probe_client())
        except BrokerError:
            return False
        return info.brokers >= brokers

    def probe_client(self) -> AdminClient:
        return admin_client(self.connection(), **_QUIET_PROBE)

    # ---- start-up steps --------------------------------------------------------------------------------------
    def configure(self, quorum: Quorum) -> None:
        """Write server.properties and the logging configuration for this node's place in ``quorum``."""
        self.home.mkdir(parents=True, exist_ok=True)
        properties = render_server_properties(
            node_id=self.node_id,
            port=self.port,
            quorum=quorum,
            data_dir=self.data_dir,
            roles=self.roles,
            overrides=self.server_overrides,
        )
        self.properties_file.write_text(properties)
        self.log4j_file.write_text(resources.files(__package__).joinpath("log4j2.yaml").read_text("utf-8"))

    def java_command(self, java: str) -> list[str]:
        return [
            java,
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-Djava.awt.headless=true",
            "-cp",
            f"{self.libs_dir}{os.sep}*",
        ]

    def start_format(self, java: str, cluster_id: str) -> subprocess.Popen[str]:
        """Start formatting this node's storage for ``cluster_id`` (finish with :meth:`finish_format`)."""
        command = [
            *self.java_command(java),
            STORAGE_TOOL, "format", "--ignore-formatted", "-t", cluster_id, "-c", str(self.properties_file),
        ]  # fmt: skip
        return subprocess.Popen(
            command,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def finish_format(self, formatting: subprocess.Popen[str], cluster_id: str, timeout: float = 180.0) -> None:
        try:
            output, _ = formatting.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            formatting.kill()
            output, _ = formatting.communicate()
        if formatting.returncode != 0:
            end = "\n".join(output.splitlines()[-20:])
            raise BrokerError(f"formatting the Kafka storage in {self.data_dir} failed:\n{end}")
        log.info("formatted %s for cluster %s", self.data_dir, cluster_id)

    def spawn(self, java: str) -> int:
        """Start kafka.Kafka detached (own session, so Ctrl-C in the caller's terminal does not reach it)."""
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        java_command = self.java_command(java)
        command = [
            java_command[0], f"-Xms{self.heap_min}", f"-Xmx{self.heap_max}", "-XX:+ExitOnOutOfMemoryError",
            *(() if self.roles == CONTROLLER else BROKER_GC_OPTIONS),
            *java_command[1:], BROKER_MAIN, str(self.properties_file),
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
        return process.pid

    def check_alive(self, pid: int) -> None:
        """BrokerError, with the end of the node's log, when the process ``pid`` has exited."""
        if not process_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            raise BrokerError(self.failure(f"{self.describe()} (pid {pid}) exited during start-up"))

    def ready(self, client: AdminClient, timeout: float, *, brokers: int) -> bool:
        """True when this node answers within ``timeout`` s, is registered and sees ``brokers`` live brokers."""
        try:
            info = probe_cluster(self.connection(), timeout=timeout, client=client)
        except BrokerError:
            return False
        return info.brokers >= brokers and self.node_id in info.broker_ids

    def describe(self) -> str:
        return "the KRaft controller" if self.roles == CONTROLLER else f"Kafka node {self.node_id}"

    def failure(self, what: str) -> str:
        end = tail(self.log_file)
        return f"{what}. Last lines of {self.log_file}:\n{end}" if end else f"{what} (the log {self.log_file} is empty)"

    # ---- stopping --------------------------------------------------------------------------------------------
    def terminate(self, pid: int) -> None:
        """Ask for a clean shutdown (SIGTERM) without waiting."""
        log.info("stopping %s (pid %d)", self.describe(), pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def stop(self, pid: int, timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s; returns once the process is gone."""
        self.terminate(pid)
        self.await_exit(pid, timeout)

    def await_exit(self, pid: int, timeout: float) -> None:
        """Wait for a terminating node; SIGKILL it after ``timeout`` s."""
        if not wait_exit(pid, timeout):
            log.warning("Kafka (pid %d) still runs %gs after SIGTERM; sending SIGKILL", pid, timeout)
            self.kill_pid(pid)
        self._forget(pid)

    def kill(self) -> int | None:
        """SIGKILL this node at once, as a crash would (no clean shutdown); the pid killed, or None if none ran."""
        pid = self.live_pid(cleanup=True)
        if pid is None:
            return None
        log.info("killing %s (pid %d) with SIGKILL", self.describe(), pid)
        self.kill_pid(pid)
        self._forget(pid)
        return pid

    def kill_pid(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not wait_exit(pid, 10.0):
            raise BrokerError(f"Kafka (pid {pid}) survived SIGKILL; stop it by hand")

    def _forget(self, pid: int) -> None:
        self.pid_file.unlink(missing_ok=True)
        if self._process is not None and self._process.pid == pid:
            self._process = None


def running_broker(home: Path, name: str = "broker") -> int | None:
    """The pid in ``home/<name>.pid`` when that process runs and is the Kafka process of ``home`` (else None)."""
    try:
        pid = int((home / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not process_alive(pid):
        return None
    cmdline = process_cmdline(pid)
    ours = cmdline is not None and BROKER_MAIN in cmdline and str(home / "server.properties") in cmdline
    return pid if ours else None
