"""A fair comparison with the serving version: both models scored on holdout rows neither trained on.

Each run records how it held rows out (:class:`HoldoutRecord`: split kind, share, content scheme, data hash),
so a later run can tell which of its own holdout rows the serving version trained on:

* held out by content with the same scheme: a row it trained on hashes above its share, whatever file it
  came from, so the rows below both shares were seen by neither model;
* held out by time (or by the old seeded stratified split) on the same file (same SHA-256): its split is
  rebuilt, and any holdout row whose content it trained on is left out;
* anything else (another file, a version logged before runs recorded their holdout): which rows it saw is
  unknown, and the comparison is refused with that reason rather than made on rows it may have memorised.

On the fair rows a paired bootstrap (the same row resamples for both models) gives both F1s, their difference
with a 95% interval, and the probability that the challenger is at least as good.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from trainer.evaluate import f1_from_counts
from trainer.split import CONTENT_SCHEME, Splits, holdout_mask, indices

if TYPE_CHECKING:
    from fraudstream.model.registry import ModelRegistry

log = logging.getLogger(__name__)
LEVEL = 0.95


@dataclass(frozen=True)
class HoldoutRecord:
    """How a run held rows out; logged as run parameters (``split``, ``test_size``, ``holdout_scheme``) and
    the ``data.sha256`` tag, which runs before content holdouts logged too (with ``seed``)."""

    kind: str
    share: float
    data_sha256: str | None
    scheme: str | None = None
    seed: int | None = None

    def params(self) -> dict[str, str]:
        values = {"split": self.kind, "test_size": f"{self.share:g}"}
        if self.scheme is not None:
            values["holdout_scheme"] = self.scheme
        return values

    @classmethod
    def from_run(cls, params: dict[str, str], tags: dict[str, str]) -> HoldoutRecord | None:
        try:
            kind, share = params["split"], float(params["test_size"])
        except (KeyError, ValueError):
            return None
        seed = params.get("seed")
        return cls(
            kind=kind,
            share=share,
            data_sha256=tags.get("data.sha256"),
            scheme=params.get("holdout_scheme"),
            seed=int(seed) if seed is not None and seed.lstrip("-").isdigit() else None,
        )

    def describe(self) -> str:
        if self.kind == "content":
            return f"held out by content at {self.share:.0%}"
        return f"held out by a {self.kind} split at {self.share:.0%} of file {(self.data_sha256 or '?')[:12]}"


def unseen_rows(
    production: HoldoutRecord | None, frame: pd.DataFrame, splits: Splits, data_sha256: str
) -> np.ndarray | str:
    """Mask over ``splits.test`` of the rows the production version never trained on, or why it is unknown."""
    if production is None:
        return "its run does not record how it held rows out (logged before runs did)"
    if production.kind == "content":
        if production.scheme != CONTENT_SCHEME:
            return f"it was held out by another content scheme ({production.scheme}, this run {CONTENT_SCHEME})"
        return holdout_mask(splits.test.keys, production.share)
    if production.kind not in ("time", "stratified"):
        return f"its run records an unknown split kind {production.kind!r}"
    if production.data_sha256 != data_sha256:
        return f"it was {production.describe()}, another file than this run's, so which rows it saw is unknown"
    if production.kind == "stratified" and production.seed is None:
        return "its run records a stratified split without its seed"
    held = np.zeros(len(frame), dtype=bool)
    held[indices(frame, splits.keys, kind=production.kind, share=production.share, seed=production.seed or 0)] = True
    trained_on = splits.keys[~held, 0]
    return ~np.isin(splits.test.keys[:, 0], trained_on)


@dataclass(frozen=True)
class Comparison:
    """Challenger and production on the same fair rows, with a paired bootstrap."""

    rows: int
    frauds: int
    challenger_f1: float
    production_f1: float
    difference: float
    difference_ci_low: float
    difference_ci_high: float
    p_at_least_as_good: float

    def metrics(self) -> dict[str, float]:
        return {
            "champion_rows": self.rows,
            "champion_frauds": self.frauds,
            "champion_challenger_f1": self.challenger_f1,
            "champion_production_f1": self.production_f1,
            "champion_f1_difference": self.difference,
            "champion_difference_ci_low": self.difference_ci_low,
            "champion_difference_ci_high": self.difference_ci_high,
            "champion_p_at_least_as_good": self.p_at_least_as_good,
        }

    def summary(self) -> str:
        return (
            f"challenger F1 {self.challenger_f1:.4f} vs production {self.production_f1:.4f}, difference "
            f"{self.difference:+.4f} (95% CI {self.difference_ci_low:+.3f} to {self.difference_ci_high:+.3f}), "
            f"P(challenger at least as good) {self.p_at_least_as_good:.2f}"
        )


def paired_bootstrap(
    labels: np.ndarray, challenger: np.ndarray, production: np.ndarray, *, rounds: int, seed: int
) -> Comparison:
    """Both models' flags on the same rows, resampled together.

    A row falls in one of 8 cells (label x challenger flag x production flag); resampling n rows with
    replacement is drawing the 8 cell counts from a multinomial with the observed proportions.
    """
    actual, first, second = labels.astype(bool), challenger.astype(bool), production.astype(bool)
    cells = np.bincount(actual * 4 + first * 2 + second, minlength=8).astype(float)
    draws = np.random.default_rng(seed).multinomial(len(actual), cells / cells.sum(), size=rounds)
    draws = np.vstack([cells, draws])  # row 0: the observed counts

    def f1(counts: np.ndarray, flag_bit: int) -> np.ndarray:
        cell = np.arange(8)
        flagged, fraud = (cell & flag_bit) > 0, cell >= 4
        return f1_from_counts(
            counts[:, flagged & fraud].sum(1), counts[:, flagged & ~fraud].sum(1), counts[:, ~flagged & fraud].sum(1)
        )

    challenger_f1, production_f1 = f1(draws, 2), f1(draws, 1)
    difference = challenger_f1 - production_f1
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(difference[1:], [tail, 100 - tail])
    return Comparison(
        rows=len(actual),
        frauds=int(actual.sum()),
        challenger_f1=float(challenger_f1[0]),
        production_f1=float(production_f1[0]),
        difference=float(difference[0]),
        difference_ci_low=float(low),
        difference_ci_high=float(high),
        p_at_least_as_good=float(np.mean(difference[1:] >= 0)),
    )


@dataclass(frozen=True)
class Champion:
    """What this run knows about the serving version: a fair comparison, or why there is none."""

    version: str
    comparison: Comparison | None
    rows_note: str
    """Which rows the comparison used, or why it was refused: it goes into the gate's reason."""

    def tags(self) -> dict[str, Any]:
        tags = {"gate.production_version": self.version, "gate.comparison_rows": self.rows_note}
        if self.comparison is not None:
            tags["gate.production_f1"] = f"{self.comparison.production_f1:.4f}"
        return tags


