from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fraudstream.exceptions import ModelLoadError
from fraudstream.model.profile import QUANTILE_LEVELS, ReferenceProfile
from fraudstream.schemas import FEATURES


@pytest.fixture
def training() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    rows = 20_000
    matrix = rng.normal(size=(rows, len(FEATURES)))
    matrix[:, 0] = rng.uniform(0, 172_792, rows)  # Time
    matrix[:, -1] = np.where(rng.random(rows) < 0.3, 0.0, np.round(rng.exponential(80, rows), 2))  # Amount
    labels = (rng.random(rows) < 0.01).astype(int)
    return matrix, labels


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected, actual = np.clip(expected, 1e-6, None), np.clip(actual, 1e-6, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def test_profile_shape_follows_the_contract(training: tuple[np.ndarray, np.ndarray]) -> None:
    matrix, labels = training
    scores = np.random.default_rng(1).beta(0.3, 8, 5000)
    profile = ReferenceProfile.compute(matrix, labels, scores)
    assert profile.spec_version == 1
    assert profile.rows == len(matrix)
    assert profile.fraud_rate == pytest.approx(labels.mean())
    assert list(profile.features) == list(FEATURES)
    for feature in profile.features.values():
        assert len(feature.edges) <= 11
        assert len(feature.shares) == len(feature.edges) - 1
        assert sum(feature.shares) == pytest.approx(1.0)
        assert len(feature.quantiles) == len(QUANTILE_LEVELS)
    assert QUANTILE_LEVELS[:3] == (0.0, 0.001, 0.01)
    assert QUANTILE_LEVELS[-2:] == (0.999, 1.0)
    assert len(profile.score.edges) == 11
    assert sum(profile.score.shares) == pytest.approx(1.0)
    np.testing.assert_allclose(profile.score_bin_counts(scores) / len(scores), profile.score.shares)


def test_ties_collapse_bins_and_outer_bins_are_open(training: tuple[np.ndarray, np.ndarray]) -> None:
    matrix, labels = training
    profile = ReferenceProfile.compute(matrix, labels, np.zeros(10))
    amount = profile.features["Amount"]
    assert len(amount.edges) < 11  # 30% zeros: several quantiles are 0
    assert len(set(amount.edges)) == len(amount.edges)
    counts = profile.bin_counts("Amount", np.array([-5.0, 0.0, 1e9]))
    assert counts[0] == 2
    assert counts[-1] == 1
    assert counts.sum() == 3


def test_the_training_rows_have_zero_drift_and_a_shift_shows(training: tuple[np.ndarray, np.ndarray]) -> None:
    matrix, labels = training
    profile = ReferenceProfile.compute(matrix, labels, np.zeros(10))
    for i, name in enumerate(FEATURES):
        counts = profile.bin_counts(name, matrix[:, i])
        assert _psi(np.array(profile.features[name].shares), counts / counts.sum()) == pytest.approx(0.0, abs=1e-12)
    shifted = profile.bin_counts("V3", matrix[:, 3] + 1.0)
    assert _psi(np.array(profile.features["V3"].shares), shifted / shifted.sum()) > 0.25


def test_quantile_of_says_where_a_value_sits(training: tuple[np.ndarray, np.ndarray]) -> None:
    matrix, labels = training
    profile = ReferenceProfile.compute(matrix, labels, np.zeros(10))
    v1 = matrix[:, 1]
    levels = profile.quantile_of("V1", np.array([v1.min() - 1, np.median(v1), np.quantile(v1, 0.999), v1.max() + 1]))
    np.testing.assert_allclose(levels, [0.0, 0.5, 0.999, 1.0], atol=0.002)


def test_a_constant_feature_keeps_one_bin() -> None:
    matrix = np.zeros((100, len(FEATURES)))
    profile = ReferenceProfile.compute(matrix, np.zeros(100), np.zeros(100))
    assert profile.features["Time"].edges == [0.0, 0.0]
    assert profile.features["Time"].shares == [1.0]
    assert profile.bin_counts("Time", np.array([-1.0, 0.0, 3.0])).tolist() == [3]


def test_json_round_trip_and_refusals(training: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    matrix, labels = training
    profile = ReferenceProfile.compute(matrix, labels, np.linspace(0, 1, 50))
    path = profile.write(tmp_path / "reference_profile.json")
    assert ReferenceProfile.read(path) == profile
    path.write_text('{"spec_version": 99}')
    with pytest.raises(ModelLoadError, match="newer fraudstream"):
        ReferenceProfile.read(path)
    with pytest.raises(ModelLoadError, match="cannot read"):
        ReferenceProfile.read(tmp_path / "absent.json")
    with pytest.raises(ValueError, match="expected a non-empty"):
        ReferenceProfile.compute(matrix[:, :5], labels, np.zeros(3))
