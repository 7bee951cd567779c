"""The decision threshold: the score cut that maximises F1 on out-of-fold scores of the training rows.

Every training row is scored by a model that did not train on it (k folds by content, so duplicates share a
fold), the threshold is chosen on all those scores, then the final model is refitted on every training row.
The holdout is never looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve

from trainer.exceptions import TrainingError


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    f1: float
    precision: float
    recall: float
    pr_auc: float = float("nan")
    rows: int = 0
    frauds: int = 0


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> ThresholdChoice:
    """Maximise F1 over the given scores (out-of-fold, never the holdout's).

    The cut is placed halfway between the chosen score and the next lower distinct score, so the decision
    on these rows is unchanged while a score within float noise of the cut does not flip.
    """
    if labels.sum() == 0:
        raise TrainingError("the rows for the threshold hold no fraud: the data set is too small to choose one")
    precision, recall, cuts = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
    )
    best = int(np.argmax(f1))
    chosen = float(cuts[best])
    lower = scores[scores < chosen]
    threshold = (chosen + float(lower.max())) / 2 if lower.size else chosen
    return ThresholdChoice(
        threshold=threshold,
        f1=float(f1[best]),
        precision=float(precision[best]),
        recall=float(recall[best]),
        pr_auc=float(average_precision_score(labels, scores)),
        rows=len(labels),
        frauds=int(labels.sum()),
    )


class Scorer(Protocol):
    """What ``fit`` returns: anything with sklearn's ``predict_proba``."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


def out_of_fold_scores(
    fit: Callable[[pd.DataFrame, np.ndarray], Scorer],
    X: pd.DataFrame,
    y: np.ndarray,
    folds: np.ndarray,
    on_fold: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Fraud probability of every row from a model fitted on the other folds (``folds``: fold number per row)."""
    scores = np.full(len(y), np.nan)
    numbers = np.unique(folds)
    if len(numbers) < 2:
        raise TrainingError("out-of-fold scores need at least 2 folds")
    for index, fold in enumerate(numbers):
        held = folds == fold
        if y[~held].sum() < 2 or y[held].sum() == 0:
            raise TrainingError(
                f"fold {fold} leaves {int(y[held].sum())} frauds held out and {int(y[~held].sum())} to fit on: "
                "too few frauds for out-of-fold scores (use fewer folds or more data)"
            )
        model = fit(X[~held], y[~held])
        scores[held] = model.predict_proba(X[held])[:, 1]
        if on_fold is not None:
            on_fold(index + 1, len(numbers))
    return scores
