"""Evaluation on the untouched test split at its natural fraud rate: fraud-class metrics and an F1 interval."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


@dataclass(frozen=True)
class Evaluation:
    rows: int
    frauds: int
    threshold: float
    f1: float
    precision: float
    recall: float
    pr_auc: float
    roc_auc: float
    accuracy: float
    tp: int
    fp: int
    fn: int
    tn: int
    f1_ci_low: float
    f1_ci_high: float

    def metrics(self, prefix: str = "test_") -> dict[str, float]:
        """Everything numeric, named for MLflow (``test_f1``, ``test_tp``, ...)."""
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items() if key != "threshold"}


def f1_from_counts(tp: np.ndarray | int, fp: np.ndarray | int, fn: np.ndarray | int) -> np.ndarray:
    tp, fp, fn = np.asarray(tp, float), np.asarray(fp, float), np.asarray(fn, float)
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def f1_draws(tp: int, fp: int, fn: int, tn: int, *, rounds: int, seed: int) -> np.ndarray:
    """F1 of ``rounds`` row resamples of the test set.

    Resampling n rows with replacement and counting confusion cells is the same as drawing the four cell
    counts from a multinomial with the observed proportions, which costs O(rounds) instead of O(rounds * n).
    """
    counts = np.array([tp, fp, fn, tn], dtype=float)
    total = int(counts.sum())
    draws = np.random.default_rng(seed).multinomial(total, counts / total, size=rounds)
    return f1_from_counts(draws[:, 0], draws[:, 1], draws[:, 2])


def bootstrap_f1_interval(
    tp: int, fp: int, fn: int, tn: int, *, rounds: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of F1 over row resamples of the test set."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(f1_draws(tp, fp, fn, tn, rounds=rounds, seed=seed), [tail, 100 - tail])
    return float(low), float(high)


def probability_f1_at_least(tp: int, fp: int, fn: int, tn: int, bar: float, *, rounds: int, seed: int) -> float:
    """Share of row resamples of the test set whose F1 is at least ``bar`` (same resamples as the interval)."""
    return float(np.mean(f1_draws(tp, fp, fn, tn, rounds=rounds, seed=seed) >= bar))


def evaluate(labels: np.ndarray, scores: np.ndarray, threshold: float, *, rounds: int, seed: int) -> Evaluation:
    predicted = scores >= threshold
    actual = labels.astype(bool)
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    tn = int(np.sum(~predicted & ~actual))
    both_classes = 0 < actual.sum() < len(actual)
    low, high = bootstrap_f1_interval(tp, fp, fn, tn, rounds=rounds, seed=seed)
    return Evaluation(
        rows=len(labels),
        frauds=int(actual.sum()),
        threshold=threshold,
        f1=float(f1_from_counts(tp, fp, fn)),
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
        pr_auc=float(average_precision_score(actual, scores)) if both_classes else float("nan"),
        roc_auc=float(roc_auc_score(actual, scores)) if both_classes else float("nan"),
        accuracy=(tp + tn) / len(labels),
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        f1_ci_low=low,
        f1_ci_high=high,
    )
