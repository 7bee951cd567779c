"""Training options: what `fraudstream train` accepts, validated before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    """One training run. Defaults were chosen on validation F1 and wall time on the full ULB file (README)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: Path | None = Field(None, description="CSV to train on; None: data/creditcard.csv, else synthetic.")
    min_f1: float | None = Field(None, ge=0.0, le=1.0, description="Gate; None: the FRAUD_MIN_F1 setting.")
    split: Literal["stratified", "time"] = "stratified"
    test_size: float = Field(0.2, gt=0.0, lt=0.5)
    val_size: float = Field(0.2, gt=0.0, lt=0.5, description="Share of the training rows kept for the threshold.")
    seed: int = 42
    n_estimators: int = Field(100, ge=1, le=2000)
    max_depth: int | None = Field(12, ge=1)
    min_samples_leaf: int = Field(1, ge=1)
    max_features: Literal["sqrt", "log2"] | float = "sqrt"
    smote_ratio: float = Field(0.05, gt=0.0, le=1.0, description="SMOTE sampling_strategy: frauds per normal row.")
    smote_k_neighbors: int = Field(5, ge=1)
    n_jobs: int = Field(-1, description="Cores for fitting (-1: all).")
    bootstrap_rounds: int = Field(1000, ge=100, description="Resamples for the F1 confidence interval.")
    synthetic_rows: int = Field(100_000, ge=1000, description="Size of the synthetic set when no CSV is present.")
