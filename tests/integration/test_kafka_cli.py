"""`fraudstream kafka ...` run as a user runs it: real subprocesses, a real broker, a private state folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fraudstream.kafka.local.broker import LocalBroker
from fraudstream.kafka.local.cluster import LocalCluster
from fraudstream.kafka.local.processes import free_port
from fraudstream.kafka.topics import delete_topics

from .child_env import child_env
from .cluster_support import cluster_cli_env

FRAUDSTREAM = Path(sys.executable).with_name("fraudstream")
STANDARD_TOPICS = (
    "transactions",
    "fraud-alerts",
    "transactions.dlq",
    "fraud-alerts.dlq",
    "fraud-monitoring",
    "fraud-feedback",
)


@pytest.fixture
def cli_env(tmp_path: Path, kafka_cache_dir: Path) -> dict[str, str]:
    """The environment of a user with no cluster configured: the local broker on a free port, a private state."""
    fields = {"state_dir": tmp_path / "state", "kafka_local_port": free_port(), "kafka_cache_dir": kafka_cache_dir}
    return child_env(fields, COLUMNS="200")


def kafka(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FRAUDSTREAM), "kafka", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def pid_in(output: str) -> int:
    match = re.search(r"\(pid (\d+)\)", output)
    assert match, output
    return int(match.group(1))


def controller_pid_in(output: str) -> int:
    match = re.search(r"controller: 127\.0\.0\.1:\d+ \(pid (\d+)\)", output)
    assert match, output
    return int(match.group(1))


def state_of(env: dict[str, str]) -> Path:
    return Path(env["FRAUD_STATE_DIR"])


def cache_of(env: dict[str, str]) -> Path:
    return Path(env["FRAUD_KAFKA_CACHE_DIR"])


@pytest.mark.skipif(shutil.which("java") is None, reason="the local broker needs Java 17+")
def test_up_status_topics_down_and_restart_keeps_data(cli_env: dict[str, str]) -> None:
    address = f"127.0.0.1:{cli_env['FRAUD_KAFKA_LOCAL_PORT']}"
    try:
        first = kafka(cli_env, "up")
        assert first.returncode == 0, first.stderr
        assert f"Kafka is up at {address}" in first.stdout
        assert "broker.log" in first.stdout
        assert "controller.log" in first.stdout  # the KRaft controller is a process of its own

        second = kafka(cli_env, "up")
        assert second.returncode == 0, second.stderr
        assert "already up" in second.stdout
        assert pid_in(second.stdout) == pid_in(first.stdout)

        status = kafka(cli_env, "status")
        assert status.returncode == 0, status.stderr
        assert f"Kafka is up at {address}" in status.stdout

        topics = kafka(cli_env, "topics")
        assert topics.returncode == 0, topics.stderr
        assert all(name in topics.stdout for name in STANDARD_TOPICS)
        assert topics.stdout.count("created") == len(STANDARD_TOPICS)

        # the broker alone dies (kill -9): its KRaft controller runs on, and `up` starts the broker beside it
        controller = controller_pid_in(status.stdout)
        lone = LocalBroker(
            port=int(cli_env["FRAUD_KAFKA_LOCAL_PORT"]), home=state_of(cli_env) / "kafka", cache_dir=cache_of(cli_env)
        )
        assert lone.kill() == pid_in(status.stdout)
        broken = kafka(cli_env, "status")
        assert broken.returncode == 1, broken.stdout
        assert "(its controller does)" in broken.stdout
        assert controller_pid_in(broken.stdout) == controller
        back = kafka(cli_env, "up")
        assert back.returncode == 0, back.stderr
        assert f"Kafka is up at {address}" in back.stdout
        assert controller_pid_in(back.stdout) == controller

        stopped = kafka(cli_env, "down")
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped" in stopped.stdout

        status = kafka(cli_env, "status")
        assert status.returncode == 1
        assert "Kafka is down" in status.stdout

        again = kafka(cli_env, "up")
        assert again.returncode == 0, again.stderr
        assert f"Kafka is up at {address}" in again.stdout

        kept = kafka(cli_env, "topics")
        assert kept.returncode == 0, kept.stderr
        assert kept.stdout.count("exists") == len(STANDARD_TOPICS)
        assert "created" not in kept.stdout
    finally:
        kafka(cli_env, "down")
    assert kafka(cli_env, "status").returncode == 1


def test_an_external_cluster_is_left_alone_but_checked(cli_env: dict[str, str], kafka_bootstrap: str) -> None:
    env = {**cli_env, "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap}

    for command in ("up", "down"):
        result = kafka(env, command)
        assert result.returncode == 0, result.stderr
        assert "external cluster is configured" in result.stdout

    status = kafka(env, "status")
    assert status.returncode == 0, status.stderr
    assert f"Kafka is up at {kafka_bootstrap}" in status.stdout


def test_status_of_an_unreachable_external_cluster_fails(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "FRAUD_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}

    status = kafka(env, "status", "--timeout", "1")

    assert status.returncode == 1
    assert "unreachable" in status.stdout
    assert env["FRAUD_KAFKA_BOOTSTRAP"] in status.stdout


def test_a_three_node_cluster_through_the_command_line(cluster3: LocalCluster) -> None:
    """up/status/topics/tool/down on the session's three-node cluster, which the commands find without being told
    its node count; a killed node shows as degraded; after `down`, `up` brings all three back with their data."""
    env = cluster_cli_env(cluster3)  # no FRAUD_KAFKA_LOCAL_NODES: the commands find the cluster that runs
    address = cluster3.bootstrap
    try:
        status = kafka(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"Kafka (3 nodes) is up at {address}" in status.stdout

        again = kafka(env, "up", "--nodes", "3")
        assert again.returncode == 0, again.stderr
        assert "already up" in again.stdout

        topics = kafka(env, "topics")
        assert topics.returncode == 0, topics.stderr
        assert "new topics get 3 replicas, min.insync.replicas 2" in topics.stdout
        assert re.search(r"transactions\s+│\s+3\s+│\s+3\s+│\s+created", topics.stdout), topics.stdout

        described = kafka(env, "tool", "kafka-topics", "--describe", "--topic", "transactions")
        assert described.returncode == 0, described.stderr
        assert "ReplicationFactor: 3" in described.stdout
        assert "min.insync.replicas=2" in described.stdout
        assert described.stdout.count("Isr: ") == 3

        killed = cluster3.node(3).kill()
        degraded = kafka(env, "status")
        assert degraded.returncode == 1
        assert "degraded: 2 of 3 nodes answer" in degraded.stdout

        stopped = kafka(env, "down")  # the two that still run
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped" in stopped.stdout
        assert not cluster3.status().any_running
        assert kafka(env, "status").returncode == 1

        restarted = kafka(env, "up", "--nodes", "3")
        assert restarted.returncode == 0, restarted.stderr
        assert "Kafka (3 nodes) is up in" in restarted.stdout
        assert cluster3.status().running
        assert cluster3.node(3).status().pid != killed
        kept = kafka(env, "topics")
        assert kept.returncode == 0, kept.stderr
        assert kept.stdout.count("exists") == len(STANDARD_TOPICS)
    finally:
        cluster3.up(timeout=180)  # the next test of the session finds its cluster whole
        delete_topics(cluster3.connection(), STANDARD_TOPICS)
