"""The monitoring windows the API materialised from ``fraud-monitoring``, in the alert store's database.

One row per window of one model version (:class:`~fraudstream.monitoring.MonitoringRecord`), keyed by the window's
identity (model, version, scorer, window start), so a redelivered record is stored once. Each version's windows are
numbered 1, 2, ... in the order their records reach the store: a version's records share one partition of the
topic (they are keyed ``<name>:<version>``), so the numbering is the topic's order and a restart that redelivers
records keeps it. That number is the ``step`` of the version's ``live_*`` metrics in MLflow; the rows not yet on
MLflow are the writer's outbox (``mlflow_logged_at`` unset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from api.store.sql import monitoring_table
from fraudstream.monitoring import MonitoringRecord

Connect = Callable[..., AbstractContextManager[Connection]]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def window_id(record: MonitoringRecord) -> str:
    """What makes a window itself: which version, measured by which scorer replica, from when."""
    return f"{record.model_name}:{record.model_version}:{record.scorer}:{_utc(record.window_start).isoformat()}"


@dataclass(frozen=True)
class StoredWindow:
    """A monitoring record as the store holds it: the record, its version's window number, its arrival order."""

    seq: int
    window: int
    record: MonitoringRecord
    stored_at: datetime
    mlflow_logged_at: datetime | None = None


@dataclass(frozen=True)
class WindowPage:
    windows: list[StoredWindow]
    next_cursor: int | None
    """The ``seq`` after which the next page starts (older windows); None on the last page."""


class MonitoringRepository:
    """Store and query monitoring windows; every method is one short transaction (thread-safe)."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    def upsert_many(self, records: Sequence[MonitoringRecord], *, now: datetime | None = None) -> int:
        """Store the records not stored yet, numbering each version's new windows after its last; returns how many
        were new (a redelivered record changes nothing)."""
        if not records:
            return 0
        stored_at = _utc(now or datetime.now(timezone.utc))
        table = monitoring_table
        wanted = {window_id(record): record for record in records}
        with self._connect(write=True) as conn:
            present = set(
                conn.execute(sa.select(table.c.window_id).where(table.c.window_id.in_(list(wanted)))).scalars()
            )
            new = [(wid, record) for wid, record in wanted.items() if wid not in present]
            last: dict[tuple[str, str], int] = {}
            rows: list[dict[str, Any]] = []
            for wid, record in new:
                version = (record.model_name, record.model_version)
                if version not in last:
                    last[version] = int(
                        conn.execute(
                            sa.select(sa.func.coalesce(sa.func.max(table.c.window), 0)).where(
                                table.c.model_name == record.model_name, table.c.model_version == record.model_version
                            )
                        ).scalar_one()
                    )
                last[version] += 1
                rows.append(_row(wid, record, last[version], stored_at))
            if rows:
                conn.execute(table.insert(), rows)
        return len(rows)

    def latest(self) -> list[StoredWindow]:
        """The newest window of every version (by window number), most recently ended first."""
        table = monitoring_table
        newest = (
            sa.select(table.c.model_name, table.c.model_version, sa.func.max(table.c.window).label("window"))
            .group_by(table.c.model_name, table.c.model_version)
            .subquery()
        )
        query = sa.select(table).join(
            newest,
            sa.and_(
                table.c.model_name == newest.c.model_name,
                table.c.model_version == newest.c.model_version,
                table.c.window == newest.c.window,
            ),
        )
        with self._connect() as conn:
            windows = [_window(row._mapping) for row in conn.execute(query)]
        return sorted(windows, key=lambda w: (_utc(w.record.window_end), w.seq), reverse=True)

    def page(
        self,
        *,
        model_version: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> WindowPage:
        """Windows newest first (by arrival), ``since`` inclusive on window_end, starting after cursor ``after``."""
        table = monitoring_table
        conditions: list[sa.ColumnElement[bool]] = []
        if model_version is not None:
            conditions.append(table.c.model_version == model_version)
        if since is not None:
            conditions.append(table.c.window_end >= _utc(since))
        if after is not None:
            conditions.append(table.c.seq < after)
        query = sa.select(table).where(*conditions).order_by(table.c.seq.desc()).limit(limit + 1)
        with self._connect() as conn:
            rows = conn.execute(query).all()
        windows = [_window(row._mapping) for row in rows[:limit]]
        more = len(rows) > limit and windows
        return WindowPage(windows=windows, next_cursor=windows[-1].seq if more else None)

    def pending_mlflow(self, limit: int = 200) -> list[StoredWindow]:
        """Windows whose metrics are not on MLflow yet, oldest first."""
        table = monitoring_table
        query = sa.select(table).where(table.c.mlflow_logged_at.is_(None)).order_by(table.c.seq).limit(limit)
        with self._connect() as conn:
            return [_window(row._mapping) for row in conn.execute(query)]

    def mark_mlflow(self, marks: Sequence[tuple[int, str | None]], *, now: datetime | None = None) -> None:
        """Record ``(seq, note)`` of windows the writer is done with (note: why nothing was logged, else None)."""
        if not marks:
            return
        at = _utc(now or datetime.now(timezone.utc))
        table = monitoring_table
        statement = (
            table.update()
            .where(table.c.seq == sa.bindparam("s"), table.c.mlflow_logged_at.is_(None))
            .values(mlflow_logged_at=at, mlflow_note=sa.bindparam("note"))
        )
        with self._connect(write=True) as conn:
            conn.execute(statement, [{"s": seq, "note": note} for seq, note in marks])


def _row(wid: str, record: MonitoringRecord, window: int, stored_at: datetime) -> dict[str, Any]:
    return {
        "window_id": wid,
        "model_name": record.model_name,
        "model_version": record.model_version,
        "window": window,
        "role": record.role,
        "scorer": record.scorer,
        "window_start": _utc(record.window_start),
        "window_end": _utc(record.window_end),
        "status": record.status,
        "record": record.model_dump(mode="json"),
        "stored_at": stored_at,
    }


def _window(row: Any) -> StoredWindow:
    logged = row["mlflow_logged_at"]
    return StoredWindow(
        seq=int(row["seq"]),
        window=int(row["window"]),
        record=MonitoringRecord.model_validate(row["record"]),
        stored_at=_utc(row["stored_at"]),
        mlflow_logged_at=None if logged is None else _utc(logged),
    )
