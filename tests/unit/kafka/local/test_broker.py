"""The single local broker without starting one: configuration, tool checks, ports, pid bookkeeping, jars."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudstream.exceptions import BrokerError, ToolMissingError
from fraudstream.kafka.local import cluster as cluster_module
from fraudstream.kafka.local import prerequisites as tools
from fraudstream.kafka.local.broker import LocalBroker
from fraudstream.kafka.local.jars import KAFKA_VERSION, MARKER, pinned_set_id
from fraudstream.kafka.local.processes import free_port, port_in_use
from fraudstream.kafka.local.server_config import Quorum, new_cluster_id, render_server_properties
from fraudstream.settings import load_settings

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@pytest.fixture
def broker(tmp_path: Path) -> LocalBroker:
    return LocalBroker(port=free_port(), home=tmp_path / "home", cache_dir=tmp_path / "cache")


def pretend_jars_cached(broker: LocalBroker) -> LocalBroker:
    """Mark the jars as resolved before, so no Maven (and no network) is involved."""
    broker.libs_dir.mkdir(parents=True)
    (broker.libs_dir / MARKER).write_text("{}")
    return broker


@pytest.fixture
def jars_cached(broker: LocalBroker) -> LocalBroker:
    return pretend_jars_cached(broker)


@pytest.fixture
def listening_socket() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


# ---- configuration ---------------------------------------------------------------------------------------------
def test_server_properties_describe_one_combined_kraft_node(tmp_path: Path) -> None:
    quorum = Quorum("cid", (19501,))
    rendered = properties(render_server_properties(node_id=1, port=19500, quorum=quorum, data_dir=tmp_path / "data"))

    assert rendered["process.roles"] == "broker,controller"
    assert rendered["node.id"] == "1"
    assert rendered["controller.quorum.voters"] == "1@127.0.0.1:19501"
    assert rendered["listeners"] == "PLAINTEXT://127.0.0.1:19500,CONTROLLER://127.0.0.1:19501"
    assert rendered["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19500"
    assert rendered["log.dirs"] == str(tmp_path / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
        "default.replication.factor",
        "min.insync.replicas",
    ):
        assert rendered[key] == "1", key
    assert rendered["group.initial.rebalance.delay.ms"] == "0"
    assert rendered["num.partitions"] == "3"
    assert rendered["auto.create.topics.enable"] == "false"


def test_packaged_pom_pins_the_launcher_version_the_tools_and_the_slf4j_binding() -> None:
    pom = ET.fromstring(resources.files("fraudstream.kafka.local").joinpath("pom.xml").read_text())
    props = pom.find("m:properties", POM_NS)
    assert props is not None
    assert props.findtext("m:kafka.version", namespaces=POM_NS) == KAFKA_VERSION
    dependencies = pom.find("m:dependencies", POM_NS)
    assert dependencies is not None
    artifacts = {
        dep.findtext("m:artifactId", namespaces=POM_NS) for dep in dependencies.findall("m:dependency", POM_NS)
    }
    assert artifacts == {"kafka_2.13", "kafka-tools", "log4j-slf4j-impl"}
    excluded = {dep.findtext("m:artifactId", namespaces=POM_NS) for dep in pom.iterfind(".//m:exclusion", POM_NS)}
    assert excluded == {"connect-runtime"}


def test_packaged_log4j_config_writes_to_stdout() -> None:
    config = yaml.safe_load(resources.files("fraudstream.kafka.local").joinpath("log4j2.yaml").read_text())
    assert config["Configuration"]["Appenders"]["Console"]["target"] == "SYSTEM_OUT"


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(cid) == 22 and not cid.startswith("-") and "=" not in cid for cid in ids)


def test_from_settings_uses_the_state_folder_port_and_cache(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "st", kafka_local_port=29999, kafka_cache_dir=tmp_path / "jars")
    broker = LocalBroker.from_settings(settings)

    assert broker.bootstrap == "127.0.0.1:29999"
    assert broker.home == (tmp_path / "st" / "kafka").resolve()
    assert broker.libs_dir == (tmp_path / "jars" / KAFKA_VERSION / f"libs-{pinned_set_id()}").resolve()


# ---- tools -------------------------------------------------------------------------------------------------------
def test_missing_java_says_what_to_install(broker: LocalBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools.shutil, "which", lambda name: None if name == "java" else f"/usr/bin/{name}")

    with pytest.raises(ToolMissingError, match=r"Java 17\+") as caught:
        broker.up()
    assert "FRAUD_KAFKA_BOOTSTRAP" in str(caught.value)


def test_missing_maven_says_what_to_install(broker: LocalBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools.shutil, "which", lambda name: None if name == "mvn" else f"/usr/bin/{name}")

    with pytest.raises(ToolMissingError, match=r"Maven 3\.6\+") as caught:
        broker.ensure_jars()
    assert "FRAUD_KAFKA_BOOTSTRAP" in str(caught.value)


def test_cached_jars_need_no_maven(jars_cached: LocalBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)

    assert jars_cached.ensure_jars() == jars_cached.libs_dir


def test_old_java_is_refused(jars_cached: LocalBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(cluster_module, "java_major_version", lambda java: 11)

    with pytest.raises(ToolMissingError, match=r"needs Java 17\+.*Java 11"):
        jars_cached.up()


def fake_maven(bin_dir: Path, script: str) -> None:
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(f"#!{sys.executable}\nimport pathlib, sys\n{script}")
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)


def test_jars_are_resolved_once_into_place(
    broker: LocalBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_maven(
        tmp_path / "bin",
        "out = pathlib.Path(next(a for a in sys.argv if a.startswith('-DoutputDirectory=')).split('=', 1)[1])\n"
        "out.mkdir(parents=True)\n"
        f"(out / 'kafka_2.13-{KAFKA_VERSION}.jar').write_bytes(b'jar')\n"
        f"(out / 'kafka-tools-{KAFKA_VERSION}.jar').write_bytes(b'jar')\n"
        "print('[INFO] Downloaded from central: https://repo/x/kafka-clients-4.4.0.jar (9 MB at 3 MB/s)')\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    seen: list[str] = []

    libs = broker.ensure_jars(progress=seen.append)

    assert libs == broker.libs_dir
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    assert broker.jars_ready()
    assert seen == ["Maven: downloaded 1 files (kafka-clients-4.4.0.jar)"]
    assert [p.name for p in libs.parent.iterdir()] == [libs.name]  # no temporary folder left behind


def test_maven_failure_shows_its_output(broker: LocalBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_maven(tmp_path / "bin", "print('[ERROR] Could not resolve org.apache.kafka:kafka_2.13')\nsys.exit(1)\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")

    with pytest.raises(BrokerError, match=r"Could not resolve org\.apache\.kafka:kafka_2\.13"):
        broker.ensure_jars()
    assert not broker.jars_ready()
    assert list(broker.libs_dir.parent.iterdir()) == []


# ---- ports and processes ---------------------------------------------------------------------------------------
def test_port_in_use_is_detected(listening_socket: int) -> None:
    assert port_in_use(listening_socket)
    assert not port_in_use(free_port())


def test_up_refuses_a_port_held_by_another_process(tmp_path: Path, listening_socket: int) -> None:
    broker = LocalBroker(port=listening_socket, home=tmp_path / "home", cache_dir=tmp_path / "cache")

    with pytest.raises(BrokerError, match=rf"port {listening_socket} is in use by another process.*FRAUD_KAFKA_LOCAL"):
        broker.up()
    assert not broker.pid_file.exists()
    assert not broker.libs_dir.exists()  # refused before any download


def test_status_when_nothing_runs(broker: LocalBroker) -> None:
    status = broker.status()

    assert not status.running
    assert status.pid is None
    assert status.bootstrap == broker.bootstrap
    assert status.log_file == broker.home / "broker.log"
    assert status.data_dir == broker.home / "data"
    assert broker.down() is None


def test_stale_pid_file_is_reported_down_and_cleaned(broker: LocalBroker) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    broker.home.mkdir(parents=True)
    broker.pid_file.write_text(f"{dead.pid}\n")

    assert not broker.status().running
    assert broker.pid_file.exists()  # status only reads
    assert broker.down() is None
    assert not broker.pid_file.exists()


def test_a_live_pid_that_is_not_our_broker_is_never_signalled(broker: LocalBroker) -> None:
    broker.home.mkdir(parents=True)
    broker.pid_file.write_text(f"{os.getpid()}\n")  # this test process: alive, but not kafka.Kafka

    assert not broker.status().running
    assert broker.down() is None
    assert not broker.pid_file.exists()


def test_garbage_in_the_pid_file_counts_as_stale(broker: LocalBroker) -> None:
    broker.home.mkdir(parents=True)
    broker.pid_file.write_text("not a pid")

    assert not broker.status().running
    assert broker.down() is None
    assert not broker.pid_file.exists()


@pytest.fixture
def fake_broker(broker: LocalBroker) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start stand-ins whose command line looks like this home's broker (kafka.Kafka + its properties file)."""
    started: list[subprocess.Popen[str]] = []

    def start(ignore_sigterm: bool = False) -> subprocess.Popen[str]:
        code = "import signal, sys, time\n"
        if ignore_sigterm:
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        code += "print('ready', flush=True)\ntime.sleep(60)\n"
        broker.home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-c", code, "kafka.Kafka", str(broker.properties_file)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        broker.pid_file.write_text(f"{process.pid}\n")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_down_stops_our_broker_with_sigterm(
    broker: LocalBroker, fake_broker: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    process = fake_broker()
    assert broker.status().running
    assert broker.status().pid == process.pid

    assert broker.down(timeout=10) == process.pid
    assert process.poll() is not None  # down() waited for the exit (and reaped it: the exit code is gone)
    assert not broker.pid_file.exists()
    assert "SIGKILL" not in caplog.text