def _production_record(registry: ModelRegistry, run_id: str | None) -> HoldoutRecord | None:
    from mlflow.exceptions import MlflowException

    if run_id is None:
        return None
    try:
        run = registry.client.get_run(run_id)
    except MlflowException as exc:
        log.warning("cannot read the run %s of the serving version: %s", run_id, exc)
        return None
    return HoldoutRecord.from_run(run.data.params, run.data.tags)


def assess_production(
    registry: ModelRegistry,
    frame: pd.DataFrame,
    splits: Splits,
    data_sha256: str,
    challenger_flags: np.ndarray,
    *,
    min_frauds: int,
    rounds: int,
    seed: int,
) -> Champion | None:
    """The serving version judged beside the challenger on the holdout rows neither trained on; None when no
    version serves yet."""
    ref = registry.serving_version()
    if ref is None:
        return None
    record = _production_record(registry, ref.run_id)
    mask = unseen_rows(record, frame, splits, data_sha256)
    if isinstance(mask, str):
        return Champion(ref.version, None, mask)
    rows, frauds, total = int(mask.sum()), int(splits.test.y[mask].sum()), len(splits.test)
    assert record is not None  # a mask means the record was read
    note = f"the {rows:,} holdout rows neither trained on"
    if rows == total:
        note += f" (all of this run's holdout; v{ref.version} was {record.describe()})"
    else:
        note += (
            f" (v{ref.version} was {record.describe()}: {total - rows:,} of this run's {total:,} holdout rows "
            "were or may have been its training rows and are left out)"
        )
    if frauds < min_frauds:
        return Champion(
            ref.version,
            None,
            f"only {frauds} frauds among {note}, fewer than FRAUD_MIN_HOLDOUT_FRAUDS ({min_frauds}): "
            "too few to compare",
        )
    production = registry.load(ref.version)
    scores = production.score(splits.test.X.to_numpy(dtype=np.float32)[mask])
    comparison = paired_bootstrap(
        splits.test.y[mask], challenger_flags[mask], production.flags(scores), rounds=rounds, seed=seed
    )
    return Champion(ref.version, comparison, note)
