"""GET /healthz, /readyz, /model and /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError
from fastapi.testclient import TestClient

from api.exceptions import StoreError
from fraudstream.schemas import SEED_EXAMPLE, Alert

from .fakes import FakeConsumer, FakeMessage


def test_healthz_is_alive(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}


def test_readyz_is_ready_with_a_model_and_a_store(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["model"] == {"ok": True, "detail": "fraud-unit v1"}
    assert body["store"]["ok"] is True
    assert body["sink"]["ok"] is True


def test_readyz_is_503_with_reasons_without_model_or_store(
    make_client: Callable[..., TestClient], fake_registry: Any, services_of: Any
) -> None:
    client = make_client(registry=fake_registry(None))
    store = services_of(client).store

    def unreachable() -> None:
        raise StoreError("connection refused")

    store.ping = unreachable
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert "fraudstream train" in body["model"]["detail"]
    assert body["store"] == {"ok": False, "detail": "connection refused"}


def test_the_in_process_sink_stores_alerts_and_readyz_reports_its_lag(
    make_client: Callable[..., TestClient], alert: Callable[..., Alert]
) -> None:
    stored = alert(1)
    consumer = FakeConsumer([[FakeMessage(0, 1, stored.model_dump_json().encode())]], high=10)
    client = make_client(consumer_factory=lambda config: consumer, api_ready_max_sink_lag=25)

    def sink() -> dict[str, Any]:
        return client.get("/readyz").json()["sink"]  # type: ignore[no-any-return]

    deadline = time.monotonic() + 10
    while sink()["lag"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    body = client.get("/readyz")

    assert client.get(f"/alerts/{stored.transaction_id}").status_code == 200
    # lag 8 on partition 0 (position 2), 10 on each of the other two: 28 > 25
    assert body.status_code == 503
    assert body.json()["sink"] == {
        "ok": False,
        "detail": "lag 28 is over FRAUD_API_READY_MAX_SINK_LAG=25",
        "lag": 28,
        "stored": 1,
        "invalid": 0,
    }
    assert body.json()["model"]["ok"]
    assert body.json()["store"]["ok"]


def test_readyz_is_503_when_the_sink_stopped_on_a_fatal_error(make_client: Callable[..., TestClient]) -> None:
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    consumer = FakeConsumer([[FakeMessage(0, -1, None, error=fatal)]])
    client = make_client(consumer_factory=lambda config: consumer)

    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    sink = client.get("/readyz").json()["sink"]

    assert sink["ok"] is False
    assert sink["detail"].startswith("stopped: SinkError: fatal Kafka error")


def test_model_names_version_threshold_run_and_its_test_metrics(client: TestClient, services_of: Any) -> None:
    first = client.get("/model")
    again = client.get("/model")

    assert first.status_code == 200
    assert first.json() == {
        "name": "fraud-unit",
        "version": "1",
        "threshold": 0.5,
        "run_id": "run-1",
        "metrics": {"test_f1": 0.87, "test_precision": 0.9, "test_recall": 0.84},
    }
    assert again.json() == first.json()
    assert services_of(client).models._run_metrics.calls == ["run-1"]  # cached per version


def test_model_is_503_before_any_model(make_client: Callable[..., TestClient], fake_registry: Any) -> None:
    response = make_client(registry=fake_registry(None)).get("/model")
    assert response.status_code == 503
    assert "fraudstream train" in response.json()["detail"]


def test_metrics_expose_latency_by_route_predictions_alerts_and_model(
    client: TestClient, services_of: Any, alert: Callable[..., Any]
) -> None:
    client.post("/predict", json=SEED_EXAMPLE)
    client.post("/predict/batch", json={"transactions": [SEED_EXAMPLE] * 3})
    client.get("/alerts/tx-1")
    client.get("/no/such/route")
    services_of(client).metrics.stored(2)

    text = client.get("/metrics").text

    assert 'fraudstream_api_request_duration_seconds_count{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'route="/alerts/{transaction_id}",status="404"' in text
    assert 'route="<unmatched>",status="404"' in text
    assert 'fraudstream_api_predictions_total{outcome="legit"} 4.0' in text
    assert "fraudstream_api_alerts_stored_total 2.0" in text
    assert 'fraudstream_api_model_info{name="fraud-unit",version="1"} 1.0' in text


def test_two_apps_in_one_process_keep_separate_metrics(make_client: Callable[..., TestClient]) -> None:
    one, two = make_client(), make_client()
    one.post("/predict", json=SEED_EXAMPLE)

    assert 'outcome="legit"} 1.0' in one.get("/metrics").text
    assert 'outcome="legit"} 1.0' not in two.get("/metrics").text
