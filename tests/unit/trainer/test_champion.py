"""Which holdout rows the serving version never trained on, and the paired bootstrap on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudstream.schemas import FEATURES, LABEL_COLUMN
from trainer.champion import HoldoutRecord, paired_bootstrap, unseen_rows
from trainer.split import CONTENT_SCHEME, split_dataset, stratified_indices, time_indices

SHA = "a" * 64


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = 4000
    data = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=list(FEATURES))
    data["Time"] = np.sort(rng.integers(0, 172_792, rows)).astype(float)
    data[LABEL_COLUMN] = (rng.random(rows) < 0.03).astype(int)
    return pd.concat([data, data.iloc[:200]], ignore_index=True)  # 200 duplicated rows


def _contents(frame: pd.DataFrame, rows: np.ndarray) -> set[tuple[float, ...]]:
    return {tuple(row) for row in frame.iloc[rows][list(FEATURES)].to_numpy()}


def test_a_content_holdout_at_the_same_share_is_shared_whole(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="content", share=0.2)
    production = HoldoutRecord("content", 0.2, "other-file", CONTENT_SCHEME)
    mask = unseen_rows(production, frame, splits, SHA)
    assert isinstance(mask, np.ndarray)
    assert mask.all()  # whatever file production trained on, it held these contents out


def test_a_smaller_content_share_keeps_only_rows_below_it(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="content", share=0.3)
    mask = unseen_rows(HoldoutRecord("content", 0.1, SHA, CONTENT_SCHEME), frame, splits, SHA)
    assert isinstance(mask, np.ndarray)
    assert _contents(frame, splits.test.rows[mask]) == _contents(
        frame, split_dataset(frame, kind="content", share=0.1).test.rows
    )


def test_an_old_stratified_version_is_judged_only_on_rows_it_never_trained_on(frame: pd.DataFrame) -> None:
    """The unfair case of issue 10: production trained by the old seeded split, this run holds out by content."""
    splits = split_dataset(frame, kind="content", share=0.2)
    legacy = HoldoutRecord.from_run({"split": "stratified", "test_size": "0.2", "seed": "42"}, {"data.sha256": SHA})
    assert legacy == HoldoutRecord("stratified", 0.2, SHA, None, 42)
    mask = unseen_rows(legacy, frame, splits, SHA)
    assert isinstance(mask, np.ndarray)
    trained, _ = stratified_indices(frame[LABEL_COLUMN].to_numpy(), 0.2, 42)
    assert not _contents(frame, splits.test.rows[mask]) & _contents(frame, trained)
    left_out = splits.test.rows[~mask]
    assert _contents(frame, left_out) <= _contents(frame, trained)
    assert 0.6 < (~mask).mean() < 0.95  # most of the new holdout was production's training rows


def test_a_time_split_version_of_the_same_file_is_rebuilt(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, kind="content", share=0.2)
    mask = unseen_rows(HoldoutRecord("time", 0.2, SHA), frame, splits, SHA)
    assert isinstance(mask, np.ndarray)
    trained, _ = time_indices(frame["Time"].to_numpy(), 0.2)
    assert not _contents(frame, splits.test.rows[mask]) & _contents(frame, trained)
    assert 0 < mask.sum() < len(mask)


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (None, "does not record"),
        (HoldoutRecord("time", 0.2, "b" * 64), "another file"),
        (HoldoutRecord("stratified", 0.2, "b" * 64, None, 42), "another file"),
        (HoldoutRecord("content", 0.2, SHA, "md5-v0"), "another content scheme"),
    ],
)
def test_unknown_exposure_is_refused_with_a_reason(frame: pd.DataFrame, record: HoldoutRecord | None, why: str) -> None:
    splits = split_dataset(frame, kind="content", share=0.2)
    reason = unseen_rows(record, frame, splits, SHA)
    assert isinstance(reason, str)
    assert why in reason


def test_a_run_records_what_a_later_run_needs() -> None:
    record = HoldoutRecord("content", 0.2, SHA, CONTENT_SCHEME)
    assert HoldoutRecord.from_run({**record.params(), "seed": "7"}, {"data.sha256": SHA}) == HoldoutRecord(
        "content", 0.2, SHA, CONTENT_SCHEME, 7
    )
    assert HoldoutRecord.from_run({}, {}) is None


def test_paired_bootstrap_on_the_same_rows() -> None:
    labels = np.array([1] * 40 + [0] * 2000)
    better = np.r_[np.ones(36), np.zeros(4), np.ones(2), np.zeros(1998)].astype(bool)  # tp 36 fp 2 fn 4
    worse = np.r_[np.ones(30), np.zeros(10), np.ones(8), np.zeros(1992)].astype(bool)  # tp 30 fp 8 fn 10
    result = paired_bootstrap(labels, better, worse, rounds=2000, seed=0)
    assert result.challenger_f1 == pytest.approx(72 / 78)
    assert result.production_f1 == pytest.approx(60 / 78)
    assert result.difference == pytest.approx(12 / 78)
    assert result.difference_ci_low < result.difference < result.difference_ci_high
    assert result.difference_ci_low > 0
    assert result.p_at_least_as_good > 0.99
    assert (result.rows, result.frauds) == (2040, 40)
    same = paired_bootstrap(labels, better, better, rounds=500, seed=0)
    assert same.difference == 0
    assert same.p_at_least_as_good == 1.0  # identical flags: never worse on any resample
    reverse = paired_bootstrap(labels, worse, better, rounds=2000, seed=0)
    assert reverse.p_at_least_as_good < 0.01
