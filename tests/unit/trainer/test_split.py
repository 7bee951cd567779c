from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudstream.data.check import load_dataset
from fraudstream.schemas import FEATURES, LABEL_COLUMN
from trainer.split import content_folds, content_keys, split_dataset, stratified_indices


@pytest.fixture
def frame() -> pd.DataFrame:
    """5,000 rows in Time order, 2% frauds, and 300 exact copies of earlier rows (some frauds among them)."""
    rng = np.random.default_rng(0)
    rows = 5000
    data = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=list(FEATURES))
    data["Time"] = np.sort(rng.integers(0, 172_792, rows)).astype(float)
    data["Amount"] = np.round(rng.exponential(80, rows), 2)
    data[LABEL_COLUMN] = (rng.random(rows) < 0.02).astype(int)
    copies = data.iloc[rng.choice(rows, 300, replace=False)]
    frauds = data[data[LABEL_COLUMN] == 1].head(20)  # some duplicated frauds, as in the real file
    return pd.concat([data, copies, frauds, frauds], ignore_index=True)


def _held_contents(frame: pd.DataFrame, rows: np.ndarray) -> set[tuple[float, ...]]:
    return {tuple(row) for row in frame.iloc[rows][list(FEATURES)].to_numpy()}


def test_duplicates_never_straddle_the_holdout(frame: pd.DataFrame) -> None:
    assert frame.duplicated(subset=list(FEATURES)).sum() >= 300
    splits = split_dataset(frame, kind="content", share=0.2)
    train, test = _held_contents(frame, splits.train.rows), _held_contents(frame, splits.test.rows)
    assert not train & test
    duplicated = frame[frame.duplicated(subset=list(FEATURES), keep=False)]
    assert len(duplicated) > 0
    held = set(splits.test.rows)
    for _, group in duplicated.groupby(list(FEATURES)).groups.items():
        sides = {index in held for index in group}
        assert len(sides) == 1  # every copy of a row is on one side


def test_the_holdout_does_not_depend_on_the_seed(frame: pd.DataFrame) -> None:
    first = split_dataset(frame, kind="content", share=0.2, seed=1)
    second = split_dataset(frame, kind="content", share=0.2, seed=2)
    np.testing.assert_array_equal(first.test.rows, second.test.rows)
    assert 0.17 < len(first.test) / len(frame) < 0.23
    assert first.test.frauds > 0


def test_a_reordered_copy_holds_out_the_same_rows(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1.0, random_state=5).reset_index(drop=True)
    original = split_dataset(frame, kind="content", share=0.2)
    reordered = split_dataset(shuffled, kind="content", share=0.2)
    assert len(original.test) == len(reordered.test)
    assert _held_contents(frame, original.test.rows) == _held_contents(shuffled, reordered.test.rows)
    assert original.test.frauds == reordered.test.frauds


def test_keys_follow_values_not_their_spelling(tmp_path: Path, frame: pd.DataFrame) -> None:
    """The same rows written with another float format (and a quoted header) hold out the same rows."""
    head = frame.head(400).copy()
    head.loc[0, "V1"] = -0.0
    plain = tmp_path / "plain.csv"
    head.to_csv(plain, index=False, float_format="%.17g")
    spelled = tmp_path / "spelled.csv"
    other = head.copy()
    other.loc[0, "V1"] = 0.0
    other.to_csv(spelled, index=False, float_format="%.20e", quoting=2)
    a, _ = load_dataset(plain)
    b, _ = load_dataset(spelled)
    np.testing.assert_array_equal(
        content_keys(a[list(FEATURES)].to_numpy()), content_keys(b[list(FEATURES)].to_numpy())
    )


def test_a_larger_share_holds_out_a_superset(frame: pd.DataFrame) -> None:
    small = set(split_dataset(frame, kind="content", share=0.1).test.rows)
    large = set(split_dataset(frame, kind="content", share=0.3).test.rows)
    assert small < large


def test_folds_keep_duplicates_together_and_are_balanced(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="content", share=0.2)
    folds = content_folds(splits.train.keys, 3)
    assert set(folds) == {0, 1, 2}
    assert np.bincount(folds).min() > 0.28 * len(folds)
    by_content: dict[tuple[float, ...], set[int]] = {}
    for row, fold in zip(splits.train.X.to_numpy(), folds, strict=True):
        by_content.setdefault(tuple(row), set()).add(int(fold))
    assert all(len(seen) == 1 for seen in by_content.values())


def test_sides_are_disjoint_and_cover_every_row(frame: pd.DataFrame) -> None:
    for kind in ("content", "time", "stratified"):
        splits = split_dataset(frame, kind=kind, share=0.2, seed=1)
        assert not set(splits.train.rows) & set(splits.test.rows)
        assert len(splits.train) + len(splits.test) == len(frame)


def test_time_split_trains_on_earlier_transactions(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="time", share=0.2)
    assert frame["Time"].iloc[splits.train.rows].max() <= frame["Time"].iloc[splits.test.rows].min()
    assert len(splits.test) == round(len(frame) * 0.2)


def test_the_old_stratified_split_is_the_plain_sklearn_split(frame: pd.DataFrame) -> None:
    from sklearn.model_selection import train_test_split

    splits = split_dataset(frame, kind="stratified", share=0.2, seed=7)
    _, plain_test = train_test_split(frame, test_size=0.2, stratify=frame[LABEL_COLUMN], random_state=7)
    assert set(splits.test.rows) == set(plain_test.index)
    np.testing.assert_array_equal(stratified_indices(frame[LABEL_COLUMN].to_numpy(), 0.2, 7)[1], splits.test.rows)


def test_parts_keep_features_in_model_order_and_labels(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="content", share=0.2)
    assert tuple(splits.train.X.columns) == FEATURES
    np.testing.assert_array_equal(splits.test.y, frame[LABEL_COLUMN].to_numpy()[splits.test.rows])
    np.testing.assert_array_equal(splits.keys[splits.test.rows], splits.test.keys)
