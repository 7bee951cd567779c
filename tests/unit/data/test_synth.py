"""The synthetic generator: the real schema and imbalance, deterministic by seed, and a dial for separability."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fraudstream.data.check import load_dataset, validate_csv
from fraudstream.data.synth import TWO_DAYS_S, V_STDS, fraud_count, generate, write_synthetic
from fraudstream.exceptions import FraudstreamError
from fraudstream.schemas import CSV_COLUMNS, FEATURES, LABEL_COLUMN


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate(20_000, seed=3)


def test_the_columns_are_the_real_schema(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == CSV_COLUMNS
    assert frame["Time"].dtype == np.int64
    assert frame[LABEL_COLUMN].dtype == np.int64
    assert all(frame[f"V{i}"].dtype == np.float64 for i in range(1, 29))
    assert np.isfinite(frame[list(FEATURES)].to_numpy()).all()


@pytest.mark.parametrize(
    ("rows", "rate", "frauds"),
    [(20_000, 0.0017, 34), (50_000, 0.0017, 85), (10_000, 0.01, 100), (100, 0.0017, 1), (2, 0.0017, 1), (1, 0.5, 0)],
)
def test_the_fraud_count_is_exact(rows: int, rate: float, frauds: int) -> None:
    assert fraud_count(rows, rate) == frauds
    assert int(generate(rows, seed=1, fraud_rate=rate)[LABEL_COLUMN].sum()) == frauds


def test_no_fraud_at_rate_zero() -> None:
    assert generate(500, fraud_rate=0.0)[LABEL_COLUMN].sum() == 0


def test_time_spans_two_days_sorted_and_busier_by_day(frame: pd.DataFrame) -> None:
    time = frame["Time"]
    assert time.is_monotonic_increasing
    assert time.min() >= 0
    assert time.max() <= TWO_DAYS_S
    assert time.max() > TWO_DAYS_S - 3600
    hour = (time // 3600) % 24
    assert (hour == 14).sum() > 3 * (hour == 4).sum()


def test_components_are_centred_with_the_real_spreads(frame: pd.DataFrame) -> None:
    legit = frame[frame[LABEL_COLUMN] == 0]
    spreads = np.array([legit[f"V{i}"].std() for i in range(1, 29)])
    assert np.allclose(spreads, V_STDS, rtol=0.1)
    assert np.abs(legit[[f"V{i}" for i in range(1, 29)]].mean()).max() < 0.1


def test_amounts_are_cents_heavy_tailed_with_some_zeros(frame: pd.DataFrame) -> None:
    amount = frame["Amount"]
    assert amount.min() == 0.0
    assert (amount == 0).sum() > 20
    assert np.allclose(amount, amount.round(2))
    assert 15 < amount.median() < 30
    assert amount.mean() > 2.5 * amount.median()  # heavy right tail
    assert 1000 < amount.max() <= 5000


def test_the_same_seed_gives_the_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = write_synthetic(tmp_path / "a_synthetic.csv", 3000, seed=7).read_bytes()
    again = write_synthetic(tmp_path / "b_synthetic.csv", 3000, seed=7).read_bytes()
    other = write_synthetic(tmp_path / "c_synthetic.csv", 3000, seed=8).read_bytes()
    assert first == again
    assert first != other


def test_the_file_passes_the_checker_and_reads_back(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "creditcard_synthetic.csv", 5000, seed=2, fraud_rate=0.01)
    summary = validate_csv(path)
    assert (summary.rows, summary.frauds) == (5000, 50)
    back, _ = load_dataset(path)
    expected = generate(5000, seed=2, fraud_rate=0.01).astype({"Time": "float64"})
    pd.testing.assert_frame_equal(back, expected, check_exact=True)  # the frame is exactly what the file holds


def test_the_file_is_written_like_the_real_one(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "creditcard_synthetic.csv", 2000, seed=4)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    for line in lines[1:]:
        fields = line.split(",")
        assert re.fullmatch(r"\d+", fields[0])  # Time: integer seconds
        assert re.fullmatch(r"\d+(\.\d{1,2})?", fields[29])  # Amount: at most 2 decimals
        assert fields[30] in ("0", "1")
        assert all(len(re.sub(r"[^0-9]", "", v.split("e")[0]).lstrip("0")) <= 15 for v in fields[1:29])


def test_a_file_name_without_synthetic_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FraudstreamError, match="must contain 'synthetic'"):
        write_synthetic(tmp_path / "creditcard.csv", 100)
    assert not (tmp_path / "creditcard.csv").exists()


@pytest.mark.parametrize(
    ("rows", "rate", "separation", "problem"),
    [(0, 0.01, 1.0, "at least 1 row"), (10, 1.0, 1.0, "fraud rate"), (10, 0.1, -1.0, "separation")],
)
def test_bad_arguments_are_refused(rows: int, rate: float, separation: float, problem: str) -> None:
    with pytest.raises(FraudstreamError, match=problem):
        generate(rows, fraud_rate=rate, separation=separation)


def _auc(separation: float) -> float:
    data = generate(20_000, seed=5, fraud_rate=0.01, separation=separation)
    x, y = data[list(FEATURES)].to_numpy(), data[LABEL_COLUMN].to_numpy()
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=0.5, stratify=y, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(x_fit, y_fit)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


def test_separation_makes_frauds_learnable_or_not() -> None:
    assert _auc(1.0) > 0.9
    assert 0.4 < _auc(0.0) < 0.6


def test_separation_zero_draws_frauds_like_legitimate_rows() -> None:
    data = generate(20_000, seed=6, fraud_rate=0.05, separation=0.0)
    frauds, legit = data[data[LABEL_COLUMN] == 1], data[data[LABEL_COLUMN] == 0]
    for column in ("V14", "V12", "V10", "V17", "V4", "V11", "V3"):
        assert abs(frauds[column].mean() - legit[column].mean()) < 0.2 * legit[column].std()
