"""`fraudstream serve` (the HTTP API under uvicorn) and `fraudstream sink` (the alert sink as its own process)."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from fraudstream.cli.common import ExitCode, console, err_console, example, settings_or_exit

if TYPE_CHECKING:
    from api.sink.alerts import AlertSink


SERVE_HELP = (
    "Run the HTTP API: /predict with the production model, /alerts from the alert store, health and metrics."
    "\n\nThe alert sink runs inside this process unless FRAUD_API_RUN_SINK=false (then run `fraudstream sink` "
    "once for all the replicas that share one database). Ctrl-C or SIGTERM finishes the requests in flight and "
    "stops cleanly."
)
SINK_HELP = (
    "Consume the fraud-alerts topic (read_committed) into the alert store, once for all the API replicas, and "
    "fraud-monitoring into its monitoring_windows table (a second sink, its own group)."
    "\n\nUse it with FRAUD_API_RUN_SINK=false on the replicas. Offsets are committed only after the store write, "
    "so a restart resumes where it stopped and stores nothing twice. Ctrl-C or SIGTERM stops after the batch."
)


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to listen on (default: FRAUD_API_HOST, else 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port to listen on (default: FRAUD_API_PORT, else 8000)."),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log one line per request (off: it costs latency).")
    ] = False,
) -> None:
    """Run the HTTP API under uvicorn (help text: SERVE_HELP)."""
    import uvicorn

    from api.app import create_app
    from fraudstream.memory import freeze_long_lived

    settings = settings_or_exit(api_host=host, api_port=port)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # keep fraudstream's logging (text or JSON lines)
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = _server_class()(config)
    # Everything imported so far (MLflow, sklearn, pandas: ~200k objects) lives as long as the process. Freezing it
    # keeps Python's full garbage collections from walking it again (each would pause /predict for as long).
    freeze_long_lived()
    sink = "in this process" if settings.api_run_sink else "external (`fraudstream sink`)"
    console.print(
        f"fraudstream API on [bold]http://{settings.api_host}:{settings.api_port}[/bold] "
        f"(docs at /docs; alert store {app.state.services.store.describe()}; sink {sink})",
        soft_wrap=True,
    )
    server.run()
    if not server.started:
        err_console.print("[red]the API did not start[/red]: see the log above")
        raise typer.Exit(ExitCode.FAILED)
    console.print("API stopped")
    from fraudstream.kafka.watchdog import exit_process

    exit_process(ExitCode.OK)  # only when a stuck Kafka call left a client behind: skip the interpreter's teardown


def _server_class() -> type:
    """uvicorn's Server, but a SIGTERM/Ctrl-C that was handled by a graceful shutdown ends with exit code 0.

    (uvicorn re-raises the captured signal after shutting down, so the process would die by SIGTERM: a clean,
    requested stop would look like a crash to a supervisor.)
    """
    import uvicorn

    class CleanExitServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: stop without waiting for requests in flight
            else:
                self.should_exit = True

    return CleanExitServer


def sink(
    status_interval: Annotated[
        float, typer.Option("--status-interval", min=0.5, help="Seconds between status lines.")
    ] = 10.0,
) -> None:
    """Run the alert sink as its own process (help text: SINK_HELP)."""
    from api.sink.thread import run_sink
    from fraudstream.kafka.watchdog import exit_process
    from fraudstream.shutdown import GracefulStop

    settings = settings_or_exit()
    started = time.monotonic()

    def starting(one: AlertSink) -> None:
        console.print(
            f"{one.label}: [bold]{one.topic}[/bold] on {settings.bootstrap_servers} "
            f"(group {one.group_id}) -> {one.store.describe()}",
            soft_wrap=True,
        )

    try:
        with GracefulStop() as stop:
            run_sink(
                settings,
                stop,
                on_start=starting,
                on_status=lambda one: _status_line(one, time.monotonic() - started),
                status_interval_s=status_interval,
            )
    except Exception as exc:
        err_console.print(f"[red]the sink stopped on an error[/red]: {exc}")
        exit_process(ExitCode.FAILED)
        raise typer.Exit(ExitCode.FAILED) from exc
    console.print("alert sink stopped")
    exit_process(ExitCode.OK)


def _status_line(alert_sink: AlertSink, elapsed: float) -> None:
    status = alert_sink.status()
    lag = "?" if status.lag is None else str(status.lag)
    line = (
        f"[dim]{elapsed:7.0f} s[/dim]  {alert_sink.label}: stored {status.stored:,}  invalid {status.invalid:,} (to "
        f"{alert_sink.dlq_topic})  lag {lag}  partitions {status.assigned}"
    )
    if status.problems:
        line += f"  [yellow]not ready: {'; '.join(status.problems)}[/yellow]"
    if status.last_error:
        line += f"  [yellow]retrying: {status.last_error}[/yellow]"
    console.print(line, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `serve` and `sink` to the root app."""
    app.command(
        "serve",
        help=SERVE_HELP,
        epilog=example(
            "fraudstream serve",
            "fraudstream serve --host 0.0.0.0 --port 8080",
            "FRAUD_API_KEY=s3cret FRAUD_API_RUN_SINK=false fraudstream serve",
        ),
    )(serve)
    app.command(
        "sink",
        help=SINK_HELP,
        epilog=example(
            "fraudstream sink",
            "FRAUD_ALERT_STORE_URL=postgresql+psycopg://fraud@db/fraud fraudstream sink --status-interval 30",
        ),
    )(sink)
