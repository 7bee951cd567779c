"""Fixtures every test may use: where the real ULB rows are (skip when absent) and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_FRAUD_FILE = "creditcard_fraud.csv"
REAL_NORMAL_FILE = "creditcard_normal_sample.csv"


def shared_data_dir() -> Path | None:
    """FRAUD_SHARED_DATA, else ../shared/data beside the checkout; None when the real rows are not there."""
    configured = os.environ.get("FRAUD_SHARED_DATA")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if (candidate / REAL_FRAUD_FILE).is_file() and (candidate / REAL_NORMAL_FILE).is_file():
        return candidate
    return None


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The folder of the real ULB rows; the test is skipped when it is absent (a user's fresh clone)."""
    found = shared_data_dir()
    if found is None:
        pytest.skip("real ULB rows not found: set FRAUD_SHARED_DATA or place them in ../shared/data")
    return found


@pytest.fixture(scope="session")
def real_creditcard_csv(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real frauds and normal sample concatenated into one creditcard.csv (100,492 rows, 492 frauds)."""
    out = tmp_path_factory.mktemp("real") / "creditcard.csv"
    with out.open("wb") as sink:
        for index, name in enumerate((REAL_NORMAL_FILE, REAL_FRAUD_FILE)):
            with (real_data_dir / name).open("rb") as source:
                header = source.readline()
                if index == 0:
                    sink.write(header)
                for line in source:
                    sink.write(line if line.endswith(b"\n") else line + b"\n")
    return out


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env or FRAUD_* settings by accident; the broker address is kept."""
    for name in list(os.environ):
        if (name.startswith("FRAUD_") and name not in ("FRAUD_KAFKA_BOOTSTRAP", "FRAUD_SHARED_DATA")) or (
            name.startswith("MLFLOW_")
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return


# ---- a trained, promoted model shared by the stream and API tests -----------------------------------------


@dataclass(frozen=True)
class TrainedModel:
    """A model the real trainer registered and promoted in a session-wide MLflow store."""

    overrides: dict[str, str]  # Settings overrides that point at its store and name
    data_csv: Path  # the rows it was trained on (real rows when present, else synthetic)
    real: bool
    version: str


def _store_overrides(store: Path) -> dict[str, str]:
    """Settings naming an MLflow store explicitly (never inherited from MLFLOW_TRACKING_URI, which MLflow
    exports whenever a process trains)."""
    return {
        "mlflow_tracking_uri": f"sqlite:///{store.resolve() / 'mlflow.db'}",
        "mlflow_artifact_location": (store / "mlartifacts").resolve().as_uri(),
    }


def _train_small(store: Path, data_csv: Path, model_name: str) -> str:
    from fraudstream.settings import load_settings
    from trainer.config import TrainConfig
    from trainer.service import train

    settings = load_settings(**_store_overrides(store), state_dir=store, model_name=model_name, min_f1=0.5)
    # few trees: the out-of-fold threshold fits folds + 1 forests
    config = TrainConfig(data=data_csv, n_estimators=10, max_depth=10, n_jobs=2, bootstrap_rounds=200, seed=3)
    result = train(settings, config)
    if result.version is None or result.decision.outcome.name != "PROMOTED":
        raise RuntimeError(f"the test model was not promoted: {result.decision.reason}")
    return result.version


def _subsample_real(real_dir: Path, out: Path, every: int) -> Path:
    """All real frauds with every ``every``-th real normal row, in one CSV, small enough to train fast.

    Normal rows are taken across the whole file, not from its start: the frauds span the two days, so normal
    rows from the first hours only would teach the model that a late ``Time`` means fraud.
    """
    import pandas as pd

    normals = pd.read_csv(real_dir / REAL_NORMAL_FILE).iloc[::every]
    frame = pd.concat([normals, pd.read_csv(real_dir / REAL_FRAUD_FILE)]).sort_values("Time", kind="stable")
    frame.to_csv(out, index=False, float_format="%.15g")
    return out


@pytest.fixture(scope="session")
def small_training_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    """(csv, real): all real frauds with every 3rd real normal row when ../shared/data is there, else synthetic."""
    from fraudstream.data.synth import write_synthetic

    home = tmp_path_factory.mktemp("small-training")
    real_dir = shared_data_dir()
    if real_dir is not None:
        return _subsample_real(real_dir, home / "creditcard.csv", every=3), True
    return write_synthetic(home / "creditcard_synthetic.csv", rows=30_000, seed=3, fraud_rate=0.01), False


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """Trained on real rows when ../shared/data is there (all 492 frauds + every 3rd normal), else synthetic."""
    from fraudstream.data.synth import write_synthetic

    home = tmp_path_factory.mktemp("model-store")
    real_dir = shared_data_dir()
    if real_dir is not None:
        data_csv, real = _subsample_real(real_dir, home / "creditcard.csv", every=3), True
    else:
        data_csv, real = write_synthetic(home / "creditcard_synthetic.csv", rows=30_000, seed=3, fraud_rate=0.01), False
    store = home / "state"
    name = "fraudstream-test"
    version = _train_small(store, data_csv, name)
    overrides = {**_store_overrides(store), "model_name": name}
    return TrainedModel(overrides=overrides, data_csv=data_csv, real=real, version=version)


@pytest.fixture
def train_and_promote() -> Callable[[Path, Path, str], str]:
    """Train a small model into ``store`` under ``model_name`` and promote it; returns the new version."""
    return _train_small
