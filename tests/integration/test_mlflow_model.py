"""The registered model as MLflow users reach it: a plain pyfunc on rows read straight from creditcard.csv, and
`mlflow models serve` answering like POST /predict. The session's model, a real MLflow store, real HTTP.

No broker is needed; the tests sit with the integration tests because they use the session's trained model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from fraudstream.kafka.local.processes import free_port
from fraudstream.model.registry import ModelRegistry
from fraudstream.schemas import FEATURES, SEED_EXAMPLE
from fraudstream.settings import Settings, load_settings

from .child_env import child_env

SERVE_START_TIMEOUT_S = 180


def _settings(tmp_path: Path, overrides: dict[str, str]) -> Settings:
    return load_settings(
        **overrides, state_dir=tmp_path / "state", alert_store_url=f"sqlite:///{tmp_path / 'a.db'}", api_run_sink=False
    )


@pytest.fixture
def pyfunc_uri(trained_model: Any) -> str:
    """``models:/<name>@production`` with MLflow pointed at the session's store, as a user's shell would be."""
    import mlflow

    uri = trained_model.overrides["mlflow_tracking_uri"]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return f"models:/{trained_model.overrides['model_name']}@production"


def test_the_registered_model_predicts_on_rows_read_straight_from_the_csv(
    trained_model: Any, pyfunc_uri: str, tmp_path: Path
) -> None:
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    frame = pd.read_csv(trained_model.data_csv)  # Time is int64 in the real file: the seed's failing call
    if trained_model.real:
        assert frame["Time"].dtype == np.int64
    model = mlflow.pyfunc.load_model(pyfunc_uri)
    answer = model.predict(frame)  # Class rides along and is ignored

    served = ModelRegistry(_settings(tmp_path, trained_model.overrides)).load_serving()
    expected = served.score(frame[list(FEATURES)].to_numpy(dtype=np.float32))
    assert list(answer.columns) == ["score", "fraudulent", "threshold"]
    assert len(answer) == len(frame)
    np.testing.assert_allclose(answer["score"], expected, atol=1e-7)
    np.testing.assert_array_equal(answer["fraudulent"], served.flags(expected))
    assert (answer["threshold"] == served.threshold).all()
    assert answer["fraudulent"].sum() > 0  # the file holds frauds: some are flagged

    bad = frame.head(3).copy()
    bad.loc[1, "Amount"] = -4.0
    with pytest.raises(MlflowException, match="column 'Amount', row 1"):
        model.predict(bad)


@pytest.fixture
def mlflow_server(trained_model: Any, pyfunc_uri: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow models serve -m models:/<name>@production --env-manager local` on a free port."""
    port = free_port()
    env = child_env(
        MLFLOW_TRACKING_URI=trained_model.overrides["mlflow_tracking_uri"],
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # its uvicorn
    )
    log_file = (tmp_path / "mlflow-serve.log").open("wb")
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", pyfunc_uri, "--env-manager", "local"]
    process = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # it runs uvicorn as a child: stop the whole group
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow models serve exited {process.returncode}:\n{_tail(tmp_path)}")
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow models serve did not answer /ping in {SERVE_START_TIMEOUT_S} s:\n{_tail(tmp_path)}"
                )
            time.sleep(0.5)
        yield base
    finally:
        with_group = os.getpgid(process.pid) if process.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log_file.close()


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "mlflow-serve.log").read_text(errors="replace")[-3000:]


def test_mlflow_models_serve_answers_like_predict(trained_model: Any, mlflow_server: str, tmp_path: Path) -> None:
    frame = pd.read_csv(trained_model.data_csv)
    fraud = {name: float(value) for name, value in frame[frame["Class"] == 1].iloc[0][list(FEATURES)].items()}
    transactions = [SEED_EXAMPLE, fraud]

    served = httpx.post(f"{mlflow_server}/invocations", json={"dataframe_records": transactions}, timeout=30)
    assert served.status_code == 200, served.text
    predictions = served.json()["predictions"]

    with TestClient(create_app(_settings(tmp_path, trained_model.overrides))) as api:
        answers = [api.post("/predict", json=transaction).json() for transaction in transactions]
    for prediction, answer in zip(predictions, answers, strict=True):
        assert prediction["score"] == pytest.approx(answer["score"], abs=1e-12)
        assert prediction["fraudulent"] is answer["fraudulent"]
        assert prediction["threshold"] == answer["threshold"]
    assert predictions[0]["fraudulent"] is False  # the seed's example is a legitimate transaction

    bad = httpx.post(
        f"{mlflow_server}/invocations", json={"dataframe_records": [{**SEED_EXAMPLE, "Amount": -1.0}]}, timeout=30
    )
    assert bad.status_code == 400
    assert "Amount" in bad.json()["message"]
