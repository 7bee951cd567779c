"""The readers of fraud-monitoring on a real broker, a real MLflow SQLite store and real HTTP.

The records are produced here by a transactional producer (as the scorer writes them: committed, and one aborted
window that must never show), so these tests do not wait on the scorer's windows:

* ``fraudstream serve`` materialises them: GET /monitoring serves the latest window, /monitoring/history every
  committed one, /readyz the status; a poison record goes to the sink's DLQ with its reason;
* the API's MLflow writer logs them on the version's run, read back with MlflowClient.get_metric_history and
  through the REST API of a real `mlflow server` on the same store (what `mlflow ui` draws its charts from; the
  server starts with the test, as its start takes a minute on a loaded machine), and a restart of the API writes
  no window twice;
* ``train --as-challenger`` sets the challenger alias, ``model status`` shows both, ``monitor --once`` both
  versions' windows, and ``model promote`` moves the production alias and records why as tags.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from mlflow import MlflowClient
from monitoring_records import monitoring_record

from fraudstream.kafka.clients import producer_config
from fraudstream.kafka.local.processes import free_port
from fraudstream.monitoring import Confusion, MonitoringRecord
from fraudstream.settings import Settings

from .api_support import FRAUDSTREAM, Service, process_env, wait_ready
from .stream_support import read_topic

LIVE_METRICS = ("live_f1", "live_precision", "live_recall", "score_psi", "max_feature_psi")


class MonitoringProducer:
    """A transactional producer on fraud-monitoring, keyed ``<name>:<version>`` as the scorer writes it."""

    def __init__(self, settings: Settings) -> None:
        config = producer_config(
            settings.kafka(), client_id="test-monitoring", transactional_id=f"test-mon-{uuid.uuid4().hex[:8]}"
        )
        self.topic = settings.topic_monitoring
        self.producer = Producer(config)
        self.producer.init_transactions(30)

    def transaction(self, records: Sequence[MonitoringRecord | bytes], *, commit: bool = True) -> None:
        self.producer.begin_transaction()
        for record in records:
            if isinstance(record, MonitoringRecord):
                self.producer.produce(self.topic, key=record.key.encode(), value=record.model_dump_json().encode())
            else:
                self.producer.produce(self.topic, key=b"poison", value=record)
        if commit:
            self.producer.commit_transaction(30)
        else:
            self.producer.flush(30)
            self.producer.abort_transaction(30)


@pytest.fixture
def model_store(trained_model: Any, tmp_path: Path) -> dict[str, str]:
    """A copy of the session's MLflow store (this test writes metrics, aliases and tags into it)."""
    source = Path(trained_model.overrides["mlflow_tracking_uri"].removeprefix("sqlite:///"))
    copy = tmp_path / "mlflow.db"
    shutil.copy(source, copy)
    return {**trained_model.overrides, "mlflow_tracking_uri": f"sqlite:///{copy}"}


def _until(what: str, check: Callable[[], Any], timeout: float = 60.0, service: Service | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not happen within {timeout} s" + (f":\n{service.output()[-3000:]}" if service else "")
            )
        time.sleep(0.5)


