"""The same reasons everywhere: an alert the scorer raised on a real broker, the same transaction sent to
`fraudstream serve`'s /predict, and the alert as the store serves it carry the same reasons (same features, same
order, contributions equal within 1e-9), all computed by the kernel's one explanation path."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from fraudstream.kafka.local.processes import free_port
from fraudstream.model.registry import ModelRegistry

from .api_support import Service, fetch_all_alerts, process_env, wait_ready
from .stream_support import ScorerThread, offline_flags, read_alerts, replay_rows, wait_caught_up

if TYPE_CHECKING:
    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

ROWS = 2000
TOLERANCE = 1e-9


def _reasons(explanation: dict[str, Any]) -> list[tuple[str, float, float]]:
    return [(r["feature"], r["value"], r["contribution"]) for r in explanation["reasons"]]


def _same(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert left["method"] == right["method"]
    assert abs(left["base_value"] - right["base_value"]) <= TOLERANCE
    assert [(f, v) for f, v, _ in _reasons(left)] == [(f, v) for f, v, _ in _reasons(right)]  # features and order
    contributions = np.array([c for *_, c in _reasons(left)]) - np.array([c for *_, c in _reasons(right)])
    assert np.all(np.abs(contributions) <= TOLERANCE)


def test_an_alert_of_the_scorer_and_predict_on_the_same_transaction_give_the_same_reasons(
    trained_model: TrainedModel,
    settings_factory: SettingsFactory,
    services: Callable[..., Service],
    stream: Path,
    tmp_path: Path,
) -> None:
    settings = settings_factory(
        **trained_model.overrides,
        scorer_batch_size=500,
        explain_exact_budget_ms=60_000,  # every alert explained exactly, so that both sides used TreeSHAP
        alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        api_port=free_port(),
        sink_batch_timeout_s=0.2,
    )
    base_url = f"http://127.0.0.1:{settings.api_port}"
    expected = offline_flags(settings, trained_model.version, stream)
    api = services(["serve"], process_env(settings), tmp_path / "serve.log")
    wait_ready(base_url, api)

    with ScorerThread(settings) as scorer:
        replay_rows(settings, stream)
        wait_caught_up(settings, ROWS)
        alerts = read_alerts(settings, at_least=len(expected))
        assert scorer.error is None

    assert {alert.transaction_id for alert in alerts} == expected
    assert all(alert.explanation is not None and alert.explanation.method == "treeshap" for alert in alerts)
    assert all(alert.explanation.reasons for alert in alerts)  # type: ignore[union-attr]
    model = ModelRegistry(settings).load(trained_model.version)
    for alert in alerts:  # the contributions of the flagged row, recomputed here, add up to its score
        assert alert.features is not None
        assert model.explainer is not None
        forest = model.explainer.wait()
        assert forest is not None
        matrix = np.array([alert.features.as_row()], dtype=np.float32)
        total = forest.contributions(matrix).sum() + forest.base_value
        assert abs(total - alert.score) < 1e-6

    with httpx.Client(base_url=base_url, timeout=30) as client:
        for alert in alerts:
            answer = client.post("/predict", json=alert.features.model_dump())  # type: ignore[union-attr]
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["fraudulent"] is True
            assert abs(body["score"] - alert.score) <= TOLERANCE
            _same(alert.explanation.model_dump(), body["explanation"])  # type: ignore[union-attr]

    served = _wait_all(base_url, len(alerts))
    for alert in alerts:
        stored = served[alert.transaction_id]
        _same(alert.explanation.model_dump(), stored["explanation"])  # type: ignore[union-attr]
        assert stored["features"] == alert.features.model_dump()  # type: ignore[union-attr]
        assert all(reason["text"].startswith(f"{reason['feature']} = ") for reason in stored["explanation"]["reasons"])
    assert api.stop() == 0, api.output()[-3000:]


def _wait_all(base_url: str, count: int, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """The alerts the API serves, once the sink stored ``count`` of them (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        served = {item["transaction_id"]: item for item in fetch_all_alerts(base_url, limit=100)}
        if len(served) >= count or time.monotonic() > deadline:
            return served
        time.sleep(0.5)
