"""``train()``: one honest training run, tracked in MLflow, with the gate's decision applied and recorded.

A short sequence of named stages (trainer/stages.py: load, hold out, fit and measure), then the MLflow logging
block (trainer/tracking.py: log_run), then the decision: the gate, the fair comparison with production, the
registration and promotion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fraudstream.data.check import DatasetSummary
from fraudstream.data.source import DatasetChoice
from fraudstream.feedback import Relabelling
from fraudstream.model.registry import ModelRegistry
from fraudstream.settings import Settings
from trainer import gate, tracking
from trainer.champion import assess_production
from trainer.config import TrainConfig
from trainer.evaluate import Evaluation
from trainer.split import Splits
from trainer.stages import Data, Fitted, LogReporter, Reporter, fit_and_measure, hold_out, load
from trainer.threshold import ThresholdChoice

__all__ = ["LogReporter", "Reporter", "TrainResult", "train"]


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
    relabelling: Relabelling | None = None
    """What the analysts' verdicts changed, when the run read them (``feedback``)."""

    @property
    def outcome(self) -> gate.Outcome:
        return self.decision.outcome

    @property
    def exit_code(self) -> int:
        return self.decision.outcome.value


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
            model_uri = tracking.log_run(config, data, splits, candidate, seconds)
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
        relabelling=data.relabelling,
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
        if config.as_challenger:
            decision = gate.as_challenger(candidate.gate, champion)
        else:
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
    elif decision.outcome is gate.Outcome.CHALLENGER:
        registry.client.set_registered_model_alias(settings.model_name, settings.model_challenger_alias, version)
    return version