def test_down_escalates_to_sigkill(
    broker: LocalBroker, fake_broker: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    process = fake_broker(ignore_sigterm=True)

    assert broker.down(timeout=0.5) == process.pid
    assert process.poll() is not None
    assert "sending SIGKILL" in caplog.text


def test_up_refuses_to_move_a_running_broker_to_another_port(
    broker: LocalBroker, fake_broker: Callable[..., Any]
) -> None:
    fake_broker()
    quorum = Quorum("cid", (1,))
    old = render_server_properties(node_id=1, port=broker.port + 1, quorum=quorum, data_dir=broker.data_dir)
    broker.properties_file.write_text(old)

    with pytest.raises(BrokerError, match=rf"already runs on port {broker.port + 1}.*kafka down"):
        broker.up()


def test_kill_sends_sigkill_at_once_and_forgets_the_pid(broker: LocalBroker, fake_broker: Callable[..., Any]) -> None:
    process = fake_broker(ignore_sigterm=True)  # a clean shutdown would never come: only SIGKILL stops it

    started = time.monotonic()
    assert broker.kill() == process.pid
    assert time.monotonic() - started < 5  # no grace period for a clean shutdown
    assert process.poll() is not None  # gone (kill() reaped it, so its exit code is no longer there to read)
    assert not broker.pid_file.exists()
    assert broker.kill() is None


def test_a_single_broker_keeps_its_files_where_they_always_were(broker: LocalBroker) -> None:
    assert broker.data_dir == broker.home / "data"
    assert broker.pid_file == broker.home / "broker.pid"
    assert broker.properties_file == broker.home / "server.properties"
    assert broker.meta_file == broker.home / "meta.json"


# ---- the lone broker's two processes: broker and KRaft controller ----------------------------------------------
def stand_in(home: Path, name: str, journal: Path) -> subprocess.Popen[str]:
    """A process whose command line looks like the Kafka process ``name`` of ``home``; it notes its SIGTERM."""
    code = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        f"    open({str(journal)!r}, 'a').write({name!r} + '\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\ntime.sleep(60)\n"
    )
    home.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-c", code, "kafka.Kafka", str(home / "server.properties")], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    (home / f"{name}.pid").write_text(f"{process.pid}\n")
    return process


