"""`fraudstream demo` as a user runs it: a real subprocess, a real broker, real MLflow, real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from fraudstream.data.synth import write_synthetic
from fraudstream.kafka.clients import consumer_config
from fraudstream.kafka.local.broker import LocalBroker
from fraudstream.kafka.local.processes import free_port, process_alive
from fraudstream.monitoring import MonitoringRecord
from fraudstream.schemas import Alert
from fraudstream.settings import Settings

from .child_env import child_env, fields_of

QUICK = ["--rows", "1500", "--rate", "1500", "--n-estimators", "20", "--min-f1", "0.5"]
PIDS = re.compile(r"scorer pid (\d+), API pid (\d+)")


class DemoProcess:
    """`python -m fraudstream demo ...` with its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fraudstream", "demo", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_text(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r}; output:\n{self.output}")
            time.sleep(0.2)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def service_pids(self) -> list[int]:
        found = PIDS.search(self.output)
        return [int(found.group(1)), int(found.group(2))] if found else []


@pytest.fixture(scope="module")
def demo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 1% frauds so the small held-out window still holds a few of them
    return write_synthetic(
        tmp_path_factory.mktemp("demo") / "creditcard_synthetic.csv", 20_000, seed=9, fraud_rate=0.01
    )


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    names = (
        "kafka_bootstrap",
        "topic_transactions",
        "topic_alerts",
        "topic_dlq",
        "scorer_group_id",
        "sink_group_id",
        "state_dir",
        "model_name",
        "topic_monitoring",
        "topic_sink_dlq",
    )
    return child_env(fields_of(settings, names), **_demo_extras(), **extra)


def _demo_extras() -> dict[str, str]:
    """Free ports for the services a demo starts, a short transaction timeout, and a wide console."""
    return {
        "FRAUD_API_PORT": str(free_port()),
        "FRAUD_SCORER_METRICS_PORT": str(free_port()),
        "FRAUD_SCORER_TRANSACTION_TIMEOUT_MS": "10000",
        "COLUMNS": "200",
    }


def _read_topic(settings: Settings, topic: str) -> list[bytes]:
    consumer = Consumer(consumer_config(settings.kafka(), group_id=f"check-{time.time_ns()}", client_id="check"))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = {tp.partition: tp.offset for tp in consumer.position(consumer.assignment())}
            if all(positions.get(p, -1) >= high for p, (_, high) in ends.items()):
                break
            values += [m.value() for m in consumer.consume(500, timeout=0.5) if m.error() is None]
        return values
    finally:
        consumer.close()


def _assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if process_alive(pid)], "a service the demo started is still running"


def test_demo_runs_end_to_end_and_its_summary_matches_the_topics(
    settings_factory, demo_csv: Path, tmp_path: Path
) -> None:
    settings = settings_factory(model_name="demo-e2e")
    summary_path = tmp_path / "summary.json"
    demo = DemoProcess([*QUICK, "--data", str(demo_csv), "--summary-json", str(summary_path)], _env(settings), tmp_path)
    code = demo.wait(timeout=420)
    assert code == 0, demo.output
    summary = json.loads(summary_path.read_text())

    sent = _read_topic(settings, settings.topic_transactions)
    assert summary["transactions_sent"] == summary["transactions_delivered"] == len(sent) == 1500
    replayed = {json.loads(value)["transaction_id"] for value in sent}
    frauds = sum(json.loads(value)["label"] for value in sent)
    assert summary["frauds_sent"] == frauds

    alerts = [Alert.model_validate_json(value) for value in _read_topic(settings, settings.topic_alerts)]
    assert {a.transaction_id for a in alerts} <= replayed
    assert summary["alerts"] == len(alerts) == len({a.transaction_id for a in alerts})
    assert summary["alerts_stored"] == summary["alerts"]
    assert summary["true_positives"] == sum(1 for a in alerts if a.label == 1)
    assert summary["false_positives"] == sum(1 for a in alerts if a.label == 0)
    assert summary["missed_frauds"] == frauds - summary["true_positives"]
    assert summary["model_versions"] == ["1"]
    assert _read_topic(settings, settings.topic_dlq) == []
    assert "live precision / recall" in demo.output
    # The monitoring line: the windows the topic holds (none before the scorer publishes any), or that none came.
    records = [
        MonitoringRecord.model_validate_json(value) for value in _read_topic(settings, settings.topic_monitoring)
    ]
    assert {line["model_version"] for line in summary["monitoring"]} == {r.model_version for r in records}
    # the scorer publishes its open window when it stops, after the summary was printed: at most that one is missing
    assert len(records) - 1 <= sum(line["windows"] for line in summary["monitoring"]) <= len(records)
    assert ("monitoring v1" if records else "no monitoring record arrived") in demo.output
    assert "Where next" in demo.output
    _assert_gone(demo.service_pids())


@pytest.fixture
def own_broker(tmp_path: Path, kafka_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    """A state folder and port for a demo that manages its own local broker; the broker is stopped after."""
    monkeypatch.setenv("FRAUD_KAFKA_CACHE_DIR", str(kafka_cache_dir))  # the session's jar cache, not the default
    state, port = tmp_path / "state", free_port()
    yield state, port
    LocalBroker(port=port, home=state / "kafka", cache_dir=Settings().kafka_cache_dir).down()


def _own_broker_env(state: Path, port: int) -> dict[str, str]:
    fields = {"state_dir": state, "kafka_local_port": port, "kafka_cache_dir": os.environ.get("FRAUD_KAFKA_CACHE_DIR")}
    return child_env(fields, **_demo_extras())


def test_ctrl_c_while_services_run_stops_them_and_the_broker_the_demo_started(
    own_broker: tuple[Path, int], demo_csv: Path, tmp_path: Path
) -> None:
    state, port = own_broker
    broker = LocalBroker(port=port, home=state / "kafka", cache_dir=Settings().kafka_cache_dir)
    demo = DemoProcess([*QUICK, "--rate", "50", "--data", str(demo_csv)], _own_broker_env(state, port), tmp_path)
    demo.wait_for_text("5/6", timeout=300)  # services up, replay under way (slowly)
    pids = demo.service_pids()
    assert len(pids) == 2, demo.output
    demo.process.send_signal(signal.SIGINT)
    assert demo.wait(timeout=120) == 130, demo.output
    assert "interrupted" in demo.output
    _assert_gone(pids)
    assert not broker.status().running


def test_sigterm_while_training_leaves_a_broker_that_was_already_running(
    own_broker: tuple[Path, int], demo_csv: Path, tmp_path: Path
) -> None:
    state, port = own_broker
    broker = LocalBroker(port=port, home=state / "kafka", cache_dir=Settings().kafka_cache_dir)
    broker.up()
    pid_before = broker.status().pid
    demo = DemoProcess(["--data", str(demo_csv), "--n-estimators", "400"], _own_broker_env(state, port), tmp_path)
    demo.wait_for_text("3/6", timeout=120)
    time.sleep(1.0)  # inside the fit
    demo.process.send_signal(signal.SIGTERM)
    assert demo.wait(timeout=120) == 130, demo.output
    assert demo.service_pids() == []  # interrupted before any service started
    status = broker.status()
    assert status.running
    assert status.pid == pid_before
