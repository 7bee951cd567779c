"""`train --feedback`: the analysts' verdicts relabel the rows they name before the holdout is chosen, and the run
says how many labels they changed (printed, and in MLflow as a parameter, metrics, tags and an artifact).

The verdicts come from a stand-in for the topic reader here; tests/integration/test_feedback_training.py reads
them from a real broker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from fraudstream.data.synth import write_synthetic
from fraudstream.schemas import LABEL_COLUMN, Feedback
from fraudstream.settings import Settings, load_settings
from trainer import stages
from trainer.config import TrainConfig
from trainer.service import train
from trainer.tracking import PREDICTIONS_ARTIFACT

from ..verdicts import verdict as _verdict

SMALL_FOREST = {"n_estimators": 10, "max_depth": 6, "n_jobs": 1, "bootstrap_rounds": 200, "seed": 7}


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(
        tmp_path_factory.mktemp("feedback") / "learnable_synthetic.csv", rows=20_000, seed=11, fraud_rate=0.01
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    state = tmp_path / "state"
    return load_settings(
        state_dir=state,
        mlflow_tracking_uri=f"sqlite:///{state / 'mlflow.db'}",
        model_name="fb-test",
        min_f1=0.0,
        min_holdout_frauds=10,
    )


def test_verdicts_relabel_the_rows_they_name_and_the_count_is_logged(
    csv: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    labels = pd.read_csv(csv)[LABEL_COLUMN].to_numpy()
    fraud, normal = int(labels.nonzero()[0][0]), int((labels == 0).nonzero()[0][0])
    confirmed = int(labels.nonzero()[0][1])  # already a fraud: named, unchanged
    name = csv.name
    verdicts = {
        f"{name}:{fraud}": _verdict(1, f"{name}:{fraud}", "legitimate"),
        f"{name}:{normal}": _verdict(2, f"{name}:{normal}", "fraud"),
        f"{name}:{confirmed}": _verdict(3, f"{name}:{confirmed}", "fraud"),
        "other.csv:5": _verdict(4, "other.csv:5", "fraud"),
    }
    asked: list[str] = []

    def read(given: Settings) -> dict[str, Feedback]:
        asked.append(given.topic_feedback)
        return verdicts

    monkeypatch.setattr(stages, "read_verdicts", read)

    result = train(settings, TrainConfig(data=csv, feedback=True, **SMALL_FOREST))

    assert asked == [settings.topic_feedback]
    assert result.relabelling is not None
    assert result.relabelling.changed_rows == sorted([fraud, normal])
    assert (result.relabelling.verdicts, result.relabelling.matched, result.relabelling.other_files) == (4, 3, 1)
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["feedback"] == "True"
    assert run.data.metrics["feedback_labels_changed"] == 2
    assert run.data.metrics["feedback_rows_matched"] == 3
    assert run.data.tags["feedback.labels_changed"] == "2"
    assert run.data.tags["feedback.topic"] == settings.topic_feedback
    assert run.data.metrics["dataset_frauds"] == labels.sum()  # the file as read; the verdicts are logged apart
    changed = json.loads(
        Path(client.download_artifacts(result.run_id, "feedback/relabelled_rows.json", str(tmp_path))).read_text()
    )
    assert changed["changed"] == sorted(
        [{"row": fraud, "label": 0}, {"row": normal, "label": 1}], key=lambda item: item["row"]
    )
    # the rows of the holdout carry the verdicts' labels too, and every other row keeps the CSV's Class
    holdout = pd.read_csv(client.download_artifacts(result.run_id, PREDICTIONS_ARTIFACT, str(tmp_path)))
    expected = labels.copy()
    expected[fraud], expected[normal] = 0, 1
    assert (holdout["label"].to_numpy() == expected[holdout["row"].to_numpy()]).all()
    assert run.data.metrics["feedback_labels_changed_holdout"] == holdout["row"].isin([fraud, normal]).sum()
    # the datasets of a relabelled run are not digested as the file's own labels
    digests = {d.dataset.digest for d in run.inputs.dataset_inputs}
    assert all("-fb" in digest for digest in digests)


def test_without_the_flag_no_verdict_is_read(csv: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def read(given: Settings) -> dict[str, Feedback]:
        raise AssertionError("the topic must not be read without --feedback")

    monkeypatch.setattr(stages, "read_verdicts", read)
    result = train(settings, TrainConfig(data=csv, **SMALL_FOREST))
    assert result.relabelling is None
    run = MlflowClient(settings.tracking_uri).get_run(result.run_id)
    assert run.data.params["feedback"] == "False"
    assert "feedback_labels_changed" not in run.data.metrics
    assert all("-fb" not in d.dataset.digest for d in run.inputs.dataset_inputs)


def test_the_cli_flag_reaches_the_config(monkeypatch: pytest.MonkeyPatch, settings: Settings, csv: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from fraudstream.cli import train as train_command

    seen: list[TrainConfig] = []

    def stop(given: Settings, config: TrainConfig, reporter: object) -> None:
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr("trainer.service.train", stop)
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so "train" is a subcommand as in `fraudstream train`
    train_command.register(app)  # only the train command: the trainer's tests import no other component
    monkeypatch.setenv("FRAUD_STATE_DIR", str(settings.state_dir))
    runner = CliRunner()
    runner.invoke(app, ["train", "--data", str(csv), "--feedback"])
    runner.invoke(app, ["train", "--data", str(csv)])
    assert [config.feedback for config in seen] == [True, False]
