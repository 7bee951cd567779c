"""The run's figures: precision-recall curve, confusion matrix, feature importances (PNG, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import precision_recall_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from trainer.evaluate import Evaluation


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def pr_curve(labels: np.ndarray, scores: np.ndarray, evaluation: Evaluation) -> Figure:
    precision, recall, _ = precision_recall_curve(labels, scores)
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot(recall, precision, color="#1f5fa8", lw=1.6, label=f"PR-AUC {evaluation.pr_auc:.3f}")
    axes.scatter(
        [evaluation.recall],
        [evaluation.precision],
        color="#c0392b",
        zorder=3,
        label=f"threshold {evaluation.threshold:.3f}: F1 {evaluation.f1:.3f}",
    )
    axes.axhline(labels.mean(), color="grey", ls="--", lw=0.8, label=f"fraud rate {labels.mean():.4f}")
    axes.set(xlabel="recall (fraud)", ylabel="precision (fraud)", xlim=(0, 1.01), ylim=(0, 1.02))
    axes.set_title(f"Precision-recall on the test split ({evaluation.rows:,} rows, {evaluation.frauds} frauds)")
    axes.legend(loc="lower left")
    return figure


def confusion_matrix(evaluation: Evaluation) -> Figure:
    cells = np.array([[evaluation.tn, evaluation.fp], [evaluation.fn, evaluation.tp]])
    figure = _figure(4.8, 4.2)
    axes = figure.add_subplot()
    axes.imshow(np.log1p(cells), cmap="Blues")
    for (row, col), count in np.ndenumerate(cells):
        axes.text(col, row, f"{count:,}", ha="center", va="center", fontsize=13, color="black")
    axes.set_xticks([0, 1], labels=["normal", "fraud"])
    axes.set_yticks([0, 1], labels=["normal", "fraud"])
    axes.set(xlabel="predicted", ylabel="actual", title=f"Test confusion matrix (threshold {evaluation.threshold:.3f})")
    return figure


def feature_importances(names: Sequence[str], importances: np.ndarray, top: int = 20) -> Figure:
    order = np.argsort(importances)[::-1][:top][::-1]
    figure = _figure(6.0, 5.5)
    axes = figure.add_subplot()
    axes.barh([names[i] for i in order], importances[order], color="#1f5fa8")
    axes.set(xlabel="mean decrease in impurity", title=f"Random forest: top {len(order)} features")
    return figure
