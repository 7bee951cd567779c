"""`fraudstream alerts tail`: follow the fraud-alerts topic (committed alerts only) and print them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

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
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest alert, not the next.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Stop after this many alerts (0: follow until Ctrl-C).")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print each alert as one JSON line (for pipes).")] = False,
) -> None:
    """Print alerts from fraud-alerts as they are committed (isolation.level=read_committed)."""
    import contextlib

    from fraudstream.kafka.follow import follow_topic
    from fraudstream.schemas import Alert
    from fraudstream.shutdown import GracefulStop

    settings = settings_or_exit()
    decode = _raw_line if as_json else Alert.model_validate_json
    shown = 0
    with GracefulStop() as stop:
        alerts = follow_topic(
            settings,
            settings.topic_alerts,
            decode,
            stop=stop,
            start="beginning" if from_beginning else "end",
            on_ready=lambda: err_console.print(
                f"following [bold]{settings.topic_alerts}[/bold] on {settings.bootstrap_servers} (Ctrl-C stops)"
            ),
            on_invalid=_not_an_alert,
            on_error=lambda error: err_console.print(f"[red]kafka error[/red]: {error}"),
            client_id="fraudstream-tail",
            batch_size=100,
        )
        with contextlib.closing(alerts):
            for item in alerts:
                if as_json:
                    sys.stdout.write(item.value + "\n")
                    sys.stdout.flush()
                else:
                    console.print(_line(item.value))
                shown += 1
                if limit and shown >= limit:
                    break
    err_console.print(f"{shown} alert(s) shown")


def _raw_line(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _not_an_alert(partition: int, offset: int, error: Exception) -> None:
    err_console.print(f"[yellow]not an alert[/yellow] at offset {offset} of partition {partition}: {error}")
