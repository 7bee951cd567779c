"""The stages of a training run before anything is logged: load the data, hold rows out, fit and measure.

``fit_and_measure`` is the whole model protocol: the threshold from out-of-fold scores of every training row
(k folds by content), the final fit on all of them, the ONNX export and its parity check, the holdout
evaluation through the serving path, the gate's view of the result and the reference profile.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from fraudstream.data.check import DatasetSummary, load_dataset
from fraudstream.data.source import DatasetChoice, resolve_dataset
from fraudstream.feedback import Relabelling, read_verdicts, relabel
from fraudstream.model.engine import OnnxEngine, forest_to_onnx
from fraudstream.model.features import model_input
from fraudstream.model.profile import ReferenceProfile
from fraudstream.model.serving import FraudModel
from fraudstream.settings import Settings
from trainer import gate
from trainer.config import TrainConfig
from trainer.evaluate import Evaluation, evaluate
from trainer.exceptions import TrainingError
from trainer.export import parity
from trainer.pipeline import build_pipeline
from trainer.split import Splits, content_folds, split_dataset
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


@dataclass(frozen=True)
class Data:
    choice: DatasetChoice
    frame: pd.DataFrame
    """The file's rows, with the analysts' verdicts as labels when the run asked for them."""
    summary: DatasetSummary
    """The file as read (its Class counts before any verdict)."""
    relabelling: Relabelling | None = None
    """What the verdicts changed, when the run read them (``--feedback``)."""
    feedback_topic: str | None = None
    """The topic the verdicts were read from."""


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


def load(settings: Settings, config: TrainConfig, reporter: Reporter, seconds: dict[str, float]) -> Data:
    with reporter.stage("loading data"):
        started = time.perf_counter()
        choice = resolve_dataset(settings, config.data, synthetic_rows=config.synthetic_rows, seed=config.seed)
        reporter.note(choice.description)
        frame, summary = load_dataset(choice.path)
        seconds["load"] = time.perf_counter() - started
    if not config.feedback:
        return Data(choice, frame, summary)
    with reporter.stage(f"reading analysts' verdicts from {settings.topic_feedback}"):
        frame, relabelling = relabel(frame, choice.path.name, read_verdicts(settings))
        reporter.note(relabelling.describe())
    return Data(choice, frame, summary, relabelling, settings.topic_feedback)


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
        folds = content_folds(splits.train.keys, config.folds)
        scores = out_of_fold_scores(fit, X, y, folds, on_fold=lambda done, total: reporter.note(f"fold {done}/{total}"))
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
