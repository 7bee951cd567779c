"""Fixtures of the API unit tests: a small real ONNX forest behind a fake registry, a SQLite store in tmp, and a
TestClient factory. No broker and no MLflow: those are the integration tests' business."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.feedback import FeedbackPublisher
from api.store.alerts import AlertRepository
from fraudstream.model.engine import OnnxEngine
from fraudstream.schemas import Alert
from fraudstream.settings import Settings, load_settings

from ..conftest import SmallForest
from .fakes import MODEL_NAME, FakeFeedbackTopic, FakeProducer, FakeRegistry, FakeRunMetrics

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def onnx_engine(small_forest: SmallForest) -> OnnxEngine:
    """A real (small) RandomForest compiled to ONNX the way the trainer does, trained on synthetic rows."""
    return small_forest.engine


def unit_settings(tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "alert_store_url": f"sqlite:///{tmp_path / 'alerts.db'}",
        "api_run_sink": False,
        "model_poll_interval_s": 3600,  # tests move the alias and call refresh() themselves
        "monitor_to_mlflow": False,
    }
    return load_settings(**{**defaults, **overrides})


AppFactory = Callable[..., TestClient]


@pytest.fixture
def feedback_topic() -> FakeFeedbackTopic:
    """The in-memory fraud-feedback topic of the apps ``make_client`` builds."""
    return FakeFeedbackTopic()


@pytest.fixture
def make_client(tmp_path: Path, small_forest: SmallForest, feedback_topic: FakeFeedbackTopic) -> Iterator[AppFactory]:
    """``make_client(registry=..., consumer_factory=..., **settings overrides) -> TestClient``, lifespan run."""
    clients: list[TestClient] = []

    def make(
        *,
        registry: FakeRegistry | None = None,
        consumer_factory: Callable[..., Any] | None = None,
        monitoring_consumer_factory: Callable[..., Any] | None = None,
        **overrides: Any,
    ) -> TestClient:
        """A started app; with ``consumer_factory`` the alert sink runs in it on that (fake) consumer, with
        ``monitoring_consumer_factory`` the monitoring sink on that one."""
        settings = unit_settings(tmp_path, **overrides)
        store = AlertRepository.from_url(settings.alert_store)
        publisher = FeedbackPublisher(
            settings,
            store.feedback,
            producer_factory=feedback_topic.producer,
            consumer_factory=feedback_topic.consumer,
            create_topic=False,
            interval_s=0.05,
        )
        app = create_app(
            settings,
            registry=registry
            if registry is not None
            else FakeRegistry(small_forest.engine, forest=small_forest.pipeline),
            run_metrics=FakeRunMetrics(),
            store=store,
            run_sink=consumer_factory is not None,
            consumer_factory=consumer_factory,
            run_monitoring_sink=monitoring_consumer_factory is not None,
            monitoring_consumer_factory=monitoring_consumer_factory,
            feedback=publisher,
            producer_factory=lambda config: FakeProducer(),
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    return make_client()


@pytest.fixture
def services_of() -> Callable[[TestClient], Any]:
    """``services_of(client)``: the app's wired parts (models, store, metrics, sink)."""

    def services(client: TestClient) -> Any:
        app: FastAPI = client.app  # type: ignore[assignment]
        return app.state.services

    return services


@pytest.fixture
def fake_registry() -> type[FakeRegistry]:
    return FakeRegistry


@pytest.fixture
def alert() -> Callable[..., Alert]:
    """``alert(index, event_time=T0, **fields)``: a valid Alert with id ``tx-<index>``."""
    return make_alert


def make_alert(index: int, event_time: datetime = T0, **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "transaction_id": f"tx-{index:05d}",
        "score": 0.9,
        "threshold": 0.5,
        "model_name": MODEL_NAME,
        "model_version": "1",
        "event_time": event_time,
        "scored_at": event_time + timedelta(seconds=1),
        "partition": index % 3,
        "offset": index,
        "amount": 10.0 + index,
        "label": 1,
    }
    values.update(fields)
    return Alert(**values)
