"""The unfair champion comparison of issue 10, reproduced as a user meets it, and shown fixed.

Before, `train --seed 7` after a run with seed 42 scored production on the new run's test rows, 79% of which were
production's own training rows: production looked better than it was and the new model was kept out. Now the
holdout is chosen by content, so a second run holds out the same rows; and a version trained the old way (a seeded
stratified split) is judged only on the holdout rows it never trained on. Real MLflow store, real rows when
present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudstream.data.check import load_dataset
from fraudstream.model.engine import OnnxEngine, forest_to_onnx
from fraudstream.model.profile import ReferenceProfile
from fraudstream.model.registry import ModelRegistry
from fraudstream.schemas import FEATURES, LABEL_COLUMN
from fraudstream.settings import Settings, load_settings
from trainer import tracking
from trainer.config import TrainConfig
from trainer.evaluate import evaluate
from trainer.export import parity
from trainer.gate import Outcome
from trainer.pipeline import build_pipeline
from trainer.service import train
from trainer.split import stratified_indices

SMALL = {"n_estimators": 10, "max_depth": 8, "n_jobs": 2, "bootstrap_rounds": 300}


def _settings(tmp_path: Path, **extra: object) -> Settings:
    state = tmp_path / "state"
    return load_settings(
        state_dir=state,
        mlflow_tracking_uri=f"sqlite:///{state / 'mlflow.db'}",
        model_name="fairness",
        min_f1=0.5,
        **extra,
    )


def _contents(frame: pd.DataFrame, rows: np.ndarray) -> set[tuple[float, ...]]:
    return {tuple(row) for row in frame.iloc[rows][list(FEATURES)].to_numpy()}


def test_a_second_run_with_another_seed_judges_production_on_rows_it_never_trained_on(
    small_training_csv: tuple[Path, bool], tmp_path: Path
) -> None:
    csv, _ = small_training_csv
    settings = _settings(tmp_path)
    first = train(settings, TrainConfig(data=csv, seed=42, **SMALL))
    assert first.outcome is Outcome.PROMOTED
    second = train(settings, TrainConfig(data=csv, seed=7, **SMALL))

    np.testing.assert_array_equal(first.test_rows, second.test_rows)  # the seed no longer moves the holdout
    frame = pd.read_csv(csv)
    first_training = np.setdiff1d(np.arange(len(frame)), first.test_rows)
    assert not _contents(frame, second.test_rows) & _contents(frame, first_training)

    champion = second.decision.champion
    assert champion is not None
    assert champion.version == first.version
    assert champion.comparison is not None
    assert champion.comparison.rows == second.evaluation.rows  # all of it: production never saw any of it
    assert champion.comparison.frauds == second.evaluation.frauds
    # production is judged at its honest holdout score, not at a score inflated by its own training rows
    assert champion.comparison.production_f1 == pytest.approx(first.evaluation.f1, abs=1e-12)
    assert champion.comparison.challenger_f1 == pytest.approx(second.evaluation.f1, abs=1e-12)
    assert "holdout rows neither trained on" in second.decision.reason
    assert "all of this run's holdout" in second.decision.reason
    assert 0.0 <= champion.comparison.p_at_least_as_good <= 1.0


def _legacy_version(settings: Settings, csv: Path) -> tuple[str, np.ndarray]:
    """A production version as the old trainer made it: a seeded stratified split (seed 42), its run recording
    split, test_size, seed and the data hash. Returns its version and its training rows."""
    import mlflow

    frame, summary = load_dataset(csv)
    labels = frame[LABEL_COLUMN].to_numpy()
    trained, _ = stratified_indices(labels, 0.2, 42)
    X = frame[list(FEATURES)]
    pipeline = build_pipeline(TrainConfig(n_estimators=20, max_depth=12, n_jobs=2, seed=42))
    pipeline.fit(X.iloc[trained], labels[trained])
    onnx_bytes = forest_to_onnx(pipeline)
    diff = parity(pipeline, OnnxEngine(onnx_bytes), X.head(100))
    profile = ReferenceProfile.compute(X.iloc[trained].to_numpy(), labels[trained], np.zeros(10))
    tracking.use_store(settings)
    registry = ModelRegistry(settings)
    with mlflow.start_run(experiment_id=tracking.ensure_experiment(settings)) as run:
        mlflow.log_params({"split": "stratified", "test_size": 0.2, "val_size": 0.2, "seed": 42})
        mlflow.set_tag("data.sha256", summary.sha256)
        facts = tracking.ServingFacts(threshold=0.5, onnx_max_abs_diff=diff, time_encoding="raw")
        uri = tracking.log_model(pipeline, facts, onnx_bytes, profile, X.head(5))
        version = tracking.register(registry.client, settings.model_name, uri, run.info.run_id, {}, "the old way")
    registry.client.set_registered_model_alias(settings.model_name, settings.model_alias, version)
    return version, trained


def test_a_version_trained_the_old_way_is_judged_only_on_rows_it_never_trained_on(
    small_training_csv: tuple[Path, bool], tmp_path: Path
) -> None:
    csv, _ = small_training_csv
    settings = _settings(tmp_path, min_holdout_frauds=5)  # the shared rows hold ~a fifth of the holdout's frauds
    legacy, legacy_training = _legacy_version(settings, csv)
    result = train(settings, TrainConfig(data=csv, seed=7, **SMALL))

    frame = pd.read_csv(csv)
    seen = _contents(frame, legacy_training)
    holdout = result.test_rows
    unseen = np.array([tuple(row) not in seen for row in frame.iloc[holdout][list(FEATURES)].to_numpy()])
    assert 0.05 < unseen.mean() < 0.5  # most of this run's holdout was the old version's training rows

    champion = result.decision.champion
    assert champion is not None
    assert champion.version == legacy
    assert champion.comparison is not None
    assert champion.comparison.rows == int(unseen.sum())
    assert champion.comparison.frauds == int(frame[LABEL_COLUMN].to_numpy()[holdout][unseen].sum())
    assert "holdout rows neither trained on" in result.decision.reason
    assert "left out" in result.decision.reason
    assert "stratified split" in result.decision.reason

    # what the old gate did: production scored on rows it had memorised looks better than it is
    production = ModelRegistry(settings).load(legacy)
    labels = frame[LABEL_COLUMN].to_numpy()[holdout]
    scores = production.score(frame.iloc[holdout][list(FEATURES)].to_numpy(dtype=np.float32))
    on_its_training_rows = evaluate(labels[~unseen], scores[~unseen], 0.5, rounds=100, seed=0).f1
    on_fair_rows = evaluate(labels[unseen], scores[unseen], 0.5, rounds=100, seed=0).f1
    assert on_fair_rows == pytest.approx(champion.comparison.production_f1, abs=1e-12)
    assert on_its_training_rows > on_fair_rows


def test_a_version_from_another_file_is_not_compared(small_training_csv: tuple[Path, bool], tmp_path: Path) -> None:
    """Held out by time on another file: which of these rows it saw is unknown, so no comparison, no promotion."""
    csv, _ = small_training_csv
    other = tmp_path / "other.csv"
    pd.read_csv(csv).iloc[::2].to_csv(other, index=False, float_format="%.15g")
    settings = _settings(tmp_path)
    first = train(settings, TrainConfig(data=other, split="time", **SMALL))
    assert first.outcome is Outcome.PROMOTED
    second = train(settings, TrainConfig(data=csv, **SMALL))
    assert second.outcome is Outcome.REGISTERED
    assert "cannot be compared fairly" in second.decision.reason
    assert "another file" in second.decision.reason
    assert ModelRegistry(settings).serving_version().version == first.version  # type: ignore[union-attr]
