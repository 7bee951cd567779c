"""The API on a model the real trainer registered in a real MLflow store: the seed's answer, /model, hot reload.

No broker is needed here (the sink is off); the tests sit with the integration tests because they train.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from api.app import create_app
from fraudstream.model.registry import ModelRegistry
from fraudstream.schemas import SEED_EXAMPLE, TransactionFeatures, feature_matrix
from fraudstream.settings import Settings, load_settings


def _settings(tmp_path: Path, overrides: dict[str, str], **extra: Any) -> Settings:
    return load_settings(
        **overrides,
        state_dir=tmp_path / "state",
        alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        api_run_sink=False,
        **extra,
    )


def test_the_seed_example_is_legitimate_for_a_model_trained_on_the_real_rows(
    trained_model: Any, tmp_path: Path
) -> None:
    if not trained_model.real:
        pytest.skip("the real ULB rows are absent: the model was trained on synthetic rows")
    settings = _settings(tmp_path, trained_model.overrides)

    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", json=SEED_EXAMPLE)

    assert response.status_code == 200
    body = response.json()
    assert body["fraudulent"] is False
    assert body["model_version"] == trained_model.version
    # the same model, threshold and scoring code the scorer uses
    model = ModelRegistry(settings).load_serving()
    expected = float(model.score(feature_matrix([TransactionFeatures(**SEED_EXAMPLE)]))[0])
    assert body["score"] == expected
    assert body["threshold"] == model.threshold


def test_model_reports_its_run_test_metrics(trained_model: Any, tmp_path: Path) -> None:
    settings = _settings(tmp_path, trained_model.overrides)
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    version = client.get_model_version(settings.model_name, trained_model.version)
    run_metrics = client.get_run(version.run_id).data.metrics

    with TestClient(create_app(settings)) as api:
        body = api.get("/model").json()

    assert body["name"] == settings.model_name
    assert body["version"] == trained_model.version
    assert body["run_id"] == version.run_id
    assert set(body["metrics"]) >= {"test_f1", "test_precision", "test_recall", "test_pr_auc", "test_roc_auc"}
    assert body["metrics"] == {name: value for name, value in run_metrics.items() if name.startswith("test_")}
    assert body["threshold"] == pytest.approx(run_metrics["threshold"])


def test_the_api_follows_the_alias_to_a_new_version(trained_model: Any, tmp_path: Path) -> None:
    # A private copy of the session's MLflow database: moving its alias must not disturb other tests.
    store = Path(trained_model.overrides["mlflow_tracking_uri"].removeprefix("sqlite:///"))
    private = tmp_path / "mlflow.db"
    shutil.copy(store, private)
    overrides = {**trained_model.overrides, "mlflow_tracking_uri": f"sqlite:///{private}"}
    settings = _settings(tmp_path, overrides, model_poll_interval_s=0.5)
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)

    with TestClient(create_app(settings)) as api:
        assert api.post("/predict", json=SEED_EXAMPLE).json()["model_version"] == trained_model.version
        current = client.get_model_version(settings.model_name, trained_model.version)
        new = client.create_model_version(settings.model_name, current.source, run_id=current.run_id)
        client.set_registered_model_alias(settings.model_name, settings.model_alias, new.version)

        deadline = time.monotonic() + 30
        while api.post("/predict", json=SEED_EXAMPLE).json()["model_version"] != str(new.version):
            assert time.monotonic() < deadline, "the API did not follow the alias within 30 s"
            time.sleep(0.2)
        assert api.get("/model").json()["version"] == str(new.version)
        assert 'version="' + str(new.version) in api.get("/metrics").text
        batch = api.post("/predict/batch", json={"transactions": [SEED_EXAMPLE] * 3}).json()
        assert {item["model_version"] for item in batch["data"]} == {str(new.version)}
        assert np.isfinite([item["score"] for item in batch["data"]]).all()
