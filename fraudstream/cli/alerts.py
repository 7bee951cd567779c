"""`fraudstream alerts tail`: follow the fraud-alerts topic (committed alerts only) and print them."""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING

import typer

from fraudstream.cli.common import console, err_console, example, settings_or_exit

if TYPE_CHECKING:
    from fraudstream.schemas import Alert

app = typer.Typer(help="Read the fraud-alerts stream.", no_args_is_help=True)


def _line(alert: Alert) -> str:
    label = {None: "", 0: "  [yellow](label: legit)[/yellow]", 1: "  [red](label: fraud)[/red]"}[alert.label]
    return (
        f"[bold]{alert.event_time:%H:%M:%S}[/bold] {alert.transaction_id:<28} "
        f"score [bold red]{alert.score:.3f}[/bold red] ≥ {alert.threshold:.3f}  amount {alert.amount:>9.2f}  "
        f"{alert.model_name} v{alert.model_version}  p{alert.partition}@{alert.offset}{label}"
    )


@app.command(
    "tail",
    epilog=example(
        "fraudstream alerts tail",
        "fraudstream alerts tail --from-beginning --limit 20",
        "fraudstream alerts tail --json | jq .score",
    ),
)
def tail(
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the oldest alert, not the next."),
    limit: int = typer.Option(0, "--limit", min=0, help="Stop after this many alerts (0: follow until Ctrl-C)."),
    as_json: bool = typer.Option(False, "--json", help="Print each alert as one JSON line (for pipes)."),
) -> None:
    """Print alerts from fraud-alerts as they are committed (isolation.level=read_committed)."""
    from confluent_kafka import Consumer, KafkaError

    from fraudstream.kafka.clients import consumer_config
    from fraudstream.schemas import Alert
    from fraudstream.shutdown import GracefulStop

    settings = settings_or_exit()
    consumer = Consumer(
        consumer_config(
            settings.kafka(),
            group_id=f"fraudstream-tail-{uuid.uuid4().hex[:8]}",  # a private group: tailing moves no one's offsets
            client_id="fraudstream-tail",
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
    )
    consumer.subscribe([settings.topic_alerts])
    err_console.print(f"following [bold]{settings.topic_alerts}[/bold] on {settings.bootstrap_servers} (Ctrl-C stops)")
    shown = 0
    try:
        with GracefulStop() as stop:
            while not stop.is_set() and (limit == 0 or shown < limit):
                for message in consumer.consume(num_messages=100, timeout=0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            err_console.print(f"[red]kafka error[/red]: {error}")
                        continue
                    raw = message.value() or b""
                    if as_json:
                        sys.stdout.write(raw.decode("utf-8", "replace") + "\n")
                        sys.stdout.flush()
                    else:
                        try:
                            console.print(_line(Alert.model_validate_json(raw)))
                        except ValueError as exc:
                            err_console.print(f"[yellow]not an alert[/yellow] at offset {message.offset()}: {exc}")
                            continue
                    shown += 1
                    if limit and shown >= limit:
                        break
    finally:
        consumer.close()
    err_console.print(f"{shown} alert(s) shown")
