"""Train / validation / test split. SMOTE never sees the validation or test rows: they keep the natural rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fraudstream.schemas import FEATURES, LABEL_COLUMN


@dataclass(frozen=True)
class Part:
    """Rows of one split: features in FEATURES order, labels, and their 0-based row numbers in the file."""

    X: pd.DataFrame
    y: np.ndarray
    rows: np.ndarray

    @property
    def frauds(self) -> int:
        return int(self.y.sum())

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    fit: Part
    validation: Part
    test: Part


def _part(frame: pd.DataFrame, index: np.ndarray) -> Part:
    chosen = frame.iloc[index]
    return Part(X=chosen[list(FEATURES)], y=chosen[LABEL_COLUMN].to_numpy(dtype=np.int64), rows=index)


def stratified_indices(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of a plain seeded stratified split, exactly as sklearn's train_test_split makes it."""
    positions = np.arange(len(labels))
    train, test = train_test_split(positions, test_size=test_size, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(test)


def time_indices(times: np.ndarray, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Earlier rows (by Time, ties by file order) train; the latest ``test_size`` share tests."""
    order = np.argsort(times, kind="stable")
    cut = len(order) - round(len(order) * test_size)
    return np.sort(order[:cut]), np.sort(order[cut:])


def split_dataset(frame: pd.DataFrame, *, kind: str, test_size: float, val_size: float, seed: int) -> Splits:
    """Test rows first (untouched), then validation rows carved from the training rows only."""
    labels = frame[LABEL_COLUMN].to_numpy()
    if kind == "time":
        train, test = time_indices(frame["Time"].to_numpy(), test_size)
        fit_local, val_local = time_indices(frame["Time"].to_numpy()[train], val_size)
    else:
        train, test = stratified_indices(labels, test_size, seed)
        fit_local, val_local = stratified_indices(labels[train], val_size, seed)
    return Splits(
        fit=_part(frame, train[fit_local]), validation=_part(frame, train[val_local]), test=_part(frame, test)
    )
