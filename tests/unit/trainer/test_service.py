"""The trainer against a real MLflow store (SQLite in a temp folder) on small synthetic data and small forests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE
from mlflow import MlflowClient

from fraudstream.data.synth import write_synthetic
from fraudstream.model.features import model_input
from fraudstream.model.registry import ModelRegistry
from fraudstream.schemas import FEATURES, LABEL_COLUMN
from fraudstream.settings import Settings, load_settings
from trainer.config import TrainConfig
from trainer.exceptions import TrainingError
from trainer.gate import Outcome
from trainer.service import TrainResult, train
from trainer.split import CONTENT_SCHEME, content_keys, holdout_mask
from trainer.tracking import PREDICTIONS_ARTIFACT

SMALL_FOREST = {"n_estimators": 15, "max_depth": 8, "n_jobs": 1, "bootstrap_rounds": 200, "seed": 7}
WEAK_FOREST = {"n_estimators": 1, "max_depth": 2, "n_jobs": 1, "bootstrap_rounds": 200, "seed": 7}
GATE = 0.5


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trainer")


@pytest.fixture(scope="module")
def learnable_csv(workspace: Path) -> Path:
    return write_synthetic(workspace / "learnable_synthetic.csv", rows=30_000, seed=11, fraud_rate=0.01)


@pytest.fixture(scope="module")
def unlearnable_csv(workspace: Path) -> Path:
    return write_synthetic(workspace / "noise_synthetic.csv", rows=20_000, seed=5, fraud_rate=0.01, separation=0.0)


@pytest.fixture(scope="module")
def settings(workspace: Path) -> Settings:
    state = workspace / "state"
    # An explicit store: MLflow exports MLFLOW_TRACKING_URI whenever a process trains, and module fixtures are
    # built before the per-test environment clean-up.
    return load_settings(
        state_dir=state, mlflow_tracking_uri=f"sqlite:///{state / 'mlflow.db'}", model_name="fraud-test", min_f1=GATE
    )


@pytest.fixture(scope="module")
def first_run(settings: Settings, learnable_csv: Path) -> TrainResult:
    return train(settings, TrainConfig(data=learnable_csv, **SMALL_FOREST))


def _predictions(client: MlflowClient, run_id: str, tmp: Path) -> pd.DataFrame:
    local = client.download_artifacts(run_id, PREDICTIONS_ARTIFACT, str(tmp))
    return pd.read_csv(local)


def test_a_learnable_set_is_registered_and_promoted_with_metrics_and_plots(
    settings: Settings, first_run: TrainResult
) -> None:
    assert first_run.decision.outcome is Outcome.PROMOTED
    assert first_run.exit_code == 0
    client = MlflowClient(settings.tracking_uri)
    production = client.get_model_version_by_alias(settings.model_name, "production")
    assert str(production.version) == first_run.version
    assert production.run_id == first_run.run_id
    assert production.tags["gate.decision"] == "promoted"

    run = client.get_run(first_run.run_id)
    for metric in (
        "test_f1",
        "test_precision",
        "test_recall",
        "test_pr_auc",
        "test_roc_auc",
        "test_accuracy",
        "test_f1_ci_low",
        "test_f1_ci_high",
        "test_tp",
        "threshold",
        "oof_f1",
        "oof_pr_auc",
        "gate_p_f1_at_least_min",
    ):
        assert metric in run.data.metrics, metric
    assert run.data.metrics["test_f1"] == pytest.approx(first_run.evaluation.f1)
    assert run.data.metrics["test_f1"] >= GATE
    assert run.data.metrics["threshold"] == pytest.approx(first_run.threshold.threshold)
    params = run.data.params
    assert params["n_estimators"] == "15"
    assert (params["split"], params["test_size"], params["folds"]) == ("content", "0.2", "3")
    assert params["holdout_scheme"] == CONTENT_SCHEME
    assert "synthetic_rows" not in params  # the rows came from the file given, not from a generated set
    assert "val_size" not in params
    assert run.data.tags["data.sha256"] == first_run.summary.sha256
    assert run.data.tags["gate.p_f1_at_least_min"] == f"{run.data.metrics['gate_p_f1_at_least_min']:.3f}"
    inputs = {item.tags[0].value: item.dataset for item in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "holdout"}
    assert inputs["holdout"].digest == f"{first_run.summary.sha256[:12]}-holdout"
    assert json.loads(inputs["training"].profile)["num_rows"] == first_run.split_sizes["train"][0]
    plots = {item.path for item in client.list_artifacts(first_run.run_id, "plots")}
    assert plots == {"plots/pr_curve.png", "plots/confusion_matrix.png", "plots/feature_importances.png"}


def test_smote_never_touches_holdout_rows(
    settings: Settings, learnable_csv: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[np.ndarray] = []
    original = SMOTE.fit_resample

    def recording_fit_resample(self: SMOTE, X: pd.DataFrame, y: np.ndarray, **params: object) -> object:
        seen.append(np.asarray(X))
        return original(self, X, y, **params)

    # Spy on imblearn's own class (a subclass would be refused by the skops trusted-type check, rightly).
    monkeypatch.setattr(SMOTE, "fit_resample", recording_fit_resample)
    config = TrainConfig(data=learnable_csv, min_f1=1.0, **SMALL_FOREST)  # gate refuses: nothing registered
    result = train(settings, config)

    frame = pd.read_csv(learnable_csv)
    features = frame[list(FEATURES)].to_numpy()
    held = holdout_mask(content_keys(features), config.test_size)  # the holdout by content, computed here
    assert result.split_sizes["test"] == (int(held.sum()), int(frame[LABEL_COLUMN][held].sum()))
    np.testing.assert_array_equal(result.test_rows, np.flatnonzero(held))
    logged = _predictions(MlflowClient(settings.tracking_uri), result.run_id, tmp_path)
    assert len(logged) == held.sum()
    assert logged["label"].mean() == pytest.approx(frame[LABEL_COLUMN].mean(), abs=0.003)  # natural rate

    assert len(seen) == config.folds + 1  # once per out-of-fold fit, once for the final fit
    assert len(seen[-1]) == result.split_sizes["train"][0]
    assert sum(len(rows) for rows in seen[:-1]) == (config.folds - 1) * result.split_sizes["train"][0]
    test_rows = {tuple(row) for row in features[held]}
    for resampled_input in seen:
        assert not test_rows & {tuple(row) for row in resampled_input}


def test_a_holdout_with_too_few_frauds_is_refused_before_any_fit(tmp_path: Path) -> None:
    small = write_synthetic(tmp_path / "small_synthetic.csv", rows=3000, seed=2, fraud_rate=0.02)
    frame = pd.read_csv(small)
    settings = load_settings(state_dir=tmp_path / "state", min_holdout_frauds=1000)
    with pytest.raises(TrainingError, match="fewer than FRAUD_MIN_HOLDOUT_FRAUDS"):
        train(settings, TrainConfig(data=small, **SMALL_FOREST))
    assert frame[LABEL_COLUMN].sum() < 1000


def test_only_the_parameters_that_applied_are_logged(learnable_csv: Path) -> None:
    from fraudstream.data.source import DatasetChoice
    from trainer.split import split_dataset
    from trainer.stages import Data
    from trainer.tracking import run_params

    frame = pd.read_csv(learnable_csv)
    splits = split_dataset(frame, kind="time", share=0.25)
    summary = type("Summary", (), {"sha256": "f" * 64})()
    given = Data(DatasetChoice(learnable_csv, True, "given"), frame, summary)  # type: ignore[arg-type]
    params = run_params(TrainConfig(data=learnable_csv, split="time", test_size=0.25), given, splits)
    assert (params["split"], params["test_size"]) == ("time", "0.25")
    assert "holdout_scheme" not in params  # a time split has no content scheme
    assert "synthetic_rows" not in params
    fallback = run_params(TrainConfig(), given, split_dataset(frame, kind="content", share=0.2))
    assert fallback["synthetic_rows"] == 100_000  # generated because no file was given: it shaped the data
    assert fallback["holdout_scheme"] == CONTENT_SCHEME


def test_the_production_model_reproduces_the_runs_test_predictions(
    settings: Settings, first_run: TrainResult, learnable_csv: Path, tmp_path: Path
) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn

    mlflow.set_tracking_uri(settings.tracking_uri)  # as a user would; another test's train() may have moved it
    mlflow.set_registry_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    logged = _predictions(client, first_run.run_id, tmp_path)
    frame = pd.read_csv(learnable_csv)
    features = frame.iloc[logged["row"].to_numpy()][list(FEATURES)]

    served = ModelRegistry(settings).load_serving()  # models:/fraud-test@production through the kernel
    assert served.version == first_run.version
    assert served.threshold == pytest.approx(client.get_run(first_run.run_id).data.metrics["threshold"])
    scores = served.score(features.to_numpy(dtype=np.float32))
    np.testing.assert_allclose(scores, logged["score"], atol=1e-6)
    np.testing.assert_array_equal(served.flags(scores).astype(int), logged["flagged"])

    assert served.profile is not None  # the reference profile travels with the version
    assert served.profile.rows == first_run.split_sizes["train"][0]
    assert served.profile.fraud_rate == pytest.approx(first_run.split_sizes["train"][1] / served.profile.rows)
    assert sum(served.profile.score.shares) == pytest.approx(1.0)

    pyfunc = mlflow.pyfunc.load_model(settings.model_uri)  # a plain pyfunc, the same ONNX scoring path
    answer = pyfunc.predict(frame.iloc[logged["row"].to_numpy()])  # straight from the CSV: Class is ignored
    assert list(answer.columns) == ["score", "fraudulent", "threshold"]
    np.testing.assert_allclose(answer["score"], logged["score"], atol=1e-6)
    np.testing.assert_array_equal(answer["fraudulent"].astype(int), logged["flagged"])

    sklearn_model = mlflow.sklearn.load_model(settings.model_uri)  # skops, with the trusted types recorded
    forest_view = pd.DataFrame(model_input(features.to_numpy(), served.time_encoding), columns=features.columns)
    assert served.time_encoding == TrainConfig().time_encoding
    np.testing.assert_allclose(sklearn_model.predict_proba(forest_view)[:, 1], logged["score"], atol=1e-5)


def test_a_worse_model_that_passes_the_gate_is_registered_not_promoted(
    settings: Settings, first_run: TrainResult, learnable_csv: Path
) -> None:
    result = train(settings, TrainConfig(data=learnable_csv, **WEAK_FOREST))
    assert result.evaluation.f1 >= GATE, "the weak model must still pass the gate for this test to mean anything"
    assert result.decision.outcome is Outcome.REGISTERED
    assert result.exit_code == 3
    client = MlflowClient(settings.tracking_uri)
    assert str(client.get_model_version_by_alias(settings.model_name, "production").version) == first_run.version
    version = client.get_model_version(settings.model_name, result.version)
    assert version.tags["gate.decision"] == "registered"
    assert "below production" in version.tags["gate.reason"]
    assert "holdout rows neither trained on" in version.tags["gate.reason"]
    # the same content holdout: production is judged on all of it, which it never trained on
    assert result.decision.champion is not None
    assert result.decision.champion.comparison is not None
    assert result.decision.champion.comparison.rows == first_run.evaluation.rows
    assert float(version.tags["gate.production_f1"]) == pytest.approx(first_run.evaluation.f1, abs=1e-4)
    assert client.get_run(result.run_id).data.tags["gate.decision"] == "registered"


def test_a_set_that_cannot_reach_the_gate_registers_nothing(settings: Settings, unlearnable_csv: Path) -> None:
    client = MlflowClient(settings.tracking_uri)
    before = {v.version for v in client.search_model_versions(f"name='{settings.model_name}'")}
    result = train(settings, TrainConfig(data=unlearnable_csv, **SMALL_FOREST))
    assert result.decision.outcome is Outcome.REFUSED
    assert result.exit_code == 4
    assert result.version is None
    assert {v.version for v in client.search_model_versions(f"name='{settings.model_name}'")} == before
    tags = client.get_run(result.run_id).data.tags
    assert tags["gate.decision"] == "refused"
    assert "below the gate" in tags["gate.reason"]
    assert f"{result.evaluation.f1:.4f}" in tags["gate.reason"]


def test_cli_prints_the_metrics_table_and_exits_with_the_outcome(
    settings: Settings, unlearnable_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from fraudstream.cli import train as train_command

    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so "train" is a subcommand as in `fraudstream train`
    train_command.register(app)
    monkeypatch.setenv("FRAUD_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("FRAUD_MODEL_NAME", settings.model_name)
    result = CliRunner().invoke(
        app,
        ["train", "--data", str(unlearnable_csv), "--n-estimators", "5", "--max-depth", "4", "--n-jobs", "1"],
    )
    assert result.exit_code == 4, result.output
    assert "F1 (fraud)" in result.output
    assert "P(F1 >= " in result.output  # the gate says what it knows: the bootstrap chance of clearing it
    assert "refused" in result.output
    assert "--min-f1" in result.output  # says how to lower the gate
    assert io.StringIO(result.output).read().count("✓") >= 5  # a status line per stage
