"""The local cluster without starting a JVM: its quorum, each node's configuration, its plan file, its layout."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.local.cluster import LocalCluster
from fraudstream.kafka.local.layout import local_cluster, local_home, resolve_nodes, running_layouts
from fraudstream.kafka.local.processes import (
    ephemeral_port_range,
    free_port,
    free_port_run,
    port_in_use,
    process_cmdline,
)
from fraudstream.kafka.local.server_config import (
    BROKER,
    COMBINED,
    CONTROLLER,
    CONTROLLER_NODE_ID,
    Quorum,
    render_server_properties,
)
from fraudstream.kafka.topics import min_insync_replicas_for
from fraudstream.settings import load_settings


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


@pytest.fixture
def cluster(tmp_path: Path) -> LocalCluster:
    first = free_port_run(3)
    return LocalCluster(ports=[first, first + 1, first + 2], home=tmp_path / "kafka-3-nodes", cache_dir=tmp_path / "c")


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def pretend_running(home: Path, name: str = "broker") -> subprocess.Popen[bytes]:
    """A stand-in process whose command line looks like the Kafka process of ``home`` (kafka.Kafka + its properties)."""
    home.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", "import time; time.sleep(60)", "kafka.Kafka", str(home / "server.properties")]
    process = subprocess.Popen(command)
    (home / f"{name}.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + 10.0  # until the child has exec'd, /proc shows the parent's command line
    while "kafka.Kafka" not in (process_cmdline(process.pid) or "") and time.monotonic() < deadline:
        time.sleep(0.01)
    return process


# ---- replication and configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize(("nodes", "replicas", "min_isr"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_replication_follows_the_node_count(nodes: int, replicas: int, min_isr: int) -> None:
    quorum = Quorum("cid", tuple(range(20000, 20000 + nodes)))
    assert (quorum.replication_factor, quorum.min_insync_replicas) == (replicas, min_isr)
    assert min_insync_replicas_for(replicas) == min_isr


def test_three_nodes_form_one_quorum_with_replicated_internal_topics(tmp_path: Path) -> None:
    quorum = Quorum("cid", (19601, 19602, 19603))
    rendered = [
        properties(render_server_properties(node_id=i, port=19500 + i, quorum=quorum, data_dir=tmp_path / f"d{i}"))
        for i in (1, 2, 3)
    ]

    voters = "1@127.0.0.1:19601,2@127.0.0.1:19602,3@127.0.0.1:19603"
    for node_id, props in enumerate(rendered, 1):
        assert props["node.id"] == str(node_id)
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == voters
        assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{19500 + node_id},CONTROLLER://127.0.0.1:{19600 + node_id}"
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{19500 + node_id}"
        assert props["log.dirs"] == str(tmp_path / f"d{node_id}")
        for key in (
            "default.replication.factor",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
            "share.coordinator.state.topic.replication.factor",
        ):
            assert props[key] == "3", key
        for key in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
            assert props[key] == "2", key
        # a killed node is fenced (its leadership and coordinators moved) after 5 s, not Kafka's 9 s
        assert props["broker.session.timeout.ms"] == "5000"
        assert props["broker.heartbeat.interval.ms"] == "1000"


@pytest.mark.parametrize("roles", [COMBINED, BROKER, CONTROLLER])
def test_every_process_heartbeats_each_second_and_is_fenced_after_5_s(tmp_path: Path, roles: str) -> None:
    """The lone broker too: its restarted incarnation registers once the controller fenced the killed one."""
    quorum = Quorum("cid", (19601,), controller_node_id=CONTROLLER_NODE_ID if roles != COMBINED else None)
    node_id = CONTROLLER_NODE_ID if roles == CONTROLLER else 1
    props = properties(
        render_server_properties(node_id=node_id, port=19500, quorum=quorum, data_dir=tmp_path, roles=roles)
    )
    assert props["broker.session.timeout.ms"] == "5000"
    assert props["broker.heartbeat.interval.ms"] == "1000"


def test_server_overrides_replace_a_setting_and_reach_every_node_of_a_cluster(tmp_path: Path) -> None:
    """benchmarks/scorer.py sets Kafka's own initial rebalance delay (3 s) where the tests' broker has 0."""
    quorum = Quorum("cid", (19601,))
    overridden = {"group.initial.rebalance.delay.ms": "3000", "x.new": "1"}
    props = properties(
        render_server_properties(node_id=1, port=19500, quorum=quorum, data_dir=tmp_path, overrides=overridden)
    )
    assert (props["group.initial.rebalance.delay.ms"], props["x.new"]) == ("3000", "1")
    default = properties(render_server_properties(node_id=1, port=19500, quorum=quorum, data_dir=tmp_path))
    assert default["group.initial.rebalance.delay.ms"] == "0"
    cluster = LocalCluster(
        ports=[19500, 19501], home=tmp_path / "c", cache_dir=tmp_path / "jars", server_overrides=overridden
    )
    assert all(node.server_overrides == overridden for node in cluster._nodes)


def test_the_lone_broker_and_its_controller_are_two_processes_of_one_quorum(tmp_path: Path) -> None:
    quorum = Quorum("cid", (19601,), controller_node_id=CONTROLLER_NODE_ID)
    broker = properties(
        render_server_properties(node_id=1, port=19500, quorum=quorum, data_dir=tmp_path / "b", roles=BROKER)
    )
    controller = properties(
        render_server_properties(
            node_id=CONTROLLER_NODE_ID, port=None, quorum=quorum, data_dir=tmp_path / "c", roles=CONTROLLER
        )
    )

    assert broker["process.roles"] == "broker"
    assert controller["process.roles"] == "controller"
    assert (broker["node.id"], controller["node.id"]) == ("1", "3000")
    assert broker["controller.quorum.voters"] == controller["controller.quorum.voters"] == "3000@127.0.0.1:19601"
    assert broker["listeners"] == broker["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19500"
    assert controller["listeners"] == "CONTROLLER://127.0.0.1:19601"
    assert "advertised.listeners" not in controller
    assert "inter.broker.listener.name" not in controller
    assert broker["controller.listener.names"] == controller["controller.listener.names"] == "CONTROLLER"
    assert (broker["log.dirs"], controller["log.dirs"]) == (str(tmp_path / "b"), str(tmp_path / "c"))
    for props in (broker, controller):  # the controller applies topic defaults to CreateTopics
        assert props["default.replication.factor"] == props["min.insync.replicas"] == "1"
        assert props["auto.create.topics.enable"] == "false"


# ---- layout ----------------------------------------------------------------------------------------------------
def test_nodes_of_a_cluster_have_homes_and_ports_of_their_own(cluster: LocalCluster) -> None:
    first = cluster.ports[0]
    assert cluster.size == 3
    assert cluster.bootstrap == f"127.0.0.1:{first},127.0.0.1:{first + 1},127.0.0.1:{first + 2}"
    assert [node.home for node in cluster.nodes] == [cluster.home / f"node-{i}" for i in (1, 2, 3)]
    assert [node.bootstrap for node in cluster.nodes] == cluster.bootstrap.split(",")
    assert cluster.plan_file == cluster.home / "cluster.json"
    assert cluster.node(2).node_id == 2
    with pytest.raises(ValueError, match="1 to 3"):
        cluster.node(4)
    with pytest.raises(ValueError, match="distinct ports"):
        LocalCluster(ports=[first, first], home=cluster.home, cache_dir=cluster.cache_dir)


def test_settings_place_each_layout_in_its_own_folder(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, kafka_local_port=29000, kafka_local_nodes=3)
    cluster = local_cluster(settings)

    assert cluster.ports == (29000, 29001, 29002)
    assert cluster.home == (tmp_path / "kafka-3-nodes").resolve()
    assert cluster.bootstrap == settings.bootstrap_servers
    assert local_cluster(settings, nodes=1).home == (tmp_path / "kafka").resolve()
    assert local_home(tmp_path, 1) == tmp_path / "kafka"


def test_the_command_line_finds_the_layout_that_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAUD_KAFKA_LOCAL_NODES", raising=False)
    settings = load_settings(state_dir=tmp_path)
    assert running_layouts(tmp_path) == []
    assert resolve_nodes(settings) == 1

    stand_in = pretend_running(tmp_path / "kafka-3-nodes" / "node-2")  # one node of three still runs
    try:
        assert running_layouts(tmp_path) == [3]
        assert resolve_nodes(settings) == 3
        assert resolve_nodes(settings, requested=1) == 1  # --nodes wins
        assert resolve_nodes(load_settings(state_dir=tmp_path, kafka_local_nodes=1)) == 1  # so does the setting
    finally:
        stand_in.kill()
        stand_in.wait()
    assert running_layouts(tmp_path) == []


def test_a_lone_controller_left_running_is_found_too(tmp_path: Path) -> None:
    """After a crash of the lone broker, `fraudstream kafka down` must still find (and stop) its controller."""
    stand_in = pretend_running(tmp_path / "kafka" / "controller", "controller")
    try:
        assert running_layouts(tmp_path) == [1]
    finally:
        stand_in.kill()
        stand_in.wait()


# ---- the plan: cluster id and controller ports -----------------------------------------------------------------
def test_the_plan_picks_distinct_controller_ports_once_and_keeps_them(cluster: LocalCluster) -> None:
    first = cluster.plan.settle({})
    stored = json.loads(cluster.plan_file.read_text())

    assert len(set(first.controller_ports)) == 3
    assert not set(first.controller_ports) & set(cluster.ports)
    assert stored == {"cluster_id": first.cluster_id, "controller_ports": list(first.controller_ports)}
    assert cluster.plan.settle({}) == first


def test_a_single_node_reads_the_plan_of_homes_made_before_clusters(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    home.mkdir()
    controller = free_port()
    (home / "meta.json").write_text(json.dumps({"cluster_id": "AAAAAAAAAAAAAAAAAAAAAA", "controller_port": controller}))
    single = LocalCluster(ports=[free_port()], home=home, cache_dir=tmp_path / "c")

    quorum = single.plan.settle({})

    assert quorum == Quorum("AAAAAAAAAAAAAAAAAAAAAA", (controller,), controller_node_id=CONTROLLER_NODE_ID)
    assert json.loads((home / "meta.json").read_text()) == {
        "cluster_id": "AAAAAAAAAAAAAAAAAAAAAA",
        "controller_ports": [controller],
        "controller_port": controller,  # the port of the controller-only process
        "controller_node_id": CONTROLLER_NODE_ID,
    }


def test_the_formatted_storage_decides_the_cluster_id(cluster: LocalCluster) -> None:
    data = cluster.nodes[1].data_dir
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("node.id=2\ncluster.id=FormattedClusterId0000\n")

    assert cluster.plan.settle({}).cluster_id == "FormattedClusterId0000"


def test_a_taken_controller_port_moves_only_while_no_node_runs(cluster: LocalCluster, held_port: int) -> None:
    first = cluster.plan.settle({})
    ports = [first.controller_ports[0], held_port, first.controller_ports[2]]
    cluster.plan_file.write_text(json.dumps({"cluster_id": first.cluster_id, "controller_ports": ports}))

    with pytest.raises(BrokerError, match=rf"controller port {held_port} of Kafka node 2 is held by another process"):
        cluster.plan.settle({1: 12345})  # node 1 runs: its voters list cannot change under it
    moved = cluster.plan.settle({})

    assert moved.controller_ports[0] == first.controller_ports[0]
    assert moved.controller_ports[1] != held_port
    assert moved.controller_ports[2] == first.controller_ports[2]


def test_up_refuses_a_node_port_held_by_another_process_before_any_download(tmp_path: Path, held_port: int) -> None:
    blocked = LocalCluster(ports=[held_port - 1, held_port], home=tmp_path / "k", cache_dir=tmp_path / "c")
    if port_in_use(held_port - 1):
        pytest.skip("the port below the held one is taken too")

    with pytest.raises(BrokerError, match=rf"port {held_port} is in use by another process.*FRAUD_KAFKA_LOCAL_PORT"):
        blocked.up()
    assert not blocked.libs_dir.exists()


def test_status_and_down_of_a_cluster_where_nothing_runs(cluster: LocalCluster) -> None:
    state = cluster.status()

    assert not state.running
    assert not state.any_running
    assert [node.node_id for node in state.nodes] == [1, 2, 3]
    assert cluster.down() == []
    assert cluster.nodes[0].kill() is None


def test_down_stops_every_node_that_runs(cluster: LocalCluster) -> None:
    stand_ins = [pretend_running(node.home) for node in cluster.nodes[:2]]
    try:
        state = cluster.status()
        assert state.any_running
        assert not state.running
        assert state.up_count == 2

        assert sorted(cluster.down(timeout=5)) == sorted(process.pid for process in stand_ins)
        assert all(process.poll() is not None for process in stand_ins)
        assert not cluster.status().any_running
    finally:
        for process in stand_ins:
            process.kill()
            process.wait()


def test_a_node_that_dies_during_start_up_fails_the_wait_at_once(cluster: LocalCluster) -> None:
    """Waiting on node 1 must not hide that node 3 is gone: it would never see three brokers."""
    waiting = pretend_running(cluster.nodes[0].home)  # alive, never answers
    dead = subprocess.Popen(["true"])
    dead.wait()
    pids = {1: waiting.pid, 2: waiting.pid, 3: dead.pid}
    try:
        started = time.monotonic()
        with pytest.raises(BrokerError, match=rf"Kafka node 3 \(pid {dead.pid}\) exited during start-up"):
            cluster._await_ready({1, 2, 3}, pids, pids, 3, time.monotonic() + 60, 60)
        assert time.monotonic() - started < 10
    finally:
        waiting.kill()
        waiting.wait()


def test_free_ports_come_from_below_the_ephemeral_range() -> None:
    """An outgoing connection can take an ephemeral port between our check and the JVM's bind."""
    low, _ = ephemeral_port_range()
    picked = {free_port() for _ in range(20)}
    assert all(port < low for port in picked)
    first = free_port_run(3)
    assert not any(port_in_use(first + i) for i in range(3))