@pytest.fixture
def both_running(broker: LocalBroker, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], subprocess.Popen[str]]]:
    journal = tmp_path / "stopped"
    processes = (stand_in(broker.home, "broker", journal), stand_in(broker.home / "controller", "controller", journal))
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def test_the_controller_keeps_its_files_in_a_folder_of_its_own(broker: LocalBroker) -> None:
    assert broker.cluster.controller_home == broker.home / "controller"
    assert broker.controller_log_file == broker.home / "controller" / "controller.log"
    assert broker.controller_pid_file == broker.home / "controller" / "controller.pid"
    assert not broker.controller_status().running
    assert broker.controller_status().node_id == 3000


def test_kill_hits_the_broker_alone_and_the_controller_keeps_running(
    broker: LocalBroker, both_running: tuple[subprocess.Popen[str], ...]
) -> None:
    broker_process, controller_process = both_running
    assert broker.status().pid == broker_process.pid
    assert broker.controller_status().pid == controller_process.pid

    assert broker.kill() == broker_process.pid

    assert broker_process.poll() is not None
    assert controller_process.poll() is None
    assert not broker.status().running
    assert broker.controller_status().running
    assert broker.cluster.status().any_running
    assert not broker.cluster.status().running


def test_down_stops_the_broker_first_then_its_controller(
    broker: LocalBroker, both_running: tuple[subprocess.Popen[str], ...], tmp_path: Path
) -> None:
    broker_process, controller_process = both_running

    assert broker.cluster.down(timeout=10) == [broker_process.pid, controller_process.pid]

    assert (tmp_path / "stopped").read_text().split() == ["broker", "controller"]
    assert not broker.cluster.status().any_running


