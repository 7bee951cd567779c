"""GET /healthz, /readyz, /model and /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError
from fastapi.testclient import TestClient

from api.exceptions import StoreError
from fraudstream.schemas import SEED_EXAMPLE, Alert

from ..kafka_stats import stats_json
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
    client = make_client(consumer_factory=consumer, api_ready_max_sink_lag=25)

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
        "partitions": 3,
        "dead_lettered": 0,
    }
    assert body.json()["model"]["ok"]
    assert body.json()["store"]["ok"]


class SilentConsumer(FakeConsumer):
    """Holds no partitions (as while a dead member's session runs out), or cannot reach the broker."""

    def __init__(self) -> None:
        super().__init__([])
        self.partitions: list[int] = []
        self.reachable = True

    def assignment(self) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [TopicPartition("fraud-alerts", p) for p in self.partitions]

    def stats(self) -> str:
        return stats_json("fraud-alerts", dict.fromkeys(self.partitions, (0, 0)), up=self.reachable)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        if not self.reachable:  # what librdkafka tells every client while the broker is away
            self.config["error_cb"](KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
        return super().consume(num_messages, timeout)


def _sink_when(client: TestClient, done: Callable[[dict[str, Any]], bool]) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        response = client.get("/readyz")
        if done(response.json()["sink"]) or time.monotonic() > deadline:
            return response.status_code, response.json()["sink"]
        time.sleep(0.05)


def test_readyz_is_503_while_the_sink_holds_no_partitions_or_cannot_reach_the_broker_and_200_after(
    make_client: Callable[..., TestClient],
) -> None:
    consumer = SilentConsumer()
    client = make_client(consumer_factory=consumer)

    code, sink = _sink_when(client, lambda s: "no partitions" in s["detail"])
    assert code == 503
    assert sink["ok"] is False
    assert sink["partitions"] == 0

    consumer.partitions = [0, 1, 2]
    code, sink = _sink_when(client, lambda s: s["ok"])
    assert code == 200, sink
    assert (sink["partitions"], sink["lag"]) == (3, 0)

    consumer.reachable = False
    code, sink = _sink_when(client, lambda s: "cannot reach the broker" in s["detail"])
    assert code == 503

    consumer.reachable = True
    code, sink = _sink_when(client, lambda s: s["ok"])
    assert code == 200, sink


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
