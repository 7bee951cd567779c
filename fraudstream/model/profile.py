"""The reference profile of a model version: what its training rows looked like, for drift and explanations.

Computed by the trainer from the rows the model was fitted on (before SMOTE) and logged inside the model
directory as ``reference_profile.json``, so it travels with the registered version; loaded with the model by
:class:`~fraudstream.model.registry.ModelRegistry`. Field names are a contract (notes/PROFILE_CONTRACT.md).

Bins: the edges come from quantiles of the training rows (ties collapse bins, e.g. the many ``Amount == 0``);
the outer bins are open-ended, so a value below ``edges[0]`` counts in the first bin and one above ``edges[-1]``
in the last. Every count, the training shares included, goes through :func:`bin_index`, so a profile compared
with the rows it was computed on gives a population stability index of exactly 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fraudstream.exceptions import ModelLoadError
from fraudstream.schemas import FEATURES

PROFILE_SPEC_VERSION = 1
PROFILE_FILE = "reference_profile.json"
DEFAULT_BINS = 10
QUANTILE_LEVELS: tuple[float, ...] = (0.0, 0.001, *(round(i / 100, 2) for i in range(1, 100)), 0.999, 1.0)
"""Levels at which each feature's training values are kept: 0, 0.001, 0.01, 0.02, ..., 0.99, 0.999, 1."""
SCORE_EDGES: tuple[float, ...] = tuple(i / DEFAULT_BINS for i in range(DEFAULT_BINS + 1))
"""Fixed bins of the fraud probability: 10 equal widths on [0, 1]."""


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The bin of each value (0 .. len(edges) - 2); the outer bins are open-ended."""
    last = max(len(edges) - 2, 0)
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, last)


def _counts(edges: list[float], values: np.ndarray) -> np.ndarray:
    edges_array = np.asarray(edges, dtype=np.float64)
    return np.bincount(bin_index(edges_array, np.asarray(values, dtype=np.float64)), minlength=len(edges) - 1)


def _shares(edges: list[float], values: np.ndarray) -> list[float]:
    counts = _counts(edges, values)
    total = counts.sum()
    return (counts / total).tolist() if total else [1.0 / len(counts)] * len(counts)


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> list[float]:
    """Up to ``bins + 1`` edges at equal quantiles of ``values``; ties collapse, at least two edges remain."""
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) < 2:  # a constant feature: one bin holding every row
        edges = np.array([edges[0], edges[0]])
    return edges.tolist()


class FeatureProfile(BaseModel):
    """One feature on the training rows: PSI bins, quantiles, mean and standard deviation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    edges: list[float] = Field(description="Bin edges from training quantiles; outer bins are open-ended.")
    shares: list[float] = Field(description="Share of training rows in each bin (len(edges) - 1 values).")
    quantiles: list[float] = Field(description="The feature's training values at QUANTILE_LEVELS.")
    mean: float
    std: float

    @classmethod
    def of(cls, values: np.ndarray, bins: int = DEFAULT_BINS) -> FeatureProfile:
        values = np.asarray(values, dtype=np.float64)
        edges = quantile_edges(values, bins)
        return cls(
            edges=edges,
            shares=_shares(edges, values),
            quantiles=np.quantile(values, QUANTILE_LEVELS).tolist(),
            mean=float(values.mean()),
            std=float(values.std()),
        )


class ScoreProfile(BaseModel):
    """The model's fraud probability on the holdout rows, on fixed bins."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    edges: list[float] = Field(default_factory=lambda: list(SCORE_EDGES))
    shares: list[float]

    @classmethod
    def of(cls, scores: np.ndarray) -> ScoreProfile:
        edges = list(SCORE_EDGES)
        return cls(edges=edges, shares=_shares(edges, scores))


class ReferenceProfile(BaseModel):
    """What a model version learned from: each feature's distribution, the score's, the fraud rate."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    spec_version: int = PROFILE_SPEC_VERSION
    rows: int = Field(ge=1, description="Training rows the profile was computed on.")
    fraud_rate: float = Field(ge=0.0, le=1.0, description="Fraud rate of those rows, before SMOTE.")
    features: dict[str, FeatureProfile]
    score: ScoreProfile

    @classmethod
    def compute(
        cls, features: np.ndarray, labels: np.ndarray, holdout_scores: np.ndarray, bins: int = DEFAULT_BINS
    ) -> ReferenceProfile:
        """From the training rows' raw features (n, 30) in FEATURES order, their labels, and the model's
        scores on the holdout rows."""
        matrix = np.asarray(features, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(FEATURES) or len(matrix) == 0:
            raise ValueError(f"expected a non-empty (n, {len(FEATURES)}) matrix, got shape {matrix.shape}")
        return cls(
            rows=len(matrix),
            fraud_rate=float(np.mean(labels)),
            features={name: FeatureProfile.of(matrix[:, i], bins) for i, name in enumerate(FEATURES)},
            score=ScoreProfile.of(holdout_scores),
        )

    def quantile_of(self, feature: str, values: np.ndarray) -> np.ndarray:
        """Where each value sits among the training rows (0 .. 1), e.g. 0.999: above 99.9% of them."""
        return np.interp(np.asarray(values, dtype=np.float64), self.features[feature].quantiles, QUANTILE_LEVELS)

    def bin_counts(self, feature: str, values: np.ndarray) -> np.ndarray:
        """Counts of ``values`` in the feature's bins (the shares' bins)."""
        return _counts(self.features[feature].edges, values)

    def score_bin_counts(self, scores: np.ndarray) -> np.ndarray:
        """Counts of fraud probabilities in the score's bins."""
        return _counts(self.score.edges, scores)

    def write(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> ReferenceProfile:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read the reference profile {path}: {exc}") from exc
        if int(payload.get("spec_version", 1)) > PROFILE_SPEC_VERSION:
            raise ModelLoadError(f"{path} was written by a newer fraudstream (profile spec {payload['spec_version']})")
        return cls.model_validate(payload)
