"""The demo, step by step: broker, data, training and gate, services, live replay, summary.

It trains with a time split and replays the held-out later rows, so the live precision and recall are
measured on transactions the model never saw. Whatever happens (an error, Ctrl-C, SIGTERM), what the demo
started is stopped: the services it launched and the local broker if it started it (a broker that was
already running is left running).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape

from fraudstream.cli.common import ExitCode
from fraudstream.cli.demo.observe import AlertCollector, ScorerGroup
from fraudstream.cli.demo.report import render, summarise, where_next
from fraudstream.cli.demo.supervisor import Supervisor
from fraudstream.exceptions import BrokerError
from fraudstream.settings import Settings

SERVICE_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DemoOptions:
    rows: int = 5000
    rate: float = 500.0
    data: Path | None = None
    min_f1: float | None = None
    n_estimators: int | None = None
    keep_running: bool = False
    summary_json: Path | None = None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM stop the demo with KeyboardInterrupt, so the same cleanup runs. SIGINT is set too:
    a process started in the background of a script inherits it as ignored, and Python then installs nothing."""
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _http_json(url: str, api_key: str | None, timeout: float = 5.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"X-API-Key": api_key} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


class Demo:
    def __init__(self, settings: Settings, options: DemoOptions, console: Console) -> None:
        self.settings = settings
        self.options = options
        self.console = console
        self.broker: Any = None  # the LocalCluster, when this demo started it
        self.supervisor = Supervisor(settings.state_dir / "demo", self._child_env())
        self.collector: AlertCollector | None = None
        self.scorer_group = ScorerGroup(settings)
        self.api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self.api_url = f"http://{settings.api_host}:{settings.api_port}"

    def run(self) -> int:
        """Every step in turn; the exit code: ExitCode.OK, the gate's Outcome.REFUSED, or ExitCode.INTERRUPTED."""
        with _signals_interrupt():
            try:
                return self._run_steps()
            except KeyboardInterrupt:
                self.console.print("\n[yellow]interrupted: stopping what the demo started[/yellow]")
                return ExitCode.INTERRUPTED
            finally:
                self._stop_what_it_started()

    # ---- the steps -----------------------------------------------------------------------------------------
    def _run_steps(self) -> int:
        from fraudstream.data.source import resolve_dataset

        self._announce_step(1, "Kafka broker")
        self._start_broker_and_topics()
        self._announce_step(2, "data")
        choice = resolve_dataset(self.settings, self.options.data)
        self.console.print(f"  {escape(choice.description)}", style="bold red" if choice.synthetic else None)
        self._announce_step(3, "training and the gate")
        result = self._train_and_gate(choice.path)
        if result is None:
            from trainer.gate import Outcome

            return Outcome.REFUSED.value  # nothing registered: what `fraudstream train` answers then
        self._announce_step(4, "services: scorer and API (with its alert sink)")
        self._start_services()
        self._announce_step(5, "live replay of held-out transactions")
        summary = self._replay_held_out_rows(choice.path, choice.synthetic, result)
        self._announce_step(6, "summary")
        render(self.console, summary, self.settings)
        if self.options.summary_json:
            summary.write_json(self.options.summary_json)
        where_next(self.console, self.settings, running=self.options.keep_running)
        if self.options.keep_running:
            self._keep_running()
        return ExitCode.OK

    def _announce_step(self, number: int, title: str) -> None:
        self.console.rule(f"[bold]{number}/6  {title}[/bold]", align="left")

    def _start_broker_and_topics(self) -> None:
        from fraudstream.kafka.local.layout import local_cluster
        from fraudstream.kafka.topics import ensure_flow_topics, probe_cluster

        if self.settings.uses_local_broker:
            broker = local_cluster(self.settings)
            what = "broker" if broker.size == 1 else f"{broker.size}-node Kafka cluster"
            if broker.status().any_running:
                broker.up()  # harmless when up: waits until it answers, refuses a changed FRAUD_KAFKA_LOCAL_PORT
                self.console.print(f"  using the local {what} already running at {broker.bootstrap} (left running)")
            else:
                self.broker = broker  # set before up(): an interrupted start is still stopped
                with self.console.status(f"starting a local {what} ...") as status:
                    broker.up(progress=lambda line: status.update(escape(line)))
                self.console.print(f"  started a local {what} at {broker.bootstrap} (stopped at the end)")
        else:
            info = probe_cluster(self.settings.kafka())
            self.console.print(f"  using the cluster at {info.bootstrap} (FRAUD_KAFKA_BOOTSTRAP)")
        report = ensure_flow_topics(self.settings)
        self.console.print(f"  topics: {', '.join(sorted(report.partitions))}")

    def _train_and_gate(self, data: Path) -> Any:
        from fraudstream.cli.train import RichReporter, render_result
        from trainer.config import TrainConfig
        from trainer.gate import Outcome
        from trainer.service import train

        extra = {"n_estimators": self.options.n_estimators} if self.options.n_estimators else {}
        config = TrainConfig(data=data, min_f1=self.options.min_f1, split="time", **extra)
        result = train(self.settings, config, RichReporter())
        self.console.print(render_result(result))
        outcome = result.decision.outcome
        if outcome is Outcome.REFUSED:
            self.console.print(f"[red]The gate refused the model: {escape(result.decision.reason)}.[/red]")
            self.console.print(
                "  Nothing was registered, so there is no model to stream with. The gate is a product decision: "
                "to accept this model, run again with a lower bar, e.g. [bold]fraudstream demo --min-f1 0.80[/bold] "
                "(or set FRAUD_MIN_F1)."
            )
            return None
        if outcome is Outcome.REGISTERED:
            self.console.print(f"  [yellow]{escape(result.decision.reason)}[/yellow]: production keeps serving.")
        return result

    def _start_services(self) -> None:
        from fraudstream.kafka.local.processes import port_in_use

        for name, port in (
            ("FRAUD_API_PORT", self.settings.api_port),
            ("FRAUD_SCORER_METRICS_PORT", self.settings.scorer_metrics_port),
        ):
            host = self.settings.api_host if name == "FRAUD_API_PORT" else self.settings.scorer_metrics_host
            if port and port_in_use(port, host):
                raise BrokerError(f"port {port} is in use by another process: stop it or set {name} to a free port")
        scorer = self.supervisor.start("scorer", "score")
        api = self.supervisor.start("api", "serve")
        self.console.print(
            f"  scorer pid {scorer.process.pid}, API pid {api.process.pid}; logs in "
            f"{escape(str(self.supervisor.log_dir))}"
        )
        with self.console.status("waiting for the API to load the model and open its store ..."):
            self.supervisor.wait_until(
                api,
                lambda: _http_json(f"{self.api_url}/readyz", None)[0] == 200,
                what="ready",
                timeout=SERVICE_START_TIMEOUT_S,
            )
        with self.console.status("waiting for the scorer to join its group ..."):
            self.supervisor.wait_until(
                scorer,
                self.scorer_group.has_partitions,
                what="assigned its partitions",
                timeout=SERVICE_START_TIMEOUT_S,
            )
        self.console.print(
            f"  [green]✓[/green] API ready at {self.api_url}, scorer consuming {self.settings.topic_transactions}"
        )

    def _replay_held_out_rows(self, data: Path, synthetic: bool, result: Any) -> Any:
        from fraudstream.data.check import iter_validated_chunks
        from producer.encode import transaction_id

        held_out = result.test_rows
        first = int(held_out[0])
        rows = min(self.options.rows, len(held_out))
        if int(held_out[rows - 1]) - first != rows - 1:
            self.console.print("  [yellow]the file is not in Time order: some replayed rows were trained on[/yellow]")
        ids: set[str] = set()
        frauds = 0
        for start, chunk in iter_validated_chunks(data, start=first, limit=rows):
            ids.update(transaction_id(data.name, start + offset) for offset in range(len(chunk)))
            frauds += int(chunk["Class"].sum())
        self.collector = AlertCollector(self.settings)
        self.collector.start()
        replay_began = datetime.now(timezone.utc)
        started = time.monotonic()
        stats = self._send_rows(data, first, rows)
        scorer = next(child for child in self.supervisor.children if child.name == "scorer")
        with self.console.status("waiting for the scorer to commit every transaction ..."):
            self.supervisor.wait_until(
                scorer, lambda: self.scorer_group.lag() == 0, what="caught up", timeout=120 + rows / 200
            )
        seconds = time.monotonic() - started
        time.sleep(0.5)  # the subscriber's last fetch
        self.collector.stop()
        alerted = {item.alert.transaction_id for item in self.collector.seen} & ids
        stored = self._count_stored_alerts(alerted)
        monitoring = self._monitoring(replay_began)
        return summarise(
            data=str(data),
            synthetic=synthetic,
            first_row=first,
            sent=stats.sent,
            delivered=stats.delivered,
            replayed_ids=ids,
            frauds_sent=frauds,
            seen=self.collector.seen,
            alerts_stored=stored,
            seconds=seconds,
            model_name=self.settings.model_name,
            test_f1=result.evaluation.f1,
            monitoring=monitoring,
        )

    def _monitoring(self, since: datetime) -> list[Any]:
        """The replay's monitoring windows per version, from fraud-monitoring (read_committed); [] if none."""
        from fraudstream.cli.demo.report import monitoring_lines
        from fraudstream.exceptions import BrokerError
        from fraudstream.kafka.monitoring_feed import read_monitoring

        try:
            records = read_monitoring(self.settings, idle_s=2.0)
        except BrokerError as exc:
            self.console.print(f"  [yellow]cannot read {self.settings.topic_monitoring}[/yellow]: {exc}")
            return []
        return monitoring_lines(records, self.settings.model_name, since)

    def _send_rows(self, data: Path, first: int, rows: int) -> Any:
        from fraudstream.cli.stream import replay_progress
        from fraudstream.shutdown import GracefulStop
        from producer.bootstrap import bootstrap
        from producer.pacing import Pace
        from producer.replay import ReplayOptions, ReplayStats

        options = ReplayOptions(data=data, pace=Pace(rate=self.options.rate), start=first, limit=rows)
        with GracefulStop() as stop, replay_progress() as progress:
            task = progress.add_task("replaying", total=rows, rate=0.0, delivered=0, failed=0)

            def show(stats: ReplayStats) -> None:
                progress.update(
                    task, completed=stats.sent, rate=stats.rate, delivered=stats.delivered, failed=stats.failed
                )

            stats = bootstrap(self.settings, options, stop=stop, progress=show, create_topics=False).run()
        if stats.interrupted:
            raise KeyboardInterrupt
        return stats

    def _count_stored_alerts(self, alerted: set[str], timeout_s: float = 60.0) -> int:
        """How many of the run's alerts the API's store holds, waiting for its sink to catch up."""
        pending = set(alerted)
        deadline = time.monotonic() + timeout_s
        with self.console.status("waiting for the API's sink to store the alerts ..."):
            while pending and time.monotonic() < deadline:
                pending = {tid for tid in pending if _http_json(f"{self.api_url}/alerts/{tid}", self.api_key)[0] != 200}
                if pending:
                    time.sleep(0.5)
        return len(alerted) - len(pending)

    def _keep_running(self) -> None:
        self.console.print("[bold]Services keep running: press Ctrl-C to stop them.[/bold]")
        while all(child.running() for child in self.supervisor.children):
            time.sleep(0.5)
        for child in self.supervisor.children:
            if not child.running():
                self.console.print(
                    f"[red]{child.name} exited ({child.process.returncode}):[/red]\n{escape(child.log_tail())}"
                )

    # ---- cleanup -------------------------------------------------------------------------------------------
    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["FRAUD_KAFKA_BOOTSTRAP"] = self.settings.bootstrap_servers
        env["FRAUD_STATE_DIR"] = str(self.settings.state_dir.resolve())
        # A few monitoring windows within the replay (unless the user chose): the summary shows them.
        env.setdefault("FRAUD_MONITOR_WINDOW_ROWS", str(max(100, self.options.rows // 4)))
        return env

    def _stop_what_it_started(self) -> None:
        # Ctrl-C during cleanup must not leave anything behind: finish it with interrupts deferred.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self.collector is not None:
                self.collector.stop()
            self.scorer_group.close()
            if self.supervisor.children:
                with self.console.status("stopping the scorer and the API ..."):
                    self.supervisor.stop_all()
            if self.broker is not None:
                with self.console.status("stopping the local broker the demo started ..."):
                    self.broker.down()
        finally:
            signal.signal(signal.SIGINT, previous)
