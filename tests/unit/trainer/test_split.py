from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudstream.schemas import FEATURES, LABEL_COLUMN
from trainer.split import split_dataset, stratified_indices


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = 5000
    data = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=list(FEATURES))
    data["Time"] = np.sort(rng.integers(0, 172_792, rows)).astype(float)
    data[LABEL_COLUMN] = (rng.random(rows) < 0.02).astype(int)
    return data


def test_stratified_test_split_is_the_plain_sklearn_split(frame: pd.DataFrame) -> None:
    from sklearn.model_selection import train_test_split

    splits = split_dataset(frame, kind="stratified", test_size=0.2, val_size=0.25, seed=7)
    _, plain_test = train_test_split(frame, test_size=0.2, stratify=frame[LABEL_COLUMN], random_state=7)
    assert len(splits.test) == len(plain_test)
    assert splits.test.frauds == int(plain_test[LABEL_COLUMN].sum())
    assert set(splits.test.rows) == set(plain_test.index)


def test_parts_are_disjoint_and_cover_every_row(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="stratified", test_size=0.2, val_size=0.25, seed=1)
    parts = [set(splits.fit.rows), set(splits.validation.rows), set(splits.test.rows)]
    assert sum(map(len, parts)) == len(frame)
    assert set.union(*parts) == set(range(len(frame)))
    assert not (parts[0] & parts[1])
    assert not (parts[0] & parts[2])
    assert not (parts[1] & parts[2])


def test_validation_is_carved_from_training_rows_only(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="stratified", test_size=0.2, val_size=0.25, seed=3)
    train_rows, test_rows = stratified_indices(frame[LABEL_COLUMN].to_numpy(), 0.2, 3)
    assert set(splits.validation.rows) | set(splits.fit.rows) == set(train_rows)
    assert not set(splits.validation.rows) & set(test_rows)


def test_time_split_trains_on_earlier_transactions(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="time", test_size=0.2, val_size=0.25, seed=0)
    assert frame["Time"].iloc[splits.fit.rows].max() <= frame["Time"].iloc[splits.validation.rows].min()
    assert frame["Time"].iloc[splits.validation.rows].max() <= frame["Time"].iloc[splits.test.rows].min()
    assert len(splits.test) == 1000


def test_parts_keep_features_in_model_order_and_labels(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="stratified", test_size=0.2, val_size=0.25, seed=0)
    assert tuple(splits.fit.X.columns) == FEATURES
    np.testing.assert_array_equal(splits.test.y, frame[LABEL_COLUMN].to_numpy()[splits.test.rows])
