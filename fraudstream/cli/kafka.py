"""`fraudstream kafka up | down | status | topics | fetch`: the local broker and the flow's topics.

With FRAUD_KAFKA_BOOTSTRAP set, an external cluster is in charge: up/down leave it alone, status checks that it
answers, and topics creates the flow's topics on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from fraudstream.cli.common import console, example, settings_or_exit
from fraudstream.exceptions import BrokerError

if TYPE_CHECKING:
    from fraudstream.kafka.launcher import BrokerStatus, LocalBroker
    from fraudstream.settings import Settings

app = typer.Typer(
    help="The local Apache Kafka broker (KRaft, one node, run on your Java) and the flow's topics.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@app.command(epilog=example("fraudstream kafka up", "FRAUD_KAFKA_LOCAL_PORT=29092 fraudstream kafka up"))
def up(
    timeout: float = typer.Option(60.0, min=1, help="Seconds to wait for the broker to answer."),
) -> None:
    """Start the local broker (fetching its jars with Maven the first time) and wait until it answers."""
    settings = settings_or_exit()
    if not settings.uses_local_broker:
        _external_notice(settings, "start")
        return
    broker = _broker(settings)
    before = broker.status()
    _announce_fetch(broker)
    with console.status(f"Starting Kafka on {broker.bootstrap} ...") as spinner:
        status = broker.up(timeout=timeout, progress=spinner.update)
    if before.running and before.pid == status.pid:
        console.print(f"Kafka is [green]already up[/green] at [bold]{status.bootstrap}[/bold] (pid {status.pid})")
    else:
        console.print(f"Kafka is [green]up[/green] at [bold]{status.bootstrap}[/bold] (pid {status.pid})")
    _print_paths(status)


@app.command(epilog=example("fraudstream kafka down"))
def down(
    timeout: float = typer.Option(30.0, min=1, help="Seconds to wait for a clean shutdown before SIGKILL."),
) -> None:
    """Stop the local broker (its topics and data stay for the next `up`)."""
    settings = settings_or_exit()
    if not settings.uses_local_broker:
        _external_notice(settings, "stop")
        return
    broker = _broker(settings)
    with console.status(f"Stopping Kafka on {broker.bootstrap} ..."):
        pid = broker.down(timeout=timeout)
    if pid is None:
        console.print(f"Kafka is not running on {broker.bootstrap}: nothing to stop")
    else:
        console.print(f"Kafka [yellow]stopped[/yellow] (pid {pid}); data kept in {broker.data_dir}", soft_wrap=True)


@app.command(epilog=example("fraudstream kafka status", "fraudstream kafka status || fraudstream kafka up"))
def status(
    timeout: float = typer.Option(5.0, min=0.5, help="Seconds to wait for the cluster to answer."),
) -> None:
    """Say whether the broker (local or FRAUD_KAFKA_BOOTSTRAP) is up and answering; exit 1 when it is not."""
    settings = settings_or_exit()
    if not settings.uses_local_broker:
        _external_status(settings, timeout)
        return
    broker = _broker(settings)
    state = broker.status()
    if not state.running:
        console.print(f"Kafka is [red]down[/red]: nothing runs on {state.bootstrap}; start it: `fraudstream kafka up`")
        raise typer.Exit(1)
    if not broker.ping(timeout=timeout):
        console.print(
            f"Kafka is [red]not answering[/red] on {state.bootstrap} (pid {state.pid} runs); see {state.log_file}",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    console.print(f"Kafka is [green]up[/green] at [bold]{state.bootstrap}[/bold] (pid {state.pid})")
    _print_paths(state)


@app.command(
    epilog=example("fraudstream kafka topics", "FRAUD_KAFKA_BOOTSTRAP=kafka-1:9092 fraudstream kafka topics -p 12")
)
def topics(
    partitions: int | None = typer.Option(
        None, "--partitions", "-p", min=1, help="Partitions of each new topic (default: FRAUD_TOPIC_PARTITIONS)."
    ),
    timeout: float = typer.Option(15.0, min=1, help="Seconds to wait for the cluster."),
) -> None:
    """Create the flow's topics (transactions, fraud-alerts, DLQ, compacted fraud-feedback) where missing; existing
    ones are left as they are."""
    from fraudstream.kafka.topics import COMPACTED, ensure_topics, feedback_topics, standard_topics

    settings = settings_or_exit(topic_partitions=partitions)
    if settings.uses_local_broker and not _broker(settings).status().running:
        raise BrokerError(f"no local broker runs on {settings.bootstrap_servers}: start it with `fraudstream kafka up`")
    report = ensure_topics(
        settings.kafka(),
        standard_topics(settings),
        replication_factor=settings.topic_replication_factor,
        timeout=timeout,
    )
    compacted = ensure_topics(
        settings.kafka(),
        feedback_topics(settings),
        replication_factor=settings.topic_replication_factor,
        timeout=timeout,
        config=COMPACTED,
    )
    table = Table(title=f"Topics on {settings.bootstrap_servers}")
    table.add_column("topic")
    table.add_column("partitions", justify="right")
    table.add_column("state")
    for result in (report, compacted):
        for name, count in result.partitions.items():
            state = "[green]created[/green]" if name in result.created else "exists"
            table.add_row(name, str(count), state)
    console.print(table)


@app.command(epilog=example("fraudstream kafka fetch", "FRAUD_KAFKA_CACHE_DIR=/opt/kafka-jars fraudstream kafka fetch"))
def fetch() -> None:
    """Only resolve the local broker's jars with Maven into the cache (for offline use later, or a CI cache)."""
    settings = settings_or_exit()
    broker = _broker(settings)
    if broker.jars_ready():
        console.print(f"Kafka {broker.kafka_version} jars already in {broker.libs_dir}", soft_wrap=True)
        return
    _announce_fetch(broker)
    with console.status("Resolving Kafka jars with Maven ...") as spinner:
        libs = broker.ensure_jars(progress=spinner.update)
    jars = list(libs.glob("*.jar"))
    size_mb = sum(jar.stat().st_size for jar in jars) / 1e6
    console.print(
        f"Kafka {broker.kafka_version} jars [green]ready[/green]: {len(jars)} jars, {size_mb:.0f} MB in {libs}",
        soft_wrap=True,
    )


# ---- helpers -------------------------------------------------------------------------------------------------
def _broker(settings: Settings) -> LocalBroker:
    from fraudstream.kafka.launcher import LocalBroker

    return LocalBroker.from_settings(settings)


def _announce_fetch(broker: LocalBroker) -> None:
    if not broker.jars_ready():
        console.print(
            f"Fetching the Kafka {broker.kafka_version} jars with Maven into {broker.libs_dir} "
            "(first run only, about a minute) ...",
            soft_wrap=True,
        )


def _print_paths(status: BrokerStatus) -> None:
    console.print(f"  bootstrap: {status.bootstrap}", soft_wrap=True)
    console.print(f"  log:       {status.log_file}", soft_wrap=True)
    console.print(f"  data:      {status.data_dir}", soft_wrap=True)


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
        raise typer.Exit(1) from exc
    console.print(
        f"Kafka is [green]up[/green] at [bold]{info.bootstrap}[/bold] (external cluster {info.cluster_id}, "
        f"{info.brokers} broker(s), {len(info.topics)} topic(s))",
        soft_wrap=True,
    )
