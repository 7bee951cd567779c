"""``train()``: one honest training run, tracked in MLflow, with the gate's decision applied and recorded.

The run is a short sequence of named stages: load, hold out, choose the threshold out of fold, fit the final
model, export and check it, evaluate it on the holdout, log the run, decide (gate, fair comparison with
production, registration).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from fraudstream.data.check import DatasetSummary, load_dataset
from fraudstream.data.source import DatasetChoice, resolve_dataset
from fraudstream.model.engine import OnnxEngine
from fraudstream.model.features import model_input
from fraudstream.model.profile import ReferenceProfile
from fraudstream.model.registry import ModelRegistry
from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES, LABEL_COLUMN
from fraudstream.settings import Settings
from trainer import gate, plots, tracking
from trainer.champion import HoldoutRecord, assess_production
from trainer.config import TrainConfig
from trainer.evaluate import Evaluation, evaluate
from trainer.exceptions import TrainingError
from trainer.export import forest_to_onnx, parity
from trainer.pipeline import MODEL_PARAMS, build_pipeline
from trainer.split import CONTENT_SCHEME, Splits, content_folds, split_dataset
from trainer.threshold import ThresholdChoice, choose_threshold, out_of_fold_scores

if TYPE_CHECKING:
    from imblearn.pipeline import Pipeline

log = logging.getLogger(__name__)


class Reporter(Protocol):
    """Where progress goes: the CLI shows it to a person, tests and the demo may log it."""

    def stage(self, name: str) -> contextlib.AbstractContextManager[None]: ...

    def note(self, message: str) -> None: ...


class LogReporter:
    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        log.info("%s ...", name)
        yield
        log.info("%s done in %.1f s", name, time.perf_counter() - started)

    def note(self, message: str) -> None:
        log.info(message)


@dataclass
class TrainResult:
    run_id: str
    experiment_id: str
    dataset: DatasetChoice
    summary: DatasetSummary
    split_sizes: dict[str, tuple[int, int]]
    threshold: ThresholdChoice
    """The threshold and the out-of-fold F1, precision, recall and PR-AUC it was chosen on."""
    evaluation: Evaluation
    decision: gate.Decision
    version: str | None
    onnx_max_abs_diff: float
    test_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """0-based data rows of the holdout: rows the model never saw (the demo replays them)."""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def outcome(self) -> gate.Outcome:
        return self.decision.outcome

    @property
    def exit_code(self) -> int:
        return self.decision.outcome.value


@dataclass(frozen=True)
class Data:
    choice: DatasetChoice
    frame: pd.DataFrame
    summary: DatasetSummary


@dataclass(frozen=True)
class Fitted:
    """The fitted model and everything measured about it before anything is logged."""

    pipeline: Pipeline
    onnx_bytes: bytes
    onnx_diff: float
    threshold: ThresholdChoice
    test_scores: np.ndarray
    evaluation: Evaluation
    profile: ReferenceProfile
    gate: gate.Candidate

    @property
    def flags(self) -> np.ndarray:
        return self.test_scores >= self.threshold.threshold


def train(settings: Settings, config: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Hold out by content (or time), choose the threshold on out-of-fold scores of the training rows, refit on
    all of them, evaluate on the holdout, log everything to MLflow, then register and promote as the gate
    decides."""
    import mlflow

    reporter = reporter or LogReporter()
    seconds: dict[str, float] = {}
    tracking.use_store(settings)  # the fluent API (start_run, log_*) works on MLflow's process-wide store
    registry = ModelRegistry(settings)

    data = load(settings, config, reporter, seconds)
    splits = hold_out(data, config, settings.min_holdout_frauds, reporter)
    candidate = fit_and_measure(config, splits, settings, reporter, seconds)
    experiment_id = tracking.ensure_experiment(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"rf-{time.strftime('%Y%m%d-%H%M%S')}") as run:
        with reporter.stage("logging the run to MLflow"):
            started = time.perf_counter()
            model_uri = log_run(settings, config, data, splits, candidate, seconds)
            seconds["mlflow"] = time.perf_counter() - started
        with reporter.stage("applying the gate"):
            decision, version = decide(settings, config, registry, data, splits, candidate, model_uri, run.info.run_id)
            reporter.note(decision.reason)

    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        dataset=data.choice,
        summary=data.summary,
        split_sizes=splits.sizes(),
        threshold=candidate.threshold,
        evaluation=candidate.evaluation,
        decision=decision,
        version=version,
        onnx_max_abs_diff=candidate.onnx_diff,
        test_rows=splits.test.rows,
        seconds=seconds,
    )


# ---- stages ----------------------------------------------------------------------------------------------


