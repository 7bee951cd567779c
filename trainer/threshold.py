"""The decision threshold: the score cut that maximises F1 on validation rows (never on test rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve

from trainer.exceptions import TrainingError


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    f1: float
    precision: float
    recall: float


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> ThresholdChoice:
    """Maximise F1 over the validation scores.

    The cut is placed halfway between the chosen score and the next lower distinct score, so the decision
    on validation is unchanged while a score within float noise of the cut does not flip.
    """
    if labels.sum() == 0:
        raise TrainingError("the validation split holds no fraud: the data set is too small to choose a threshold")
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
        threshold=threshold, f1=float(f1[best]), precision=float(precision[best]), recall=float(recall[best])
    )
