from __future__ import annotations

import numpy as np
import pytest

from trainer import gate
from trainer.evaluate import bootstrap_f1_interval, evaluate
from trainer.exceptions import TrainingError
from trainer.threshold import choose_threshold


def test_threshold_maximises_validation_f1_and_sits_between_scores() -> None:
    labels = np.array([0, 0, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.9])
    choice = choose_threshold(labels, scores)
    # best cut keeps 0.4 and above: tp=3, fp=1 -> F1 = 6/7
    assert choice.f1 == pytest.approx(6 / 7)
    assert 0.3 < choice.threshold < 0.4
    assert choice.threshold == pytest.approx(0.35)


def test_threshold_needs_a_fraud_in_validation() -> None:
    with pytest.raises(TrainingError, match="no fraud"):
        choose_threshold(np.zeros(10, dtype=int), np.linspace(0, 1, 10))


def test_evaluation_counts_the_fraud_class() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.1, 0.1, 0.2, 0.0, 0.3, 0.1])
    result = evaluate(labels, scores, 0.5, rounds=500, seed=0)
    assert (result.tp, result.fp, result.fn, result.tn) == (2, 1, 1, 6)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(2 / 3)
    assert result.accuracy == pytest.approx(0.8)
    assert result.f1_ci_low <= result.f1 <= result.f1_ci_high
    assert result.metrics()["test_f1"] == pytest.approx(2 / 3)


def test_bootstrap_interval_narrows_with_more_rows_and_is_deterministic() -> None:
    small = bootstrap_f1_interval(8, 2, 2, 1000, rounds=2000, seed=1)
    large = bootstrap_f1_interval(800, 200, 200, 100_000, rounds=2000, seed=1)
    assert small[1] - small[0] > large[1] - large[0]
    assert large[0] < 0.8 < large[1]
    assert bootstrap_f1_interval(8, 2, 2, 1000, rounds=2000, seed=1) == small


def test_gate_outcomes() -> None:
    assert not gate.passes_gate(0.90, 0.91)
    assert gate.refused(0.9, 0.91).outcome is gate.Outcome.REFUSED
    first = gate.promotion(0.93, 0.91, None, None)
    assert first.outcome is gate.Outcome.PROMOTED
    tie = gate.promotion(0.93, 0.91, "1", 0.93)
    assert tie.outcome is gate.Outcome.PROMOTED  # "at least as well" promotes
    worse = gate.promotion(0.92, 0.91, "1", 0.95)
    assert worse.outcome is gate.Outcome.REGISTERED
    assert "below production v1" in worse.reason
    assert worse.tags()["gate.production_f1"] == "0.9500"
    assert [o.value for o in gate.Outcome] == [0, 3, 4]