def test_down_stops_a_controller_left_alone(broker: LocalBroker, tmp_path: Path) -> None:
    controller = stand_in(broker.home / "controller", "controller", tmp_path / "stopped")
    try:
        assert broker.down(timeout=10) is None  # no broker ran
        assert controller.poll() is not None
    finally:
        controller.kill()
        controller.wait()


def test_a_home_of_the_combined_layout_is_refused_with_what_to_do(broker: LocalBroker) -> None:
    """Before the controller got a process of its own, the broker's storage held the quorum's metadata."""
    broker.data_dir.mkdir(parents=True)
    (broker.data_dir / "meta.properties").write_text("node.id=1\ncluster.id=OldCombinedClusterId00\n")

    with pytest.raises(BrokerError, match=r"older layout.*`fraudstream kafka down`.*delete .*home.*kafka up"):
        broker.up()
    assert not broker.libs_dir.exists()  # refused before any download


def test_status_exits_1_while_only_the_controller_runs(broker: LocalBroker, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fraudstream.cli import kafka

    state = tmp_path / "state"
    lone = LocalBroker(port=free_port(), home=state / "kafka", cache_dir=tmp_path / "cache")
    controller = stand_in(lone.home / "controller", "controller", tmp_path / "stopped")
    (lone.home / "controller" / "server.properties").write_text("listeners=CONTROLLER://127.0.0.1:19601\n")
    env = {
        "FRAUD_STATE_DIR": str(state),
        "FRAUD_KAFKA_LOCAL_PORT": str(lone.port),
        "FRAUD_KAFKA_BOOTSTRAP": "",
        "FRAUD_KAFKA_LOCAL_NODES": "1",
        "COLUMNS": "200",
    }
    try:
        result = CliRunner().invoke(kafka.app, ["status", "--timeout", "0.5"], env=env)
    finally:
        controller.kill()
        controller.wait()

    assert result.exit_code == 1, result.output
    assert f"no broker runs on 127.0.0.1:{lone.port} (its controller does)" in result.output
    assert f"controller: 127.0.0.1:19601 (pid {controller.pid})" in result.output


# ---- the JVM ------------------------------------------------------------------------------------------------------
def test_a_node_serving_clients_runs_zgc_and_a_controller_the_default_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from fraudstream.kafka.local import node as node_module
    from fraudstream.kafka.local.server_config import BROKER, COMBINED, CONTROLLER

    commands: list[list[str]] = []

    def popen(command: list[str], **kwargs: Any) -> Any:
        commands.append(command)
        return SimpleNamespace(pid=4242)

    monkeypatch.setattr(node_module.subprocess, "Popen", popen)
    for roles in (BROKER, COMBINED, CONTROLLER):
        home = tmp_path / roles.replace(",", "-")
        home.mkdir()
        node = node_module.KraftNode(node_id=1, port=0, home=home, libs_dir=tmp_path, heap_max="1g", roles=roles)
        assert node.spawn("java") == 4242
    broker, combined, controller = commands
    for command in (broker, combined):  # G1's pauses held up the commits alerts wait for (node.BROKER_GC_OPTIONS)
        assert "-XX:+UseZGC" in command
        assert command.index("-XX:+UseZGC") < command.index(node_module.BROKER_MAIN)
    assert not [option for option in controller if option.startswith("-XX:+Use")]
