"""``train()``: one honest training run, tracked in MLflow, with the gate's decision applied and recorded."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fraudstream.data.check import DatasetSummary, load_dataset
from fraudstream.data.source import DatasetChoice, resolve_dataset
from fraudstream.model.engine import OnnxEngine
from fraudstream.model.registry import ModelRegistry
from fraudstream.schemas import FEATURES
from fraudstream.settings import Settings
from trainer import gate, plots, tracking
from trainer.config import TrainConfig
from trainer.evaluate import Evaluation, evaluate
from trainer.export import forest_to_onnx, parity
from trainer.pipeline import build_pipeline, params_of
from trainer.split import Splits, split_dataset
from trainer.threshold import ThresholdChoice, choose_threshold

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
    validation: ThresholdChoice
    evaluation: Evaluation
    decision: gate.Decision
    version: str | None
    onnx_max_abs_diff: float
    test_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """0-based data rows of the test split: rows the model never saw (the demo replays them)."""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return self.decision.outcome.value


def _production_f1(registry: ModelRegistry, splits: Splits, rounds: int, seed: int) -> tuple[str | None, float | None]:
    """The serving version and its F1 on *this* run's test rows, at its own threshold."""
    ref = registry.serving_version()
    if ref is None:
        return None, None
    current = registry.load(ref.version)
    scores = current.score(splits.test.X.to_numpy(dtype=np.float32))
    return ref.version, evaluate(splits.test.y, scores, current.threshold, rounds=rounds, seed=seed).f1


def train(settings: Settings, config: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Split, fit SMOTE + forest on training rows, pick the threshold on validation, evaluate on test,
    log everything to MLflow, then register and promote as the gate decides."""
    import mlflow

    reporter = reporter or LogReporter()
    min_f1 = settings.min_f1 if config.min_f1 is None else config.min_f1
    seconds: dict[str, float] = {}
    tracking.use_store(settings)  # the fluent API (start_run, log_*) works on MLflow's process-wide store
    registry = ModelRegistry(settings)

    with reporter.stage("loading data"):
        started = time.perf_counter()
        choice = resolve_dataset(settings, config.data, synthetic_rows=config.synthetic_rows, seed=config.seed)
        reporter.note(choice.description)
        frame, summary = load_dataset(choice.path)
        seconds["load"] = time.perf_counter() - started

    with reporter.stage(f"splitting ({config.split})"):
        splits = split_dataset(
            frame, kind=config.split, test_size=config.test_size, val_size=config.val_size, seed=config.seed
        )
        sizes = {name: (len(part), part.frauds) for name, part in vars(splits).items()}
        reporter.note(", ".join(f"{name} {rows:,} rows / {frauds} frauds" for name, (rows, frauds) in sizes.items()))

    with reporter.stage(f"fitting SMOTE + RandomForest on {len(splits.fit):,} rows"):
        started = time.perf_counter()
        pipeline = build_pipeline(config).fit(splits.fit.X, splits.fit.y)
        seconds["fit"] = time.perf_counter() - started

    with reporter.stage("compiling to ONNX and checking parity"):
        onnx_bytes = forest_to_onnx(pipeline)
        engine = OnnxEngine(onnx_bytes)
        onnx_diff = parity(pipeline, engine, splits.validation.X)

    with reporter.stage("choosing the threshold on validation rows and evaluating on test rows"):
        validation = choose_threshold(splits.validation.y, engine.fraud_probability(splits.validation.X.to_numpy()))
        test_scores = engine.fraud_probability(splits.test.X.to_numpy())
        evaluation = evaluate(
            splits.test.y, test_scores, validation.threshold, rounds=config.bootstrap_rounds, seed=config.seed
        )

    experiment_id = tracking.ensure_experiment(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"rf-{time.strftime('%Y%m%d-%H%M%S')}") as run:
        with reporter.stage("logging the run to MLflow"):
            started = time.perf_counter()
            mlflow.log_params({**params_of(config), "min_f1": min_f1})
            mlflow.set_tags(
                {
                    "data.path": str(choice.path),
                    "data.synthetic": str(choice.synthetic).lower(),
                    "data.sha256": summary.sha256,
                }
            )
            tracking.log_json(
                {
                    "path": str(choice.path),
                    "synthetic": choice.synthetic,
                    "rows": summary.rows,
                    "frauds": summary.frauds,
                    "sha256": summary.sha256,
                    "splits": sizes,
                },
                "dataset_summary.json",
            )
            mlflow.log_metrics(
                {
                    **evaluation.metrics(),
                    "threshold": validation.threshold,
                    "val_f1": validation.f1,
                    "val_precision": validation.precision,
                    "val_recall": validation.recall,
                    "onnx_max_abs_diff": onnx_diff,
                    "fit_seconds": seconds["fit"],
                    "dataset_rows": summary.rows,
                    "dataset_frauds": summary.frauds,
                }
            )
            tracking.log_figures(
                {
                    "pr_curve": plots.pr_curve(splits.test.y, test_scores, evaluation),
                    "confusion_matrix": plots.confusion_matrix(evaluation),
                    "feature_importances": plots.feature_importances(
                        FEATURES, pipeline.steps[-1][1].feature_importances_
                    ),
                }
            )
            tracking.log_test_predictions(splits.test.rows, splits.test.y, test_scores, validation.threshold)
            model_uri = tracking.log_model(pipeline, validation.threshold, onnx_bytes, onnx_diff, splits.test.X.head(5))
            seconds["mlflow"] = time.perf_counter() - started

        with reporter.stage("applying the gate"):
            decision, version = _apply_gate(
                settings, registry, splits, evaluation, validation, model_uri, run.info.run_id, min_f1, config
            )
            mlflow.set_tags(decision.tags() | ({"registered_version": version} if version else {}))
            reporter.note(decision.reason)

    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        dataset=choice,
        summary=summary,
        split_sizes=sizes,
        validation=validation,
        evaluation=evaluation,
        decision=decision,
        version=version,
        onnx_max_abs_diff=onnx_diff,
        test_rows=splits.test.rows,
        seconds=seconds,
    )


def _apply_gate(
    settings: Settings,
    registry: ModelRegistry,
    splits: Splits,
    evaluation: Evaluation,
    validation: ThresholdChoice,
    model_uri: str,
    run_id: str,
    min_f1: float,
    config: TrainConfig,
) -> tuple[gate.Decision, str | None]:
    if not gate.passes_gate(evaluation.f1, min_f1):
        return gate.refused(evaluation.f1, min_f1), None
    production_version, production_f1 = _production_f1(registry, splits, config.bootstrap_rounds, config.seed)
    decision = gate.promotion(evaluation.f1, min_f1, production_version, production_f1)
    tags = decision.tags() | {"threshold": f"{validation.threshold:.6f}", "run_id": run_id}
    description = (
        f"test F1 {evaluation.f1:.4f} (95% CI {evaluation.f1_ci_low:.3f}-{evaluation.f1_ci_high:.3f}), "
        f"precision {evaluation.precision:.4f}, recall {evaluation.recall:.4f}, PR-AUC {evaluation.pr_auc:.4f}; "
        f"threshold {validation.threshold:.4f}. {decision.reason}"
    )
    version = tracking.register(registry.client, settings.model_name, model_uri, run_id, tags, description)
    if decision.outcome is gate.Outcome.PROMOTED:
        registry.client.set_registered_model_alias(settings.model_name, settings.model_alias, version)
    return decision, version
