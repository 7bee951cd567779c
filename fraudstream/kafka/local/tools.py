"""Kafka's own command-line tools (``kafka-topics``, ``kafka-consumer-groups``, ...), run from the local jar set.

Kafka ships each tool as a ``bin/kafka-*.sh`` script that runs one main class; this module maps the script names
to those classes (for the Kafka version of the packaged pom) and builds the java command line, filling in the
cluster's address when the caller gave none. `fraudstream kafka tool NAME ARGS...` runs it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path


class Where(Enum):
    """Where a tool expects its ``--bootstrap-server`` option."""

    FIRST = "first"  # before a sub-command (kafka-transactions --bootstrap-server X describe ...)
    LAST = "last"  # after the sub-command's name (kafka-cluster cluster-id --bootstrap-server X)
    NONE = "none"  # the tool talks to no cluster (or takes it another way)


@dataclass(frozen=True)
class KafkaTool:
    """One of Kafka's ``bin/kafka-*.sh`` scripts: its name and the main class it runs."""

    name: str
    main_class: str
    bootstrap: Where = Where.FIRST
    summary: str = ""


_T = "org.apache.kafka.tools."
TOOLS: dict[str, KafkaTool] = {
    tool.name: tool
    for tool in (
        KafkaTool("kafka-acls", _T + "AclCommand", summary="list, add and remove ACLs"),
        KafkaTool("kafka-broker-api-versions", _T + "BrokerApiVersionsCommand", summary="API versions of each broker"),
        KafkaTool("kafka-client-metrics", _T + "ClientMetricsCommand", summary="client metrics subscriptions"),
        KafkaTool("kafka-cluster", _T + "ClusterTool", Where.LAST, "cluster id, unregister a broker"),
        KafkaTool("kafka-configs", _T + "ConfigCommand", summary="describe and alter topic, broker, client configs"),
        KafkaTool("kafka-console-consumer", _T + "consumer.ConsoleConsumer", summary="print a topic's records"),
        KafkaTool("kafka-console-producer", _T + "ConsoleProducer", summary="send lines of stdin as records"),
        KafkaTool("kafka-console-share-consumer", _T + "consumer.ConsoleShareConsumer", summary="read as share group"),
        KafkaTool(
            "kafka-consumer-groups", _T + "consumer.group.ConsumerGroupCommand", summary="groups, their lag, resets"
        ),
        KafkaTool("kafka-consumer-perf-test", _T + "ConsumerPerformance", summary="consumer throughput"),
        KafkaTool("kafka-delegation-tokens", _T + "DelegationTokenCommand", summary="delegation tokens"),
        KafkaTool("kafka-delete-records", _T + "DeleteRecordsCommand", summary="delete records up to an offset"),
        KafkaTool("kafka-dump-log", _T + "DumpLogSegments", Where.NONE, "decode log segment files on disk"),
        KafkaTool("kafka-e2e-latency", _T + "EndToEndLatency", summary="end-to-end latency"),
        KafkaTool("kafka-features", _T + "FeatureCommand", summary="cluster feature levels"),
        KafkaTool("kafka-get-offsets", _T + "GetOffsetShell", summary="offsets of topic partitions"),
        KafkaTool("kafka-groups", _T + "GroupsCommand", summary="list groups of every type"),
        KafkaTool("kafka-jmx", _T + "JmxTool", Where.NONE, "read JMX metrics"),
        KafkaTool("kafka-leader-election", _T + "LeaderElectionCommand", summary="elect preferred/unclean leaders"),
        KafkaTool("kafka-log-dirs", _T + "LogDirsCommand", summary="log directories and partition sizes"),
        KafkaTool("kafka-metadata-quorum", _T + "MetadataQuorumCommand", summary="KRaft quorum status and voters"),
        KafkaTool("kafka-producer-perf-test", _T + "ProducerPerformance", summary="producer throughput"),
        KafkaTool(
            "kafka-reassign-partitions", _T + "reassign.ReassignPartitionsCommand", summary="move partition replicas"
        ),
        KafkaTool("kafka-replica-verification", _T + "ReplicaVerificationTool", summary="compare replicas' data"),
        KafkaTool("kafka-share-consumer-perf-test", _T + "ShareConsumerPerformance", summary="share consumer speed"),
        KafkaTool("kafka-share-groups", _T + "consumer.group.ShareGroupCommand", summary="share groups"),
        KafkaTool("kafka-storage", "kafka.tools.StorageTool", Where.NONE, "format or inspect a node's storage"),
        KafkaTool("kafka-streams-application-reset", _T + "StreamsResetter", summary="reset a Streams app"),
        KafkaTool("kafka-streams-groups", _T + "streams.StreamsGroupCommand", summary="Streams groups"),
        KafkaTool("kafka-topics", _T + "TopicCommand", summary="create, list, describe, alter, delete topics"),
        KafkaTool("kafka-transactions", _T + "TransactionsCommand", summary="list, describe, abort transactions"),
        KafkaTool("kafka-verifiable-consumer", _T + "VerifiableConsumer", summary="test consumer (JSON events)"),
        KafkaTool("kafka-verifiable-producer", _T + "VerifiableProducer", summary="test producer (JSON events)"),
        KafkaTool(
            "kafka-verifiable-share-consumer", _T + "VerifiableShareConsumer", summary="test share consumer (JSON)"
        ),
    )
}
"""Kafka 4.4's ``bin/kafka-*.sh`` scripts and their main classes. Left out: Connect's scripts (its runtime is not
in the jar set), kafka-metadata-shell (its own artifact), kafka-server-start/stop (`fraudstream kafka up/down`)."""

