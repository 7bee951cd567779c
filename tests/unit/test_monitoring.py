"""The monitoring contract: PSI, the live metrics of a confusion count and the status rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fraudstream.monitoring import PSI_FLOOR, Confusion, Thresholds, psi, status_of


def test_psi_of_the_reference_itself_is_zero_and_grows_with_the_shift() -> None:
    shares = np.full(10, 0.1)
    assert psi(shares, np.full(10, 7))[()] == pytest.approx(0.0)
    slight = psi(shares, np.array([12, 8] + [10] * 8))
    strong = psi(shares, np.array([50, 50] + [0] * 8))
    assert 0.0 < slight < 0.1 < 0.25 < strong


def test_psi_matches_its_formula_with_empty_bins_floored() -> None:
    expected = np.array([0.5, 0.5])
    value = psi(expected, np.array([4, 0]))
    assert value == pytest.approx((1 - 0.5) * math.log(1 / 0.5) + (PSI_FLOOR - 0.5) * math.log(PSI_FLOOR / 0.5))


def test_psi_is_vectorised_over_features_and_zero_for_an_empty_window() -> None:
    expected = np.array([[0.5, 0.5], [0.25, 0.75]])
    values = psi(expected, np.array([[5, 5], [0, 0]]))
    assert values.shape == (2,)
    assert values[0] == pytest.approx(0.0)
    assert values[1] == 0.0


def test_confusion_metrics_are_none_where_undefined() -> None:
    counts = Confusion(tp=8, fp=2, fn=2, tn=88)
    assert (counts.precision, counts.recall, counts.f1) == (0.8, 0.8, pytest.approx(0.8))
    assert counts.labelled == 100
    nothing = Confusion(tn=50)
    assert (nothing.precision, nothing.recall, nothing.f1) == (None, None, None)
    assert (counts + nothing).tn == 138


def test_status_rule_ok_drift_degraded() -> None:
    rules = Thresholds(min_f1=0.8)
    calm = {"V1": 0.02, "Amount": 0.05}
    assert status_of(calm, 0.01, Confusion(tp=9, fn=1), rules) == ("ok", [])
    status, reasons = status_of({**calm, "Amount": 0.4}, 0.01, None, rules)
    assert status == "drift"
    assert reasons == ["Amount PSI 0.400 > 0.25"]
    status, reasons = status_of({**calm, "Amount": 0.4}, 0.3, Confusion(tp=1, fp=3, fn=3), rules)
    assert status == "degraded"
    assert reasons[0].startswith("live F1 0.250 < 0.8")
    assert "score PSI 0.300 > 0.25" in reasons
