"""After the gate: champion and challenger side by side, and moving the production alias by hand.

``status()`` puts the version holding the production alias (the champion) beside the one holding the challenger
alias (set by ``fraudstream train --as-challenger``):

* offline, each run's own ``test_*`` metrics, and, when the challenger's run was compared with this champion
  (its ``gate.production_version`` tag), the paired comparison it logged on the holdout rows neither trained on
  (``champion_*`` metrics): the same rows for both versions;
* live, from the monitoring records (fraud-monitoring): the confusion counts of both pooled over the windows both
  were measured on (the scorer monitors both on the same windows), and each one's newest window.

``promote()`` moves the production alias (to the challenger by default), drops the challenger alias from the
promoted version, and records why as tags on the version and its run, as the gate does (``promote.*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fraudstream.exceptions import FraudstreamError, ModelNotFoundError
from fraudstream.model.registry import ModelRegistry, VersionRef
from fraudstream.monitoring import Confusion, MonitoringRecord
from fraudstream.settings import Settings

OFFLINE_METRICS = ("test_f1", "test_precision", "test_recall", "test_pr_auc", "test_roc_auc")


class PromotionError(FraudstreamError):
    """The alias cannot be moved as asked (no such version, nothing to promote, already serving)."""


@dataclass(frozen=True)
class VersionFacts:
    role: str
    version: str
    run_id: str | None
    offline: dict[str, float] = field(default_factory=dict)
    """The run's own holdout metrics (test_f1, test_precision, ...)."""
    tags: dict[str, str] = field(default_factory=dict)
    """The registered version's tags (gate.*, promote.*)."""


@dataclass(frozen=True)
class SameRows:
    """Both versions on the same holdout rows (neither trained on), as the challenger's run logged it."""

    rows: int
    frauds: int
    challenger_f1: float
    production_f1: float
    difference_ci_low: float
    difference_ci_high: float
    p_at_least_as_good: float


@dataclass(frozen=True)
class LiveSide:
    pooled: Confusion
    scored: int
    latest: MonitoringRecord | None


@dataclass(frozen=True)
class LiveComparison:
    """Both versions over the windows both were measured on (same scorer, same window start)."""

    shared_windows: int
    production: LiveSide
    challenger: LiveSide


@dataclass(frozen=True)
class LifecycleStatus:
    production: VersionFacts | None
    challenger: VersionFacts | None
    same_rows: SameRows | None
    same_rows_note: str
    live: LiveComparison | None


def _facts(registry: ModelRegistry, role: str, ref: VersionRef | None) -> VersionFacts | None:
    if ref is None:
        return None
    version = registry.client.get_model_version(ref.name, ref.version)
    metrics: dict[str, float] = {}
    if ref.run_id:
        run_metrics = registry.client.get_run(ref.run_id).data.metrics
        metrics = {name: float(run_metrics[name]) for name in OFFLINE_METRICS if name in run_metrics}
    return VersionFacts(role, ref.version, ref.run_id, metrics, dict(version.tags or {}))


def _same_rows(registry: ModelRegistry, production: VersionFacts, challenger: VersionFacts) -> SameRows | str:
    if challenger.run_id is None:
        return "the challenger's version has no run"
    run = registry.client.get_run(challenger.run_id)
    compared = run.data.tags.get("gate.production_version")
    if compared != production.version:
        against = f"v{compared}" if compared else "no version"
        return f"the challenger's run was compared with {against}, not with production v{production.version}"
    m = run.data.metrics
    if "champion_challenger_f1" not in m:
        return run.data.tags.get("gate.comparison_rows", "no fair comparison was possible")
    return SameRows(
        rows=int(m["champion_rows"]),
        frauds=int(m["champion_frauds"]),
        challenger_f1=m["champion_challenger_f1"],
        production_f1=m["champion_production_f1"],
        difference_ci_low=m["champion_difference_ci_low"],
        difference_ci_high=m["champion_difference_ci_high"],
        p_at_least_as_good=m["champion_p_at_least_as_good"],
    )


def live_comparison(
    records: Sequence[MonitoringRecord], model_name: str, production: str, challenger: str
) -> LiveComparison:
    """Both versions pooled over the windows both have a record of (keyed by scorer and window start)."""
    windows: dict[str, dict[tuple[str, datetime], MonitoringRecord]] = {production: {}, challenger: {}}
    for record in records:
        if record.model_name == model_name and record.model_version in windows:
            windows[record.model_version][(record.scorer, record.window_start)] = record
    shared = set(windows[production]) & set(windows[challenger])

    def side(version: str) -> LiveSide:
        mine = [windows[version][key] for key in shared]
        pooled = sum((record.confusion for record in mine), Confusion())
        latest = max(windows[version].values(), key=lambda r: r.window_end, default=None)
        return LiveSide(pooled=pooled, scored=sum(record.scored for record in mine), latest=latest)

    return LiveComparison(shared_windows=len(shared), production=side(production), challenger=side(challenger))


