"""A reference profile's bins as arrays, so one batch is binned for all 30 features at once (no Python per row
or per feature).

Each feature has its own quantile edges (ties collapse bins, so features have different bin counts). The inner
edges of every feature are laid side by side in one (30, B - 1) array, padded with +inf; a value's bin is how
many inner edges it reaches, which for open-ended outer bins is exactly
:func:`fraudstream.model.profile.bin_index` (``searchsorted(edges, x, "right") - 1`` clipped to the bins). B - 1
comparisons of the whole (n, 30) batch against a column of that array and one ``bincount`` give every feature's
counts (about 2 ms of CPU for 5,000 rows, 0.4 us a row); padded bins stay empty on both sides and add nothing to
the PSI.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fraudstream.model.profile import ReferenceProfile
from fraudstream.schemas import FEATURES


@dataclass(frozen=True)
class Bins:
    """Bins of k columns: ``inner`` (k, B - 1) inner edges padded with +inf, ``shares`` (k, B) the reference's
    share of each bin (0 in padded bins), ``sizes`` (k,) the real number of bins of each column."""

    inner: np.ndarray
    shares: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, edges: list[list[float]], shares: list[list[float]]) -> Bins:
        width = max(len(column) for column in shares)
        inner = np.full((len(edges), max(width - 1, 0)), np.inf)
        padded = np.zeros((len(edges), width))
        for i, (column_edges, column_shares) in enumerate(zip(edges, shares, strict=True)):
            inner[i, : len(column_edges) - 2] = column_edges[1:-1]
            padded[i, : len(column_shares)] = column_shares
        return cls(inner, padded, np.array([len(column) for column in shares]))

    @property
    def width(self) -> int:
        return int(self.shares.shape[1])

    @cached_property
    def inner32(self) -> np.ndarray:
        """The edges in float32, for the scorer's float32 matrix: a value equal to an edge in the data (a training
        value replayed) still reaches it, as it does in the profile's float64 bins."""
        return self.inner.astype(np.float32)

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.arange(self.shares.shape[0], dtype=np.intp) * self.width

    def counts(self, values: np.ndarray) -> np.ndarray:
        """(k, B) counts of an (n, k) matrix's rows in each column's bins."""
        matrix = np.asarray(values)
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        edges = self.inner32 if matrix.dtype == np.float32 else self.inner
        index = np.zeros(matrix.shape, dtype=np.uint8 if self.width < 256 else np.intp)  # the bin of each value
        for edge in edges.T:  # at most B - 1 passes, each over the whole (n, k) matrix
            index += matrix >= edge
        flat = index + self.offsets
        return np.bincount(flat.ravel(), minlength=self.shares.size).reshape(self.shares.shape)

    def trim(self, counts: np.ndarray) -> list[list[int]]:
        """Counts without the padding, one list per column."""
        return [row[:size].tolist() for row, size in zip(counts, self.sizes.tolist(), strict=True)]


@dataclass(frozen=True)
class ProfileBins:
    """A version's feature bins (30 columns, FEATURES order) and score bins."""

    features: Bins
    score: Bins

    @classmethod
    def of(cls, profile: ReferenceProfile) -> ProfileBins:
        columns = [profile.features[name] for name in FEATURES]
        return cls(
            features=Bins.of([c.edges for c in columns], [c.shares for c in columns]),
            score=Bins.of([profile.score.edges], [profile.score.shares]),
        )
