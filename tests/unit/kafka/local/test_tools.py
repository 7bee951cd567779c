"""Kafka's own tools: each script name maps to its main class, and the cluster's address is filled in where missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.kafka.local.tools import TOOLS, Where, find_tool, tool_arguments, tool_command, tools_log_config

BOOT = "127.0.0.1:9092,127.0.0.1:9093"


@pytest.mark.parametrize("spelling", ["kafka-topics", "kafka-topics.sh", "topics"])
def test_a_tool_is_found_by_its_script_name_with_or_without_prefix_and_suffix(spelling: str) -> None:
    tool = find_tool(spelling)
    assert tool is not None
    assert tool.main_class == "org.apache.kafka.tools.TopicCommand"


def test_unknown_names_are_not_guessed() -> None:
    assert find_tool("kafka-topic") is None
    assert find_tool("rm") is None


def test_the_tools_the_issue_names_are_mapped() -> None:
    assert TOOLS["kafka-consumer-groups"].main_class == "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
    assert TOOLS["kafka-console-consumer"].main_class == "org.apache.kafka.tools.consumer.ConsoleConsumer"
    assert TOOLS["kafka-transactions"].main_class == "org.apache.kafka.tools.TransactionsCommand"
    assert all(name.startswith("kafka-") and tool.summary for name, tool in TOOLS.items())


def test_the_bootstrap_is_added_where_the_tool_expects_it() -> None:
    topics, cluster, storage = TOOLS["kafka-topics"], TOOLS["kafka-cluster"], TOOLS["kafka-storage"]

    assert tool_arguments(topics, ["--list"], BOOT) == ["--bootstrap-server", BOOT, "--list"]
    assert tool_arguments(TOOLS["kafka-transactions"], ["describe", "--transactional-id", "t"], BOOT)[:2] == [
        "--bootstrap-server",
        BOOT,
    ]
    assert cluster.bootstrap is Where.LAST
    assert tool_arguments(cluster, ["cluster-id"], BOOT) == ["cluster-id", "--bootstrap-server", BOOT]
    assert tool_arguments(storage, ["info", "-c", "x"], BOOT) == ["info", "-c", "x"]


@pytest.mark.parametrize(
    "given",
    [
        ["--bootstrap-server", "other:1", "--list"],
        ["--list", "--bootstrap-server=other:1"],
        ["--bootstrap-controller", "other:2", "describe"],
        ["--help"],
    ],
)
def test_what_the_user_gave_is_left_as_it_is(given: list[str]) -> None:
    assert tool_arguments(TOOLS["kafka-topics"], given, BOOT) == given


def test_the_command_runs_the_main_class_on_the_jar_set(tmp_path: Path) -> None:
    command = tool_command(TOOLS["kafka-topics"], ["--list"], java="/usr/bin/java", libs_dir=tmp_path, bootstrap=BOOT)

    assert command[0] == "/usr/bin/java"
    assert command[command.index("-cp") + 1] == f"{tmp_path}/*"
    assert command[-4:] == ["org.apache.kafka.tools.TopicCommand", "--bootstrap-server", BOOT, "--list"]
    assert f"-Dlog4j2.configurationFile={tools_log_config()}" in command
    assert tools_log_config().is_file()
