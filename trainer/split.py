"""Which rows train and which rows are held out for the final test.

The default holdout is chosen by **content**: each row's 30 feature values are hashed, and a row is held out
when its hash falls below the holdout share. So exact duplicates always land on the same side (the real file
holds 1,081 extra copies of rows: 1,854 rows in duplicate groups, 32 of them frauds), every run on any file
agrees on which rows are held out (the seed drives only the model's randomness), and the order of the file
does not matter.
The holdout keeps the natural fraud rate. The other half of each hash assigns the out-of-fold folds, so
duplicates share a fold too.

A time split (earlier ``Time`` trains, the latest share tests) is kept for replays: the demo streams the later
rows. The seeded stratified split is the old protocol, kept only to measure it and to tell which rows a
version trained that way has seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fraudstream.schemas import FEATURES, LABEL_COLUMN

CONTENT_SCHEME = "blake2b-float64-v1"
"""How content keys are made; a run records it, and a different scheme means different holdouts."""
_PERSON = b"fraudstream-ho1"
_SCALE = float(2**64)


@dataclass(frozen=True)
class Part:
    """Rows of one side: features in FEATURES order, labels, 0-based row numbers in the file, content keys."""

    X: pd.DataFrame
    y: np.ndarray
    rows: np.ndarray
    keys: np.ndarray
    """(n, 2) uint64: the holdout key and the fold key of each row."""

    @property
    def frauds(self) -> int:
        return int(self.y.sum())

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    train: Part
    test: Part
    kind: str
    share: float
    keys: np.ndarray
    """Content keys of every row of the file, by row number."""

    def sizes(self) -> dict[str, tuple[int, int]]:
        return {"train": (len(self.train), self.train.frauds), "test": (len(self.test), self.test.frauds)}


def content_keys(features: np.ndarray) -> np.ndarray:
    """(n, 2) uint64 keys of each row's 30 values as float64 (so "0", "0.0" and "-0.0" agree): a holdout key
    and an independent fold key, both from one BLAKE2b digest of the row."""
    matrix = np.ascontiguousarray(features, dtype="<f8") + 0.0  # + 0.0 turns -0.0 into 0.0
    raw = matrix.view(np.uint8).reshape(len(matrix), -1)
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=16, person=_PERSON).digest() for row in raw)
    return np.frombuffer(digests, dtype="<u8").reshape(len(matrix), 2).copy()


def holdout_mask(keys: np.ndarray, share: float) -> np.ndarray:
    """True for rows held out at ``share``: a row held out at a share is held out at every larger share."""
    return keys[:, 0] / _SCALE < share


def content_folds(keys: np.ndarray, folds: int) -> np.ndarray:
    """Fold number (0 .. folds - 1) of each row, from the fold half of its key."""
    return (keys[:, 1] % np.uint64(folds)).astype(np.int64)


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


def indices(frame: pd.DataFrame, keys: np.ndarray, *, kind: str, share: float, seed: int = 0) -> np.ndarray:
    """The held-out row numbers of ``frame`` under a split ``kind`` at ``share``."""
    if kind == "content":
        return np.flatnonzero(holdout_mask(keys, share))
    if kind == "time":
        return time_indices(frame["Time"].to_numpy(), share)[1]
    if kind == "stratified":
        return stratified_indices(frame[LABEL_COLUMN].to_numpy(), share, seed)[1]
    raise ValueError(f"unknown split kind {kind!r}")


def part(frame: pd.DataFrame, keys: np.ndarray, rows: np.ndarray) -> Part:
    chosen = frame.iloc[rows]
    return Part(X=chosen[list(FEATURES)], y=chosen[LABEL_COLUMN].to_numpy(dtype=np.int64), rows=rows, keys=keys[rows])


def split_dataset(frame: pd.DataFrame, *, kind: str, share: float, seed: int = 0) -> Splits:
    """Training rows and the untouched holdout, by content (default), by time, or the old stratified split."""
    keys = content_keys(frame[list(FEATURES)].to_numpy())
    held = np.zeros(len(frame), dtype=bool)
    held[indices(frame, keys, kind=kind, share=share, seed=seed)] = True
    return Splits(
        train=part(frame, keys, np.flatnonzero(~held)),
        test=part(frame, keys, np.flatnonzero(held)),
        kind=kind,
        share=share,
        keys=keys,
    )
