from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainer import gate
from trainer.champion import Champion, Comparison
from trainer.evaluate import bootstrap_f1_interval, evaluate, probability_f1_at_least
from trainer.exceptions import TrainingError
from trainer.threshold import choose_threshold, out_of_fold_scores


def test_threshold_maximises_validation_f1_and_sits_between_scores() -> None:
    labels = np.array([0, 0, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.9])
    choice = choose_threshold(labels, scores)
    # best cut keeps 0.4 and above: tp=3, fp=1 -> F1 = 6/7
    assert choice.f1 == pytest.approx(6 / 7)
    assert 0.3 < choice.threshold < 0.4
    assert choice.threshold == pytest.approx(0.35)


def test_threshold_needs_a_fraud() -> None:
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


def _candidate(f1: float, low: float, high: float, min_f1: float = 0.91, rule: str = "point") -> gate.Candidate:
    return gate.Candidate(f1=f1, f1_ci_low=low, f1_ci_high=high, p_at_least_min=0.5, min_f1=min_f1, rule=rule)


def _comparison(challenger: float, production: float) -> Comparison:
    return Comparison(
        rows=1000,
        frauds=40,
        challenger_f1=challenger,
        production_f1=production,
        difference=challenger - production,
        difference_ci_low=-0.05,
        difference_ci_high=0.05,
        p_at_least_as_good=0.5,
    )


def test_gate_outcomes() -> None:
    refused = gate.refused(_candidate(0.90, 0.85, 0.95))
    assert not _candidate(0.90, 0.85, 0.95).passes
    assert refused.outcome is gate.Outcome.REFUSED
    assert "below the gate" in refused.reason
    first = gate.promotion(_candidate(0.93, 0.90, 0.96), None)
    assert first.outcome is gate.Outcome.PROMOTED
    assert "no version serves yet" in first.reason
    note = "the 1,000 holdout rows neither trained on"
    tie = gate.promotion(_candidate(0.93, 0.90, 0.96), Champion("1", _comparison(0.93, 0.93), note))
    assert tie.outcome is gate.Outcome.PROMOTED  # "at least as well" promotes
    worse = gate.promotion(_candidate(0.92, 0.90, 0.96), Champion("1", _comparison(0.90, 0.95), note))
    assert worse.outcome is gate.Outcome.REGISTERED
    assert "below production v1" in worse.reason
    assert "neither trained on" in worse.reason
    assert worse.tags()["gate.production_f1"] == "0.9500"
    assert worse.metrics()["champion_production_f1"] == 0.95
    unfair = gate.promotion(_candidate(0.95, 0.92, 0.97), Champion("1", None, "it was trained on another file"))
    assert unfair.outcome is gate.Outcome.REGISTERED
    assert "cannot be compared fairly" in unfair.reason
    assert "another file" in unfair.reason
    assert [o.value for o in gate.Outcome] == [0, 3, 4, 5]  # 5: registered as challenger (--as-challenger)


def test_the_interval_rule_gates_on_the_lower_bound() -> None:
    point = _candidate(0.93, 0.89, 0.96, rule="point")
    strict = _candidate(0.93, 0.89, 0.96, rule="ci_low")
    assert point.passes
    assert not strict.passes
    reason = gate.refused(strict).reason
    assert "lower bound 0.8900" in reason
    assert "F1 0.9300" in reason
    assert _candidate(0.95, 0.92, 0.97, rule="ci_low").passes


def test_the_gate_reports_the_chance_of_clearing_the_bar() -> None:
    labels = np.array([1] * 50 + [0] * 5000)
    scores = np.concatenate([np.r_[np.ones(45), np.zeros(5)], np.r_[np.ones(5), np.zeros(4995)]])
    evaluation = evaluate(labels, scores, 0.5, rounds=2000, seed=0)
    assert evaluation.f1 == pytest.approx(0.9)
    low_bar = gate.Candidate.of(evaluation, 0.5, "point", rounds=2000, seed=0)
    at_point = gate.Candidate.of(evaluation, 0.9, "point", rounds=2000, seed=0)
    high_bar = gate.Candidate.of(evaluation, 0.99, "point", rounds=2000, seed=0)
    assert low_bar.p_at_least_min == 1.0
    assert 0.3 < at_point.p_at_least_min < 0.7  # the point estimate sits mid-distribution
    assert high_bar.p_at_least_min < 0.01
    assert probability_f1_at_least(45, 5, 5, 4995, 0.9, rounds=2000, seed=0) == at_point.p_at_least_min
    assert "P(F1 >= 0.90)" in at_point.describe()


def test_out_of_fold_scores_come_from_models_that_never_saw_the_row() -> None:
    X = pd.DataFrame({"a": np.arange(12.0)})
    y = np.array([0, 1] * 6)
    folds = np.arange(12) % 3
    fitted_on: list[set[float]] = []

    class Memory:
        def __init__(self, rows: pd.DataFrame) -> None:
            self.seen = set(rows["a"])

        def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
            unseen = np.array([value not in self.seen for value in rows["a"]], dtype=float)
            return np.column_stack([1 - unseen, unseen])

    def fit(rows: pd.DataFrame, labels: np.ndarray) -> Memory:
        fitted_on.append(set(rows["a"]))
        return Memory(rows)

    scores = out_of_fold_scores(fit, X, y, folds)
    assert len(fitted_on) == 3
    np.testing.assert_array_equal(scores, np.ones(12))  # every row scored by a model that did not fit on it
    assert all(len(seen) == 8 for seen in fitted_on)


def test_out_of_fold_scores_refuse_a_fold_without_frauds() -> None:
    X = pd.DataFrame({"a": np.arange(6.0)})
    with pytest.raises(TrainingError, match="too few frauds"):
        out_of_fold_scores(lambda a, b: None, X, np.array([1, 1, 0, 0, 0, 0]), np.array([0, 0, 1, 1, 2, 2]))