BOOTSTRAP_OPTIONS = ("--bootstrap-server", "--bootstrap-controller", "--broker-list")
TOOL_HEAP = "256m"  # what Kafka's kafka-run-class.sh gives a tool


def find_tool(name: str) -> KafkaTool | None:
    """The tool a user means by ``name``: ``kafka-topics``, ``kafka-topics.sh`` or ``topics``."""
    bare = name.removesuffix(".sh")
    return TOOLS.get(bare) or TOOLS.get(f"kafka-{bare}")


def tool_arguments(tool: KafkaTool, args: Sequence[str], bootstrap: str | None) -> list[str]:
    """``args`` with ``--bootstrap-server <bootstrap>`` added where the tool expects it, unless the caller named a
    cluster already (or the tool needs none, or the caller only asks for help or the version)."""
    given = list(args)
    named = any(arg.split("=", 1)[0] in BOOTSTRAP_OPTIONS for arg in given)
    asks_only = any(arg in ("--help", "-h", "--version") for arg in given)
    if not bootstrap or named or asks_only or tool.bootstrap is Where.NONE:
        return given
    option = ["--bootstrap-server", bootstrap]
    return [*option, *given] if tool.bootstrap is Where.FIRST else [*given, *option]


def tools_log_config() -> Path:
    """The tools' logging configuration (warnings and errors to stderr, as Kafka's own tools-log4j2.yaml)."""
    return Path(str(resources.files(__package__).joinpath("tools-log4j2.yaml")))


def tool_command(
    tool: KafkaTool, args: Sequence[str], *, java: str, libs_dir: Path, bootstrap: str | None
) -> list[str]:
    """The java command line that runs ``tool`` with ``args`` on the jars in ``libs_dir``."""
    return [
        java,
        f"-Xmx{TOOL_HEAP}",
        "-XX:TieredStopAtLevel=1",  # a tool runs for seconds: the quick compiler starts it faster
        f"-Dlog4j2.configurationFile={tools_log_config()}",
        "-Djava.awt.headless=true",
        "-cp",
        f"{libs_dir}{os.sep}*",
        tool.main_class,
        *tool_arguments(tool, args, bootstrap),
    ]