def status(
    settings: Settings, registry: ModelRegistry, records: Sequence[MonitoringRecord] | None = None
) -> LifecycleStatus:
    """Champion and challenger side by side (``records``: the monitoring records read; None: no live part)."""
    production = _facts(registry, "production", registry.serving_version())
    challenger = _facts(registry, "challenger", registry.version_with_alias(settings.model_challenger_alias))
    same: SameRows | str = "no challenger" if challenger is None else "no production version"
    if production is not None and challenger is not None:
        same = _same_rows(registry, production, challenger)
    live = None
    if records is not None and production is not None and challenger is not None:
        live = live_comparison(records, settings.model_name, production.version, challenger.version)
    return LifecycleStatus(
        production=production,
        challenger=challenger,
        same_rows=same if isinstance(same, SameRows) else None,
        same_rows_note="" if isinstance(same, SameRows) else same,
        live=live,
    )


@dataclass(frozen=True)
class Promotion:
    version: str
    previous: str | None
    reason: str
    tags: dict[str, str]


def evidence(current: LifecycleStatus) -> str:
    """What is known for the challenger against production, in one line (the default reason's second half)."""
    parts: list[str] = []
    live = current.live
    if live is not None and live.shared_windows:
        c, p = live.challenger.pooled.f1, live.production.pooled.f1
        if c is not None and p is not None:
            parts.append(f"live F1 {c:.4f} vs {p:.4f} over {live.shared_windows} shared windows")
        else:
            parts.append(f"{live.shared_windows} shared live windows without labels")
    if current.same_rows is not None:
        s = current.same_rows
        parts.append(f"offline F1 {s.challenger_f1:.4f} vs {s.production_f1:.4f} on the same {s.rows:,} holdout rows")
    return "; ".join(parts) or "no live or offline comparison recorded"


def promote(
    settings: Settings,
    registry: ModelRegistry,
    version: str | None = None,
    reason: str | None = None,
    *,
    records: Sequence[MonitoringRecord] | None = None,
    now: datetime | None = None,
) -> Promotion:
    """Move the production alias to ``version`` (default: the challenger's) and record why as tags."""
    from mlflow.exceptions import MlflowException

    client = registry.client
    challenger = registry.version_with_alias(settings.model_challenger_alias)
    target = version or (challenger.version if challenger else None)
    if target is None:
        raise PromotionError(
            f"no version of {settings.model_name!r} has the alias {settings.model_challenger_alias!r}: "
            "name one with --version, or train one with `fraudstream train --as-challenger`"
        )
    try:
        found: Any = client.get_model_version(settings.model_name, target)
    except MlflowException as exc:
        raise ModelNotFoundError(f"model {settings.model_name!r} has no version {target}: {exc.message}") from exc
    previous = registry.serving_version()
    if previous is not None and previous.version == target:
        raise PromotionError(f"v{target} already holds the alias {settings.model_alias!r}")
    current = status(settings, registry, records) if challenger and challenger.version == target else None
    was = "the challenger" if current is not None else "a registered version"
    over = f" over production v{previous.version}" if previous else ""
    why = reason or f"promoted by hand: {was} v{target}{over}" + (f" ({evidence(current)})" if current else "")
    at = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    tags = {
        "promote.decision": "promoted",
        "promote.reason": why,
        "promote.at": at,
        "promote.by": "fraudstream model promote",
        "promote.previous_version": previous.version if previous else "none",
    }
    client.set_registered_model_alias(settings.model_name, settings.model_alias, target)
    if challenger is not None and challenger.version == target:
        client.delete_registered_model_alias(settings.model_name, settings.model_challenger_alias)
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, target, key, value)
        if found.run_id:
            client.set_tag(found.run_id, key, value)
    if previous is not None:
        client.set_model_version_tag(settings.model_name, previous.version, "promote.replaced_by", target)
        client.set_model_version_tag(settings.model_name, previous.version, "promote.replaced_at", at)
    return Promotion(version=target, previous=previous.version if previous else None, reason=why, tags=tags)
