"""Training options: what `fraudstream train` accepts, validated before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudstream.model.features import TimeEncoding

SplitKind = Literal["content", "time"]


class TrainConfig(BaseModel):
    """One training run. The model's defaults were chosen by benchmarks/train_grid.py on out-of-fold scores of
    training rows only, never on the holdout (README, "Honest results")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: Path | None = Field(None, description="CSV to train on; None: data/creditcard.csv, else synthetic.")
    min_f1: float | None = Field(None, ge=0.0, le=1.0, description="Gate; None: the FRAUD_MIN_F1 setting.")
    split: SplitKind = Field(
        "content", description="content: holdout by a hash of each row's features; time: the latest rows."
    )
    test_size: float = Field(0.2, gt=0.0, lt=0.5, description="Share of rows held out for the final test.")
    folds: int = Field(3, ge=2, le=10, description="Folds of the out-of-fold scores the threshold is chosen on.")
    seed: int = Field(42, description="Seed of SMOTE and the forest (the holdout does not depend on it).")
    n_estimators: int = Field(100, ge=1, le=2000)
    max_depth: int | None = Field(12, ge=1)
    min_samples_leaf: int = Field(1, ge=1)
    max_features: Literal["sqrt", "log2"] | float = "sqrt"
    class_weight: Literal["balanced", "balanced_subsample"] | None = None
    max_samples: float | None = Field(
        0.5, gt=0.0, le=1.0, description="Share of the (resampled) training rows each tree draws; None: as many."
    )
    smote_ratio: float = Field(0.05, gt=0.0, le=1.0, description="SMOTE sampling_strategy: frauds per normal row.")
    smote_k_neighbors: int = Field(5, ge=1)
    time_encoding: TimeEncoding = Field(
        "time_of_day", description="How the forest reads Time (fraudstream/model/features.py)."
    )
    feedback: bool = Field(
        False,
        description="Relabel rows with analysts' verdicts (the fraud-feedback topic) before the holdout is chosen.",
    )
    n_jobs: int = Field(-1, description="Cores for fitting (-1: all).")
    bootstrap_rounds: int = Field(1000, ge=100, description="Resamples for the F1 interval and the comparisons.")
    as_challenger: bool = Field(
        False,
        description="Past the gate, register under the challenger alias (scored in production's shadow) instead "
        "of promoting or keeping it aside by the offline comparison.",
    )
    synthetic_rows: int = Field(100_000, ge=1000, description="Size of the synthetic set when no CSV is present.")
