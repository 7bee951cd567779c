"""`fraudstream kafka up | down | status | topics | fetch | tool`: the local Kafka, the flow's topics, Kafka's tools.

The local Kafka is one node, or a cluster of several (``--nodes 3`` or FRAUD_KAFKA_LOCAL_NODES). Without either,
status/down/topics/tool act on the local Kafka that runs in the state folder. With FRAUD_KAFKA_BOOTSTRAP set, an
external cluster is in charge: up/down leave it alone, status checks that it answers, topics creates the flow's
topics on it, and tool runs Kafka's tools against it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fraudstream.cli.common import ExitCode, console, err_console, example, settings_or_exit
from fraudstream.exceptions import BrokerError

if TYPE_CHECKING:
    from fraudstream.kafka.local.cluster import ClusterStatus, LocalCluster
    from fraudstream.kafka.topics import TopicsReport
    from fraudstream.settings import Settings

app = typer.Typer(
    help="The local Apache Kafka (KRaft, one node or a cluster, run on your Java), the flow's topics, Kafka's tools.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

NODES_HELP = "Nodes of the local Kafka (default: FRAUD_KAFKA_LOCAL_NODES, else the one that runs)."


@app.command(
    epilog=example(
        "fraudstream kafka up", "fraudstream kafka up --nodes 3", "FRAUD_KAFKA_LOCAL_PORT=29092 fraudstream kafka up"
    )
)
def up(
    nodes: Annotated[int | None, typer.Option("--nodes", "-n", min=1, max=5, help=NODES_HELP)] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for every node to answer.")] = 90.0,
) -> None:
    """Start the local Kafka (fetching its jars with Maven the first time) and wait until every node answers."""
    settings, cluster = _local(nodes)
    if cluster is None:
        _external_notice(settings, "start")
        return
    before = cluster.status()
    _announce_fetch(cluster)
    started = time.monotonic()
    with console.status(f"Starting Kafka on {cluster.bootstrap} ...") as spinner:
        state = cluster.up(timeout=timeout, progress=lambda line: spinner.update(escape(line)))
    took = time.monotonic() - started
    unchanged = before.running and _pids(before) == _pids(state)
    if cluster.size == 1:
        node = state.nodes[0]
        word = "[green]already up[/green]" if unchanged else "[green]up[/green]"
        console.print(f"Kafka is {word} at [bold]{node.bootstrap}[/bold] (pid {node.pid})")
    else:
        word = "[green]already up[/green]" if unchanged else f"[green]up[/green] in {took:.1f} s"
        console.print(f"Kafka ({cluster.size} nodes) is {word} at [bold]{cluster.bootstrap}[/bold]", soft_wrap=True)
    _print_layout(settings, cluster, state)
    if cluster.size > 1 and "kafka_local_nodes" not in settings.model_fields_set and nodes:
        console.print(
            f"  Other commands find this cluster while it runs; FRAUD_KAFKA_LOCAL_NODES={cluster.size} makes it the "
            "default (and gives every client all nodes' addresses).",
            soft_wrap=True,
        )


@app.command(epilog=example("fraudstream kafka down"))
def down(
    nodes: Annotated[int | None, typer.Option("--nodes", "-n", min=1, max=5, help=NODES_HELP)] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for a clean shutdown before SIGKILL.")] = 30.0,
) -> None:
    """Stop the local Kafka, every node (its topics and data stay for the next `up`)."""
    settings, cluster = _local(nodes)
    if cluster is None:
        _external_notice(settings, "stop")
        return
    with console.status(f"Stopping Kafka on {cluster.bootstrap} ..."):
        pids = cluster.down(timeout=timeout)
    if not pids:
        console.print(f"Kafka is not running on {cluster.bootstrap}: nothing to stop", soft_wrap=True)
        return
    where = cluster.nodes[0].data_dir if cluster.size == 1 else cluster.home
    shown = ", ".join(str(pid) for pid in pids)
    console.print(f"Kafka [yellow]stopped[/yellow] (pid {shown}); data kept in {where}", soft_wrap=True)


@app.command(epilog=example("fraudstream kafka status", "fraudstream kafka status || fraudstream kafka up"))
def status(
    nodes: Annotated[int | None, typer.Option("--nodes", "-n", min=1, max=5, help=NODES_HELP)] = None,
    timeout: Annotated[float, typer.Option(min=0.5, help="Seconds to wait for the cluster to answer.")] = 5.0,
) -> None:
    """Say whether Kafka (local or FRAUD_KAFKA_BOOTSTRAP) is up and answering; exit 1 when any node (or the lone
    broker's KRaft controller) is not."""
    settings, cluster = _local(nodes)
    if cluster is None:
        _external_status(settings, timeout)
        return
    state = cluster.status()
    if not state.any_running:
        console.print(
            f"Kafka is [red]down[/red]: nothing runs on {state.bootstrap}; start it: `fraudstream kafka up`",
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.FAILED)
    if cluster.size == 1:
        _lone_status(settings, cluster, state, timeout)
        return
    answering = {node.node_id for node in cluster.nodes if node.status().running and node.ping(timeout=timeout)}
    if len(answering) == cluster.size:
        console.print(f"Kafka ({cluster.size} nodes) is [green]up[/green] at [bold]{cluster.bootstrap}[/bold]")
    else:
        console.print(
            f"Kafka ({cluster.size} nodes) is [yellow]degraded[/yellow]: {len(answering)} of {cluster.size} nodes "
            "answer; `fraudstream kafka up` starts the others",
            soft_wrap=True,
        )
    _print_layout(settings, cluster, state, answering=answering)
    if len(answering) < cluster.size:
        raise typer.Exit(ExitCode.FAILED)


@app.command(
    epilog=example("fraudstream kafka topics", "FRAUD_KAFKA_BOOTSTRAP=kafka-1:9092 fraudstream kafka topics -p 12")
)
def topics(
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions", "-p", min=1, help="Partitions of each new topic (default: FRAUD_TOPIC_PARTITIONS)."
        ),
    ] = None,
    nodes: Annotated[int | None, typer.Option("--nodes", "-n", min=1, max=5, help=NODES_HELP)] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the cluster.")] = 15.0,
) -> None:
    """Create the flow's topics (transactions, fraud-alerts, DLQ, compacted fraud-feedback) where missing; existing
    ones are left as they are."""
    from fraudstream.kafka.topics import ensure_feedback_topic, ensure_flow_topics, min_insync_replicas_for

    settings, cluster = _local(nodes, topic_partitions=partitions)
    if cluster is not None and not cluster.status().any_running:
        raise BrokerError(f"no local broker runs on {settings.bootstrap_servers}: start it with `fraudstream kafka up`")
    replication = settings.topic_replication_factor
    report = ensure_flow_topics(settings, timeout=timeout)
    compacted = ensure_feedback_topic(settings, timeout=timeout)
    console.print(f"Topics on [bold]{settings.bootstrap_servers}[/bold]", soft_wrap=True)
    if replication:
        min_isr = min_insync_replicas_for(replication)
        console.print(f"  new topics get {replication} replicas, min.insync.replicas {min_isr}")
    console.print(_topics_table(report, compacted))


