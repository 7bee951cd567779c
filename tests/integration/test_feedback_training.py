"""`fraudstream train --feedback` as an operator runs it: analysts' verdicts on a real broker's compacted
fraud-feedback topic relabel exactly the rows they name (the latest verdict of a transaction counts), and the run
in a real MLflow store (SQLite) records how many labels they changed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from confluent_kafka import Producer
from mlflow import MlflowClient

from fraudstream.kafka.clients import producer_config
from fraudstream.kafka.topics import COMPACTED, ensure_topics, feedback_topics
from fraudstream.schemas import LABEL_COLUMN, Feedback
from fraudstream.settings import Settings

from .child_env import child_env, fields_of
from .conftest import SettingsFactory

AT = datetime(2024, 5, 1, tzinfo=timezone.utc)


def _produce(settings: Settings, verdicts: list[Feedback]) -> None:
    """The verdicts on the compacted topic, keyed by transaction id, as the API publishes them."""
    ensure_topics(settings.kafka(), feedback_topics(settings), timeout=30, config=COMPACTED)
    producer = Producer(producer_config(settings.kafka(), client_id="test-analyst"))
    failed: list[str] = []
    for verdict in verdicts:
        producer.produce(
            settings.topic_feedback,
            key=verdict.transaction_id.encode(),
            value=verdict.model_dump_json().encode(),
            on_delivery=lambda error, _message: failed.append(str(error)) if error is not None else None,
        )
    assert producer.flush(30) == 0
    assert not failed


def test_train_with_feedback_relabels_the_rows_verdicts_name_and_logs_the_count(
    settings_factory: SettingsFactory, small_training_csv: tuple[Path, bool], tmp_path: Path
) -> None:
    csv, _ = small_training_csv
    settings = settings_factory(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", model_name="fb-train")
    labels = pd.read_csv(csv)[LABEL_COLUMN].to_numpy()
    fraud, normal = int(labels.nonzero()[0][0]), int((labels == 0).nonzero()[0][0])
    confirmed = int((labels == 0).nonzero()[0][1])
    name = csv.name

    def verdict(feedback_id: int, row: int, said: str, file_name: str = name) -> Feedback:
        return Feedback(
            feedback_id=feedback_id,
            transaction_id=f"{file_name}:{row}",
            verdict=said,  # type: ignore[arg-type]
            analyst="ana",
            decided_at=AT,
            model_name="fb-train",
            model_version="1",
        )

    _produce(
        settings,
        [
            verdict(1, fraud, "legitimate"),  # a fraud the analyst cleared: 1 -> 0
            verdict(2, normal, "legitimate"),  # replaced below
            verdict(3, confirmed, "legitimate"),  # agrees with the CSV: named, unchanged
            verdict(4, normal, "fraud"),  # the latest verdict on this transaction: 0 -> 1
            verdict(5, 7, "fraud", file_name="another.csv"),  # another file's row
        ],
    )
    env = child_env(
        fields_of(settings, ("kafka_bootstrap", "topic_feedback", "state_dir", "mlflow_tracking_uri", "model_name")),
        FRAUD_LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "fraudstream", "train", "--data", str(csv), "--feedback", "--min-f1", "0.5"]
    command += ["--n-estimators", "10", "--max-depth", "8", "--n-jobs", "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)

    assert done.returncode in (0, 3, 4), done.stdout + done.stderr  # trained; the gate's outcome is not the point
    output = " ".join(done.stdout.split())
    assert "4 analysts' verdicts, 3 naming rows of this file: 2 labels changed" in output, done.stdout
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["feedback"] == "True"
    assert run.data.metrics["feedback_verdicts"] == 4
    assert run.data.metrics["feedback_rows_matched"] == 3
    assert run.data.metrics["feedback_labels_changed"] == 2
    assert run.data.tags["feedback.labels_changed"] == "2"
    assert run.data.tags["feedback.topic"] == settings.topic_feedback
    changed = client.download_artifacts(run.info.run_id, "feedback/relabelled_rows.json", str(tmp_path))
    rows = {item["row"]: item["label"] for item in json.loads(Path(changed).read_text())["changed"]}
    assert rows == {fraud: 0, normal: 1}  # exactly the rows named whose label differed, set as the verdicts say
