"""`fraudstream kafka tool ...`: Kafka's own tools, run from the jar set against the session's real broker."""

from __future__ import annotations

import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from fraudstream.kafka.clients import consumer_config, producer_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.jars import JarCache
from fraudstream.kafka.local.tools import TOOLS

from .child_env import child_env

FRAUDSTREAM = Path(sys.executable).with_name("fraudstream")


@pytest.fixture(scope="module")
def jar_set(kafka_cache_dir: Path) -> Path:
    return JarCache(kafka_cache_dir).ensure()


@pytest.fixture
def tool_env(kafka_bootstrap: str, kafka_cache_dir: Path) -> dict[str, str]:
    return child_env({"kafka_bootstrap": kafka_bootstrap, "kafka_cache_dir": kafka_cache_dir}, COLUMNS="200")


def tool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FRAUDSTREAM), "kafka", "tool", *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_every_tool_runs_a_main_class_the_jar_set_holds(jar_set: Path) -> None:
    classes: set[str] = set()
    for jar in jar_set.glob("*.jar"):
        with zipfile.ZipFile(jar) as archive:
            classes.update(name[: -len(".class")].replace("/", ".") for name in archive.namelist())

    missing = {name: known.main_class for name, known in TOOLS.items() if known.main_class not in classes}
    assert missing == {}


def test_topics_groups_and_a_read_committed_console_consumer(
    tool_env: dict[str, str], kafka_bootstrap: str, new_topic: object, jar_set: Path
) -> None:
    topic = new_topic("tools", partitions=3)  # type: ignore[operator]
    group = f"tools-group-{uuid.uuid4().hex[:8]}"
    conn = KafkaConnection(bootstrap_servers=kafka_bootstrap)
    producer = Producer(producer_config(conn, client_id="tools-writer", transactional_id=f"tools-{uuid.uuid4().hex}"))
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"card-1", value=b"aborted", partition=0)
    producer.flush(30)  # written to the log (offset 0), so the abort leaves a record read_committed must skip
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"card-1", value=b"committed", partition=0)
    producer.commit_transaction(30)
    consumer = Consumer(consumer_config(conn, group_id=group, client_id="tools-reader"))
    consumer.subscribe([topic])
    messages: list[object] = []
    for _ in range(60):
        messages = consumer.consume(num_messages=10, timeout=1.0)
        if messages:
            break
    assert messages, "the committed record never arrived"
    consumer.commit(message=messages[-1], asynchronous=False)  # type: ignore[arg-type]
    consumer.close()

    described = tool(tool_env, "kafka-topics", "--describe", "--topic", topic)  # no --bootstrap-server given
    assert described.returncode == 0, described.stderr
    assert f"Topic: {topic}" in described.stdout
    assert "PartitionCount: 3" in described.stdout

    groups = tool(tool_env, "kafka-consumer-groups", "--describe", "--group", group)
    assert groups.returncode == 0, groups.stderr
    header, *rows = [line.split() for line in groups.stdout.splitlines() if line.strip()]
    assert header[:5] == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET"]
    partition0 = next(row for row in rows if row[1] == topic and row[2] == "0")
    assert partition0[0] == group
    # offsets: 0 aborted record, 1 abort marker, 2 committed record, 3 commit marker; the group committed 3
    assert (partition0[3], partition0[4], partition0[5]) == ("3", "4", "1")

    read = tool(
        tool_env,
        "kafka-console-consumer",
        "--topic", topic, "--from-beginning", "--max-messages", "1", "--isolation-level", "read_committed",
        "--formatter-property", "print.key=true", "--timeout-ms", "60000",
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines() == ["card-1\tcommitted"]  # the aborted record is skipped
    assert "Processed a total of 1 messages" in read.stderr


def test_a_bootstrap_the_user_gives_wins(
    tool_env: dict[str, str], kafka_bootstrap: str, new_topic: object, jar_set: Path
) -> None:
    topic = new_topic("tools-own", partitions=1)  # type: ignore[operator]
    nobody = {**tool_env, "FRAUD_KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # what fraudstream would fill in: nobody there

    listed = tool(nobody, "kafka-topics", "--list", "--bootstrap-server", kafka_bootstrap)

    assert listed.returncode == 0, listed.stderr
    assert topic in listed.stdout.split()


def test_the_tool_list_and_an_unknown_name(tool_env: dict[str, str]) -> None:
    listed = tool(tool_env)
    assert listed.returncode == 0, listed.stderr
    for name in ("kafka-topics", "kafka-consumer-groups", "kafka-console-consumer", "kafka-transactions"):
        assert name in listed.stdout

    unknown = tool(tool_env, "kafka-nonsense")
    assert unknown.returncode == 2
    assert "no Kafka tool named 'kafka-nonsense'" in unknown.stderr