@app.command(epilog=example("fraudstream kafka fetch", "FRAUD_KAFKA_CACHE_DIR=/opt/kafka-jars fraudstream kafka fetch"))
def fetch() -> None:
    """Only resolve the local Kafka's jars (broker and tools) with Maven into the cache (for offline use, CI)."""
    from fraudstream.kafka.local.layout import local_cluster

    cluster = local_cluster(settings_or_exit())
    if cluster.jars_ready():
        console.print(f"Kafka {cluster.kafka_version} jars already in {cluster.libs_dir}", soft_wrap=True)
        return
    _announce_fetch(cluster)
    with console.status("Resolving Kafka jars with Maven ...") as spinner:
        libs = cluster.ensure_jars(progress=lambda line: spinner.update(escape(line)))
    jars = list(libs.glob("*.jar"))
    size_mb = sum(jar.stat().st_size for jar in jars) / 1e6
    console.print(
        f"Kafka {cluster.kafka_version} jars [green]ready[/green]: {len(jars)} jars, {size_mb:.0f} MB in {libs}",
        soft_wrap=True,
    )


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog=example(
        "fraudstream kafka tool kafka-topics --describe --topic transactions",
        "fraudstream kafka tool kafka-consumer-groups --describe --group fraudstream-scorer",
        "fraudstream kafka tool kafka-console-consumer --topic fraud-alerts --from-beginning "
        "--isolation-level read_committed",
        "fraudstream kafka tool",
    ),
)
def tool(
    name: Annotated[str | None, typer.Argument(help="A Kafka tool (kafka-topics, kafka-consumer-groups, ...).")] = None,
    args: Annotated[list[str] | None, typer.Argument(help="Its arguments, passed as given.")] = None,
    nodes: Annotated[int | None, typer.Option("--nodes", "-n", min=1, max=5, help=NODES_HELP)] = None,
) -> None:
    """Run one of Kafka's own tools (as its bin/kafka-*.sh would) against the cluster; --bootstrap-server is
    filled in unless given. Without a name, list them. Everything after the name goes to the tool."""
    from fraudstream.kafka.local.tools import TOOLS, find_tool, tool_command

    if name is None:
        table = Table(title="Kafka's tools (`fraudstream kafka tool NAME --help` shows each one's options)")
        table.add_column("name")
        table.add_column("what it does")
        for known in TOOLS.values():
            table.add_row(known.name, known.summary)
        console.print(table)
        return
    chosen = find_tool(name)
    if chosen is None:
        err_console.print(
            f"[red]no Kafka tool named {escape(name)!r}[/red]; `fraudstream kafka tool` lists them", soft_wrap=True
        )
        raise typer.Exit(ExitCode.BAD_USAGE)
    settings, cluster = _local(nodes)
    if cluster is None:
        from fraudstream.kafka.local.layout import local_cluster

        jars = local_cluster(settings).jars
        _warn_security(settings, args or [])
    else:
        jars = cluster.jars
    if not jars.ready():
        with err_console.status("Fetching the Kafka jars with Maven (first run only) ...") as spinner:
            jars.ensure(progress=lambda line: spinner.update(escape(line)))
    from fraudstream.kafka.local.prerequisites import require_tool

    java = require_tool("java")
    command = tool_command(chosen, args or [], java=java, libs_dir=jars.libs_dir, bootstrap=settings.bootstrap_servers)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(java, command)  # the tool takes over this process: its output, exit code and Ctrl-C are its own