class MlflowServer:
    """`mlflow server` on a store, started at once (its start is slow) and asked only when needed."""

    def __init__(self, tracking_uri: str, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = (workdir / "mlflow-server.log").open("wb")
        command = [str(FRAUDSTREAM.parent / "mlflow"), "server", "--backend-store-uri", tracking_uri]
        command += ["--default-artifact-root", str(workdir / "artifacts"), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", "1"]
        self.process = subprocess.Popen(command, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT)

    def history(self, run_id: str, key: str, timeout: float = 180.0) -> list[tuple[int, float]]:
        """GET /api/2.0/mlflow/metrics/get-history, waiting for the server to answer."""
        url = f"{self.base}/api/2.0/mlflow/metrics/get-history"
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"mlflow server exited with {self.process.returncode}"
            try:
                response = httpx.get(url, params={"run_id": run_id, "metric_key": key}, timeout=10)
                response.raise_for_status()
                return sorted((m["step"], m["value"]) for m in response.json()["metrics"])
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def mlflow_server(model_store: dict[str, str], tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(model_store["mlflow_tracking_uri"], tmp_path)
    yield server
    server.stop()


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_the_api_serves_committed_windows_and_logs_each_once_on_the_versions_run(
    trained_model: Any,
    model_store: dict[str, str],
    mlflow_server: MlflowServer,
    settings_factory: Callable[..., Settings],
    services: Callable[..., Service],
    tmp_path: Path,
) -> None:
    settings = settings_factory(**model_store, api_port=free_port(), monitor_to_mlflow=True)
    name, version = settings.model_name, trained_model.version
    windows = [
        monitoring_record(i, model_name=name, version=version, confusion=Confusion(tp=8 + i, fp=2, fn=1, tn=900))
        for i in range(3)
    ]
    producer = MonitoringProducer(settings)
    producer.transaction(windows[:2])
    producer.transaction([monitoring_record(7, model_name=name, version=version, scored=999)], commit=False)
    producer.transaction([b'{"model_name": "x"}', windows[2]])

    env = process_env(settings)
    api = services(["serve"], env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{settings.api_port}"
    wait_ready(base, api)

    def latest_window() -> Any:
        body = httpx.get(f"{base}/monitoring", timeout=5).json()
        return body if body["count"] and body["data"][0]["number"] == 3 else None

    body = _until("GET /monitoring serving the third window", latest_window, service=api)
    (served,) = body["data"]
    assert MonitoringRecord.model_validate(served) == windows[2]
    history = httpx.get(f"{base}/monitoring/history", params={"limit": 2}, timeout=5).json()
    rest = httpx.get(f"{base}/monitoring/history", params={"cursor": history["next_cursor"]}, timeout=5).json()
    assert [w["number"] for w in history["data"] + rest["data"]] == [3, 2, 1]
    assert 999 not in [w["scored"] for w in history["data"] + rest["data"]]  # the aborted window never shows
    ready = httpx.get(f"{base}/readyz", timeout=5).json()
    assert ready["monitoring"]["ok"]
    assert [(v["model_version"], v["status"], v["number"]) for v in ready["monitoring"]["versions"]] == [
        (version, "ok", 3)
    ]
    (dead,) = read_topic(settings, settings.topic_sink_dlq, at_least=1)
    assert b"model_version" in dict(dead.headers())["reason"]

    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    run_id = client.get_model_version(name, version).run_id
    _until("live metrics on the run", lambda: len(_history(client, run_id, "live_f1")) == 3, service=api)
    expected = {1: windows[0].f1, 2: windows[1].f1, 3: windows[2].f1}
    assert dict(_history(client, run_id, "live_f1")) == pytest.approx(expected)
    for key in LIVE_METRICS:
        assert [step for step, _ in _history(client, run_id, key)] == [1, 2, 3], key
    assert "test_f1" in client.get_run(run_id).data.metrics  # beside the offline metrics of the same run
    for key in LIVE_METRICS:  # what `mlflow ui` charts: the REST API of a real tracking server on the same store
        assert dict(mlflow_server.history(run_id, key)) == pytest.approx(dict(_history(client, run_id, key))), key

    # A restart re-reads nothing twice: the next window is step 4, and every earlier step is still there once.
    assert api.stop() == 0
    api = services(["serve"], env, tmp_path / "serve-2.log")
    wait_ready(base, api)
    producer.transaction([monitoring_record(3, model_name=name, version=version)])
    _until("the fourth window on the run", lambda: len(_history(client, run_id, "score_psi")) == 4, service=api)
    time.sleep(2)  # a duplicate, if any, would land within the writer's next rounds
    for key in ("score_psi", "max_feature_psi"):
        assert [step for step, _ in _history(client, run_id, key)] == [1, 2, 3, 4], key


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FRAUDSTREAM), *args], env={**env, "COLUMNS": "250"}, capture_output=True, text=True, timeout=180
    )


def test_a_challenger_is_trained_shown_beside_production_and_promoted_with_its_reason(
    trained_model: Any,
    model_store: dict[str, str],
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    from trainer.config import TrainConfig
    from trainer.gate import Outcome
    from trainer.service import train

    settings = settings_factory(**model_store, min_f1=0.5)
    champion = trained_model.version
    config = TrainConfig(data=trained_model.data_csv, n_estimators=5, max_depth=6, n_jobs=2, bootstrap_rounds=200)
    result = train(settings, config.model_copy(update={"as_challenger": True}))
    assert result.outcome is Outcome.CHALLENGER, result.decision.reason
    challenger = result.version
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    name = settings.model_name
    assert str(client.get_model_version_by_alias(name, "production").version) == champion  # production stays
    assert str(client.get_model_version_by_alias(name, "challenger").version) == challenger

    shared = [
        *(
            monitoring_record(i, model_name=name, version=champion, confusion=Confusion(tp=8, fp=2, fn=2, tn=900))
            for i in range(2)
        ),
        *(
            monitoring_record(
                i, model_name=name, version=challenger, role="challenger", confusion=Confusion(tp=9, fp=1, fn=1, tn=901)
            )
            for i in range(2)
        ),
    ]
    MonitoringProducer(settings).transaction(shared)
    env = process_env(settings)

    status = _cli(env, "model", "status")
    assert status.returncode == 0, status.stderr
    assert f"production v{champion}" in status.stdout
    assert f"challenger v{challenger}" in status.stdout
    assert "live, the same 2 windows" in status.stdout
    assert "0.9000" in status.stdout  # the challenger's pooled live F1 (tp 18, fp 2, fn 2)
    monitor = _cli(env, "monitor", "--once")
    assert monitor.returncode == 0, monitor.stderr
    assert f"{name} v{champion}" in monitor.stdout
    assert f"{name} v{challenger}" in monitor.stdout

    promoted = _cli(env, "model", "promote")
    assert promoted.returncode == 0, promoted.stderr
    assert str(client.get_model_version_by_alias(name, "production").version) == challenger
    with pytest.raises(Exception, match="alias"):
        client.get_model_version_by_alias(name, "challenger")  # the promoted version no longer shadows
    tags = client.get_model_version(name, challenger).tags
    assert tags["promote.previous_version"] == champion
    assert "live F1 0.9000 vs 0.8000 over 2 shared windows" in tags["promote.reason"]
    assert client.get_run(result.run_id).data.tags["promote.reason"] == tags["promote.reason"]
    assert client.get_model_version(name, champion).tags["promote.replaced_by"] == challenger

    again = _cli(env, "model", "promote")
    assert again.returncode == 1
    assert "challenger" in again.stderr