def load(settings: Settings, config: TrainConfig, reporter: Reporter, seconds: dict[str, float]) -> Data:
    with reporter.stage("loading data"):
        started = time.perf_counter()
        choice = resolve_dataset(settings, config.data, synthetic_rows=config.synthetic_rows, seed=config.seed)
        reporter.note(choice.description)
        frame, summary = load_dataset(choice.path)
        seconds["load"] = time.perf_counter() - started
    return Data(choice, frame, summary)


def hold_out(data: Data, config: TrainConfig, min_frauds: int, reporter: Reporter) -> Splits:
    with reporter.stage(f"holding out {config.test_size:.0%} of rows by {config.split}"):
        splits = split_dataset(data.frame, kind=config.split, share=config.test_size, seed=config.seed)
        reporter.note(
            f"training {len(splits.train):,} rows / {splits.train.frauds} frauds, "
            f"holdout {len(splits.test):,} rows / {splits.test.frauds} frauds"
        )
    if splits.test.frauds < min_frauds:
        raise TrainingError(
            f"the holdout holds {splits.test.frauds} frauds, fewer than FRAUD_MIN_HOLDOUT_FRAUDS ({min_frauds}): "
            "too few to decide anything on; use a larger data set or --test-size"
        )
    return splits


def encoded(X: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """The forest's view of the rows (Time encoded as the config says), as the serving model will feed it."""
    if config.time_encoding == "raw":
        return X
    return pd.DataFrame(model_input(X.to_numpy(), config.time_encoding), columns=X.columns, index=X.index)


def fit_and_measure(
    config: TrainConfig, splits: Splits, settings: Settings, reporter: Reporter, seconds: dict[str, float]
) -> Fitted:
    X, y = encoded(splits.train.X, config), splits.train.y

    def fit(rows: pd.DataFrame, labels: np.ndarray) -> Pipeline:
        return build_pipeline(config).fit(rows, labels)

    with reporter.stage(f"choosing the threshold on {config.folds}-fold out-of-fold scores of {len(y):,} rows"):
        started = time.perf_counter()
        scores = out_of_fold_scores(fit, X, y, content_folds(splits.train.keys, config.folds))
        threshold = choose_threshold(y, scores)
        seconds["oof"] = time.perf_counter() - started
        reporter.note(
            f"threshold {threshold.threshold:.4f}: out-of-fold F1 {threshold.f1:.4f}, "
            f"precision {threshold.precision:.4f}, recall {threshold.recall:.4f}"
        )
    with reporter.stage(f"fitting SMOTE + RandomForest on all {len(y):,} training rows"):
        started = time.perf_counter()
        pipeline = fit(X, y)
        seconds["fit"] = time.perf_counter() - started
    with reporter.stage("compiling to ONNX and checking parity"):
        onnx_bytes = forest_to_onnx(pipeline)
        engine = OnnxEngine(onnx_bytes)
        onnx_diff = parity(pipeline, engine, encoded(splits.test.X, config))
    with reporter.stage(f"evaluating on the {len(splits.test):,} holdout rows"):
        model = FraudModel("candidate", "new", threshold.threshold, engine, time_encoding=config.time_encoding)
        test_scores = model.score(splits.test.X.to_numpy(dtype=np.float32))  # the serving path, raw fields in
        rounds, seed = config.bootstrap_rounds, config.seed
        evaluation = evaluate(splits.test.y, test_scores, threshold.threshold, rounds=rounds, seed=seed)
        min_f1 = settings.min_f1 if config.min_f1 is None else config.min_f1
        judged = gate.Candidate.of(evaluation, min_f1, settings.gate_rule, rounds=rounds, seed=seed)
        profile = ReferenceProfile.compute(splits.train.X.to_numpy(), splits.train.y, test_scores)
    return Fitted(pipeline, onnx_bytes, onnx_diff, threshold, test_scores, evaluation, profile, judged)


def run_params(config: TrainConfig, data: Data, splits: Splits) -> dict[str, object]:
    """The parameters that applied to this run, and only those."""
    record = HoldoutRecord(
        kind=splits.kind,
        share=splits.share,
        data_sha256=data.summary.sha256,
        scheme=CONTENT_SCHEME if splits.kind == "content" else None,
    )
    values = config.model_dump(mode="json")
    params: dict[str, object] = {**record.params(), "folds": config.folds}
    params |= {name: values[name] for name in MODEL_PARAMS}
    params |= {"n_jobs": config.n_jobs, "bootstrap_rounds": config.bootstrap_rounds}
    if data.choice.synthetic and config.data is None:
        params["synthetic_rows"] = config.synthetic_rows
    return params


def log_run(
    settings: Settings, config: TrainConfig, data: Data, splits: Splits, candidate: Fitted, seconds: dict[str, float]
) -> str:
    """The MLflow logging block: parameters, datasets, metrics, figures, predictions and the model."""
    import mlflow

    g, summary, evaluation, threshold = candidate.gate, data.summary, candidate.evaluation, candidate.threshold
    mlflow.log_params({**run_params(config, data, splits), "min_f1": g.min_f1, "gate_rule": g.rule})
    mlflow.set_tags(
        {
            "data.path": str(data.choice.path),
            "data.synthetic": str(data.choice.synthetic).lower(),
            "data.sha256": summary.sha256,
        }
    )
    columns = [*FEATURES, LABEL_COLUMN]
    tracking.log_datasets(
        {
            "training": data.frame.iloc[splits.train.rows][columns],
            "holdout": data.frame.iloc[splits.test.rows][columns],
        },
        source=str(data.choice.path),
        sha256=summary.sha256,
        label=LABEL_COLUMN,
    )
    tracking.log_json(
        {
            "path": str(data.choice.path),
            "synthetic": data.choice.synthetic,
            "rows": summary.rows,
            "frauds": summary.frauds,
            "sha256": summary.sha256,
            "splits": splits.sizes(),
        },
        "dataset_summary.json",
    )
    mlflow.log_metrics(
        {
            **evaluation.metrics(),
            "gate_p_f1_at_least_min": g.p_at_least_min,
            "threshold": threshold.threshold,
            "oof_f1": threshold.f1,
            "oof_precision": threshold.precision,
            "oof_recall": threshold.recall,
            "oof_pr_auc": threshold.pr_auc,
            "onnx_max_abs_diff": candidate.onnx_diff,
            "oof_seconds": seconds["oof"],
            "fit_seconds": seconds["fit"],
            "dataset_rows": summary.rows,
            "dataset_frauds": summary.frauds,
        }
    )
    tracking.log_figures(
        {
            "pr_curve": plots.pr_curve(splits.test.y, candidate.test_scores, evaluation),
            "confusion_matrix": plots.confusion_matrix(evaluation),
            "feature_importances": plots.feature_importances(
                FEATURES, candidate.pipeline.steps[-1][1].feature_importances_
            ),
        }
    )
    tracking.log_test_predictions(splits.test.rows, splits.test.y, candidate.test_scores, threshold.threshold)
    return tracking.log_model(
        candidate.pipeline,
        tracking.ServingFacts(threshold.threshold, candidate.onnx_diff, config.time_encoding),
        candidate.onnx_bytes,
        candidate.profile,
        splits.test.X.head(5).reset_index(drop=True),
    )


def decide(
    settings: Settings,
    config: TrainConfig,
    registry: ModelRegistry,
    data: Data,
    splits: Splits,
    candidate: Fitted,
    model_uri: str,
    run_id: str,
) -> tuple[gate.Decision, str | None]:
    """The gate, then the fair comparison with production, then registration (and promotion)."""
    import mlflow

    if not candidate.gate.passes:
        decision, version = gate.refused(candidate.gate), None
    else:
        champion = assess_production(
            registry,
            data.frame,
            splits,
            data.summary.sha256,
            candidate.flags,
            min_frauds=settings.min_holdout_frauds,
            rounds=config.bootstrap_rounds,
            seed=config.seed,
        )
        decision = gate.promotion(candidate.gate, champion)
        version = register(settings, registry, candidate, decision, model_uri, run_id)
    mlflow.log_metrics(decision.metrics())
    mlflow.set_tags(decision.tags() | ({"registered_version": version} if version else {}))
    return decision, version


def register(
    settings: Settings,
    registry: ModelRegistry,
    candidate: Fitted,
    decision: gate.Decision,
    model_uri: str,
    run_id: str,
) -> str:
    e = candidate.evaluation
    tags = decision.tags() | {"threshold": f"{candidate.threshold.threshold:.6f}", "run_id": run_id}
    description = (
        f"holdout F1 {e.f1:.4f} (95% CI {e.f1_ci_low:.3f}-{e.f1_ci_high:.3f}), precision {e.precision:.4f}, "
        f"recall {e.recall:.4f}, PR-AUC {e.pr_auc:.4f}; threshold {candidate.threshold.threshold:.4f} "
        f"(out of fold). {decision.reason}"
    )
    version = tracking.register(registry.client, settings.model_name, model_uri, run_id, tags, description)
    if decision.outcome is gate.Outcome.PROMOTED:
        registry.client.set_registered_model_alias(settings.model_name, settings.model_alias, version)
    return version