# ---- helpers -------------------------------------------------------------------------------------------------
def _local(nodes: int | None, **overrides: object) -> tuple[Settings, LocalCluster | None]:
    """This shell's settings, with the node count a command means; the local cluster (None for an external one)."""
    settings = settings_or_exit(**overrides)
    if not settings.uses_local_broker:
        return settings, None
    from fraudstream.kafka.local.layout import local_cluster, resolve_nodes

    count = resolve_nodes(settings, nodes)
    if count != settings.kafka_local_nodes:
        settings = settings_or_exit(**overrides, kafka_local_nodes=count)
    return settings, local_cluster(settings)


def _pids(state: ClusterStatus) -> list[int | None]:
    """Every process's pid: the nodes', then the lone broker's controller's."""
    return [node.pid for node in state.nodes] + ([state.controller.pid] if state.controller is not None else [])


def _announce_fetch(cluster: LocalCluster) -> None:
    if not cluster.jars_ready():
        console.print(
            f"Fetching the Kafka {cluster.kafka_version} jars with Maven into {cluster.libs_dir} "
            "(once per release of fraudstream's pinned set, about a minute) ...",
            soft_wrap=True,
        )


def _lone_status(settings: Settings, cluster: LocalCluster, state: ClusterStatus, timeout: float) -> None:
    """The lone broker and its controller: exit 1 unless both run and the broker answers."""
    node, controller = state.nodes[0], state.controller
    answering = node.running and cluster.nodes[0].ping(timeout=timeout)
    controller_up = controller is not None and controller.running
    if answering and controller_up:
        console.print(f"Kafka is [green]up[/green] at [bold]{node.bootstrap}[/bold] (pid {node.pid})")
    elif answering:
        console.print(
            f"Kafka is [yellow]degraded[/yellow] at {node.bootstrap} (pid {node.pid}): the broker answers but its "
            "KRaft controller is down; `fraudstream kafka up` starts it",
            soft_wrap=True,
        )
    elif node.running:
        console.print(
            f"Kafka is [red]not answering[/red] on {node.bootstrap} (pid {node.pid} runs); see {node.log_file}",
            soft_wrap=True,
        )
    else:
        console.print(
            f"Kafka is [red]down[/red]: no broker runs on {node.bootstrap} (its controller does); start it: "
            "`fraudstream kafka up`",
            soft_wrap=True,
        )
    _print_layout(settings, cluster, state)
    if not (answering and controller_up):
        raise typer.Exit(ExitCode.FAILED)


