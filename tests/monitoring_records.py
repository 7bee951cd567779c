"""Monitoring records as a scorer would publish them on fraud-monitoring, for the readers' tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fraudstream.monitoring import Confusion, MonitoringRecord
from fraudstream.schemas import FEATURES

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def monitoring_record(
    window: int,
    *,
    version: str = "1",
    role: str = "production",
    model_name: str = "fraud-unit",
    scorer: str = "scorer-a",
    confusion: Confusion | None = None,
    drifted: dict[str, float] | None = None,
    **fields: Any,
) -> MonitoringRecord:
    """The ``window``-th window (0-based: one minute each from T0) of one version; ``drifted`` features get that
    PSI (and the status drift), the others 0.01."""
    counts = confusion if confusion is not None else Confusion(tp=8, fp=2, fn=1, tn=989)
    feature_psi = {name: 0.01 for name in FEATURES} | (drifted or {})
    start = T0 + timedelta(minutes=window)
    values: dict[str, Any] = {
        "model_name": model_name,
        "model_version": version,
        "role": role,
        "scorer": scorer,
        "window_start": start,
        "window_end": start + timedelta(seconds=59),
        "scored": counts.labelled or 1000,
        "alerts": counts.tp + counts.fp,
        "dead_letters": 0,
        "alert_rate": (counts.tp + counts.fp) / (counts.labelled or 1000),
        "score_counts": [900, 50, 20, 10, 5, 5, 3, 3, 2, 2],
        "feature_psi": feature_psi,
        "score_psi": 0.02,
        "max_feature_psi": max(feature_psi.values()),
        "confusion": counts,
        "precision": counts.precision,
        "recall": counts.recall,
        "f1": counts.f1,
        "status": "drift" if drifted else "ok",
        "reasons": [f"{name} PSI {value:.3f} > 0.25" for name, value in (drifted or {}).items()],
    }
    return MonitoringRecord.model_validate(values | fields)
