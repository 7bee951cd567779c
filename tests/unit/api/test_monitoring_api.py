"""The monitoring windows in the API: the store (numbering, idempotence, pages), the monitoring sink on a fake
consumer (stored, poison to the DLQ), GET /monitoring and /monitoring/history, /readyz's monitoring detail, and the
MLflow writer's never-twice rule on a fake client. The real broker and MLflow are in tests/integration."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from monitoring_records import monitoring_record

from api.sink.mlflow_writer import MonitoringMlflowWriter
from api.sink.monitoring import MonitoringSink
from api.store.alerts import AlertRepository
from fraudstream.monitoring import Confusion
from fraudstream.settings import load_settings

from .fakes import TOPIC, FakeConsumer, FakeMessage, FakeProducer


@pytest.fixture
def store(tmp_path: Path) -> AlertRepository:
    repository = AlertRepository.from_url(f"sqlite:///{tmp_path / 'alerts.db'}")
    repository.create_schema()
    return repository


def test_windows_are_numbered_per_version_in_arrival_order_and_a_redelivery_changes_nothing(
    store: AlertRepository,
) -> None:
    first = [monitoring_record(0, version="1"), monitoring_record(0, version="2", role="challenger")]
    assert store.monitoring.upsert_many(first) == 2
    assert store.monitoring.upsert_many([monitoring_record(1, version="1"), *first]) == 1  # the redelivered: none

    latest = {w.record.model_version: w for w in store.monitoring.latest()}
    assert {version: w.window for version, w in latest.items()} == {"1": 2, "2": 1}
    assert latest["1"].record == monitoring_record(1, version="1")
    assert latest["2"].record.role == "challenger"


def test_history_pages_newest_first_without_repeats_and_filters(store: AlertRepository) -> None:
    store.monitoring.upsert_many([monitoring_record(i, version=str(1 + i % 2)) for i in range(7)])
    seen: list[int] = []
    cursor = None
    while True:
        page = store.monitoring.page(limit=3, after=cursor)
        seen += [w.seq for w in page.windows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 7
    only_two = store.monitoring.page(model_version="2")
    assert [w.window for w in only_two.windows] == [3, 2, 1]
    recent = store.monitoring.page(since=monitoring_record(5).window_end)
    assert [w.record.window_start for w in recent.windows] == [monitoring_record(i).window_start for i in (6, 5)]


def _records(*records: Any) -> list[FakeMessage]:
    return [FakeMessage(0, offset, record) for offset, record in enumerate(records)]


def test_the_monitoring_sink_stores_records_and_dead_letters_poison_with_the_reason(store: AlertRepository) -> None:
    good = monitoring_record(0)
    consumer = FakeConsumer(
        [
            _records(
                good.model_dump_json().encode(),
                b"{not json",
                json.dumps({**good.model_dump(mode="json"), "status": "fine"}).encode(),
            )
        ]
    )
    dlq = FakeProducer()
    woken: list[bool] = []
    settings = load_settings(kafka_bootstrap="127.0.0.1:1", sink_group_id="unit-sink", sink_instance_id="api-0")
    sink = MonitoringSink(
        settings, store, consumer_factory=consumer, producer_factory=lambda _: dlq, on_stored=lambda: woken.append(True)
    )
    sink._join()
    sink.process(consumer.consume(10, 0.1))

    assert [w.record for w in store.monitoring.latest()] == [good]
    assert woken == [True]
    assert consumer.config["group.id"] == "unit-sink.monitoring"  # its own group, beside the alert sink's
    assert consumer.config["group.instance.id"] == "api-0.monitoring"
    assert consumer.subscribed == [settings.topic_monitoring]
    assert [m["topic"] for m in dlq.delivered] == [settings.topic_sink_dlq] * 2
    reasons = [dict(m["headers"]).get("reason", b"").decode() for m in dlq.delivered]
    assert any("status" in reason for reason in reasons), reasons
    assert consumer.commits[-1] == {0: 3}
    assert sink.status().dead_lettered == 2


def _fill(client: TestClient, *records: Any) -> None:
    client.app.state.services.store.monitoring.upsert_many(list(records))  # type: ignore[attr-defined]


def test_get_monitoring_serves_the_latest_window_per_version_and_the_history_by_page(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    assert client.get("/monitoring").json() == {"data": [], "count": 0}
    drifted = monitoring_record(2, version="2", role="challenger", drifted={"V14": 0.4})
    _fill(client, monitoring_record(0), monitoring_record(1), monitoring_record(1, version="2", role="challenger"))
    _fill(client, drifted)

    body = client.get("/monitoring").json()
    assert body["count"] == 2
    newest = body["data"][0]
    assert (newest["model_version"], newest["number"], newest["status"]) == ("2", 2, "drift")
    assert newest["feature_psi"]["V14"] == 0.4
    assert newest["reasons"] == ["V14 PSI 0.400 > 0.25"]
    assert (body["data"][1]["model_version"], body["data"][1]["number"]) == ("1", 2)

    first = client.get("/monitoring/history", params={"limit": 3}).json()
    assert first["count"] == 3
    assert first["next_cursor"]
    rest = client.get("/monitoring/history", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert rest["count"] == 1
    assert rest["next_cursor"] is None
    windows = [(w["model_version"], w["number"]) for w in first["data"] + rest["data"]]
    assert windows == [("2", 2), ("2", 1), ("1", 2), ("1", 1)]
    only = client.get("/monitoring/history", params={"model_version": "1", "since": "2026-12-01T12:01:00Z"})
    assert [(w["model_version"], w["number"]) for w in only.json()["data"]] == [("1", 2)]


@pytest.mark.parametrize("cursor", ["abc", "0", "-4", "1e3", "99999999999999999999"])
def test_an_unreadable_history_cursor_is_422_naming_it(make_client: Callable[..., TestClient], cursor: str) -> None:
    response = make_client().get("/monitoring/history", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_monitoring_needs_the_api_key_like_every_data_route(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_key="s3cret-key-for-tests")
    assert client.get("/monitoring").status_code == 401
    assert client.get("/monitoring/history").status_code == 401
    assert client.get("/monitoring", headers={"X-API-Key": "s3cret-key-for-tests"}).status_code == 200


def test_readyz_reports_the_monitoring_sink_and_the_latest_status_per_serving_version(
    make_client: Callable[..., TestClient],
) -> None:
    record = monitoring_record(0, version="1", drifted={"Amount": 0.6})
    consumer = FakeConsumer([_records(record.model_dump_json().encode())], high=1)
    client = make_client(monitoring_consumer_factory=consumer, topic_monitoring=TOPIC)
    deadline = time.monotonic() + 10
    while True:
        response = client.get("/readyz")
        monitoring = response.json()["monitoring"]
        settled = monitoring["versions"] and monitoring["lag"] is not None and response.status_code == 200
        if settled or time.monotonic() > deadline:  # the sink's facts arrive one by one (partitions, lag, rows)
            break
        time.sleep(0.05)

    assert response.status_code == 200, {k: v for k, v in response.json().items() if k in ("status", "monitoring")}
    assert monitoring["ok"]
    assert monitoring["stored"] == 1
    assert monitoring["partitions"] == 3
    (version,) = monitoring["versions"]
    assert (version["model_version"], version["role"], version["status"], version["number"]) == (
        "1",
        "production",
        "drift",
        1,
    )
    assert version["reasons"] == ["Amount PSI 0.600 > 0.25"]


class FakeMlflow:
    """MLflow's client as the writer uses it: versions' runs, metric histories and batches."""

    def __init__(self) -> None:
        self.metrics: dict[str, list[Any]] = {}

    def get_model_version(self, name: str, version: str) -> Any:
        if version == "9":
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

            raise MlflowException("no such version", error_code=RESOURCE_DOES_NOT_EXIST)
        return SimpleNamespace(run_id=f"run-{version}")

    def get_metric_history(self, run_id: str, key: str) -> list[Any]:
        return [metric for metric in self.metrics.get(run_id, []) if metric.key == key]

    def log_batch(self, run_id: str, metrics: list[Any]) -> None:
        self.metrics.setdefault(run_id, []).extend(metrics)


def test_the_mlflow_writer_logs_each_window_once_with_its_number_as_step(store: AlertRepository) -> None:
    fake = FakeMlflow()
    settings = load_settings(kafka_bootstrap="127.0.0.1:1")
    unlabelled = monitoring_record(1, confusion=Confusion(tn=0))
    store.monitoring.upsert_many([monitoring_record(0), unlabelled, monitoring_record(0, version="9")])
    writer = MonitoringMlflowWriter(settings, store, client_factory=lambda: fake)

    assert writer.run_round() == 2
    steps = {(m.key, m.step) for m in fake.metrics["run-1"]}
    assert steps == {
        (key, 1) for key in ("live_f1", "live_precision", "live_recall", "score_psi", "max_feature_psi")
    } | {
        ("score_psi", 2),
        ("max_feature_psi", 2),
    }
    f1 = next(m for m in fake.metrics["run-1"] if m.key == "live_f1")
    assert f1.value == pytest.approx(monitoring_record(0).f1)
    assert f1.timestamp == int(monitoring_record(0).window_end.timestamp() * 1000)
    assert store.monitoring.pending_mlflow() == []  # v9 is marked too: the registry does not know it

    # A restart that lost the marks (MLflow took the windows, the store did not hear): nothing is logged twice.
    store.monitoring.upsert_many([monitoring_record(2)])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE monitoring_windows SET mlflow_logged_at = NULL")
    writer.stop()  # gives the lease back
    again = MonitoringMlflowWriter(settings, store, client_factory=lambda: fake)
    assert again.run_round() == 1
    assert sorted(m.step for m in fake.metrics["run-1"] if m.key == "score_psi") == [1, 2, 3]


def test_only_the_holder_of_the_lease_writes(store: AlertRepository) -> None:
    fake = FakeMlflow()
    settings = load_settings(kafka_bootstrap="127.0.0.1:1")
    store.monitoring.upsert_many([monitoring_record(0)])
    first = MonitoringMlflowWriter(settings, store, client_factory=lambda: fake)
    second = MonitoringMlflowWriter(settings, store, client_factory=lambda: fake)
    assert store.feedback.acquire_lease("fraud-monitoring-mlflow-writer", first.holder, 30)
    assert second.run_round() == 0
    assert first.run_round() == 1