def _print_layout(
    settings: Settings, cluster: LocalCluster, state: ClusterStatus, answering: set[int] | None = None
) -> None:
    if cluster.size == 1:
        node, controller = state.nodes[0], state.controller
        console.print(f"  bootstrap:  {node.bootstrap}", soft_wrap=True)
        console.print(f"  log:        {node.log_file}", soft_wrap=True)
        console.print(f"  data:       {node.data_dir}", soft_wrap=True)
        if controller is not None:
            shown = f"pid {controller.pid}" if controller.running else "[red]down[/red]: `fraudstream kafka up`"
            console.print(f"  controller: {controller.bootstrap} ({shown}), log {controller.log_file}", soft_wrap=True)
        return
    table = Table()
    for column in ("node", "address", "pid", "state", "log"):
        table.add_column(column, overflow="fold")
    for node in state.nodes:
        if not node.running:
            shown = "[red]down[/red]"
        elif answering is None or node.node_id in answering:
            shown = "[green]up[/green]"
        else:
            shown = "[red]not answering[/red]"
        table.add_row(str(node.node_id), node.bootstrap, str(node.pid or "-"), shown, str(node.log_file))
    console.print(table)
    replication = settings.topic_replication_factor or 1
    from fraudstream.kafka.topics import min_insync_replicas_for

    console.print(
        f"  topics: {replication} replicas, min.insync.replicas {min_insync_replicas_for(replication)} "
        f"(internal topics too); data in {cluster.home}",
        soft_wrap=True,
    )


def _topics_table(*reports: TopicsReport) -> Table:
    table = Table()
    table.add_column("topic")
    table.add_column("partitions", justify="right")
    table.add_column("replicas", justify="right")
    table.add_column("state")
    for report in reports:
        for name, count in report.partitions.items():
            state = "[green]created[/green]" if name in report.created else "exists"
            table.add_row(name, str(count), str(report.replicas.get(name) or "?"), state)
    return table


def _warn_security(settings: Settings, args: list[str]) -> None:
    """Kafka's tools take a secured cluster's settings from a properties file, not from FRAUD_KAFKA_* variables."""
    if settings.kafka_security_protocol == "PLAINTEXT" or any("config" in arg for arg in args):
        return
    err_console.print(
        f"[yellow]note[/yellow]: the cluster uses {settings.kafka_security_protocol}; give the tool its client "
        "settings in a properties file (e.g. --command-config client.properties)",
        soft_wrap=True,
    )


def _external_notice(settings: Settings, verb: str) -> None:
    console.print(
        f"An external cluster is configured (FRAUD_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}): nothing to {verb}. "
        "Unset FRAUD_KAFKA_BOOTSTRAP to use the local broker.",
        soft_wrap=True,
    )


def _external_status(settings: Settings, timeout: float) -> None:
    from fraudstream.kafka.topics import probe_cluster

    try:
        info = probe_cluster(settings.kafka(), timeout=timeout)
    except BrokerError as exc:
        console.print(f"Kafka is [red]unreachable[/red]: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from exc
    console.print(
        f"Kafka is [green]up[/green] at [bold]{info.bootstrap}[/bold] (external cluster {info.cluster_id}, "
        f"{info.brokers} broker(s), {len(info.topics)} topic(s))",
        soft_wrap=True,
    )
