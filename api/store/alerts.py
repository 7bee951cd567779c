"""The alert store: an ``alerts`` table over SQLAlchemy Core, SQLite by default, PostgreSQL by URL.

Writes are upserts keyed by ``transaction_id`` (a redelivered alert is stored once, and keeps its verdict). Reads
page newest first by ``(event_time, transaction_id)`` with a keyset cursor, so a page never repeats or skips an
alert, however many alerts share one event time and however many arrive between two pages. Analysts' verdicts
and their history live beside it (:mod:`api.store.feedback`, reached as ``repository.feedback``), and so do the
monitoring windows of the serving models (:mod:`api.store.monitoring`, ``repository.monitoring``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection, Engine

from api.exceptions import StoreError
from api.store.cursor import Cursor
from api.store.feedback import FeedbackRepository
from api.store.monitoring import MonitoringRepository
from api.store.sql import (
    add_column,
    alerts_table,
    hour_bucket,
    metadata,
    minute_bucket,
    missing_columns,
    score_bin,
    upsert_statement,
)
from fraudstream.schemas import Alert, AwareDatetime, Verdict

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError, sa.exc.TimeoutError)
"""Failures where the same statement may work later; any other error means the data was refused."""


SCORE_BINS = 20
"""Bins of the score histogram in the stats: 0.05 wide on [0, 1]."""
VerdictFilter = Literal["none", "fraud", "legitimate"]


class AlertVerdict(BaseModel):
    """The analyst's current verdict on an alert (earlier ones are in its feedback history)."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    analyst: str
    note: str | None = None
    decided_at: AwareDatetime = Field(description="When the analyst decided.")


class StoredAlert(Alert):
    """An alert as the store holds it: the message's fields, when it was first stored, and its verdict."""

    stored_at: AwareDatetime
    verdict: AlertVerdict | None = None


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts a query covers: ``since`` inclusive, ``until`` exclusive, both on ``event_time``."""

    since: datetime | None = None
    until: datetime | None = None
    min_score: float | None = None
    model_version: str | None = None
    verdict: VerdictFilter | None = None
    """``none``: not reviewed yet; ``fraud`` / ``legitimate``: the current verdict."""


@dataclass(frozen=True)
class AlertPage:
    alerts: list[StoredAlert]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class VersionReview:
    """Alerts of one model version and what analysts said of them."""

    alerts: int = 0
    reviewed: int = 0
    fraud: int = 0

    @property
    def precision(self) -> float | None:
        """Confirmed precision: share of reviewed alerts the analysts called fraud; None before any review."""
        return self.fraud / self.reviewed if self.reviewed else None


@dataclass(frozen=True)
class AlertStats:
    total: int
    by_model_version: dict[str, int]
    by_hour: dict[datetime, int]
    reviews: dict[str, VersionReview] = field(default_factory=dict)
    by_verdict: dict[str, int] = field(default_factory=dict)
    """Counts by current verdict: ``none``, ``fraud``, ``legitimate``."""
    score_histogram: list[int] = field(default_factory=list)
    """Alerts per score bin of width 1 / SCORE_BINS, from 0 up."""
    by_minute: dict[datetime, int] = field(default_factory=dict)
    """Alerts scored in each UTC minute of the recent window (scored_at), zeros included, oldest first."""

    @property
    def reviewed(self) -> int:
        return sum(review.reviewed for review in self.reviews.values())


def utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive value is taken as UTC already (SQLite hands back naive times)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def create_store_engine(url: str) -> Engine:
    """An engine for the store URL; SQLite gets WAL (readers never wait for the sink) and a busy timeout."""
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use the alert store URL (FRAUD_ALERT_STORE_URL): {exc}") from exc
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


class AlertRepository:
    """Store and query alerts. Every method opens its own short transaction; the object is thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.feedback = FeedbackRepository(self._connect)
        self.monitoring = MonitoringRepository(self._connect)

    @classmethod
    def from_url(cls, url: str) -> AlertRepository:
        return cls(create_store_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        """The URL with any password masked, for logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[Connection]:
        try:
            with self.engine.begin() if write else self.engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            transient = isinstance(exc, TRANSIENT_ERRORS)
            raise StoreError(
                f"alert store {self.describe()}: {exc.__class__.__name__}: {exc}", transient=transient
            ) from exc

    def create_schema(self) -> None:
        """Create the table and its index where missing (idempotent; safe with several replicas)."""
        if self.dialect == "sqlite" and self.engine.url.database not in (None, "", ":memory:"):
            from pathlib import Path

            Path(self.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        with self._connect(write=True) as conn:
            metadata.create_all(conn, checkfirst=True)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Columns added by later releases (reasons, verdicts), added to a table an older release created."""
        with self._connect() as conn:
            missing = missing_columns(conn, alerts_table)
        for column in missing:
            try:
                with self._connect(write=True) as conn:
                    add_column(conn, alerts_table, column)
                log.info("alert store: added column %s to alerts", column.name)
            except StoreError:  # another replica added it meanwhile
                with self._connect() as conn:
                    if column.name not in {c.name for c in missing_columns(conn, alerts_table)}:
                        continue
                raise

    def ping(self) -> None:
        """Raise StoreError unless the store answers a trivial query."""
        with self._connect() as conn:
            conn.execute(sa.select(sa.literal(1)))

    def upsert_many(self, alerts: Sequence[Alert], *, now: datetime | None = None) -> int:
        """Insert or update by transaction_id in one transaction; returns the number of distinct alerts written.

        A later alert for the same transaction replaces the earlier one's fields; ``stored_at`` keeps the time
        the transaction was first stored.
        """
        if not alerts:
            return 0
        stored_at = utc(now or datetime.now(timezone.utc))
        latest = {alert.transaction_id: alert for alert in alerts}  # PostgreSQL refuses one key twice per statement
        rows = [_row(alert, stored_at) for alert in latest.values()]
        with self._connect(write=True) as conn:
            statement = upsert_statement(conn.dialect.name)
            if statement is None:  # another dialect: delete then insert, in the same transaction
                table = alerts_table
                conn.execute(table.delete().where(table.c.transaction_id.in_(list(latest))))
                conn.execute(table.insert(), rows)
            else:
                conn.execute(statement, rows)
        return len(rows)

    def get(self, transaction_id: str) -> StoredAlert | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(alerts_table).where(alerts_table.c.transaction_id == transaction_id)).first()
        return None if row is None else _alert(row._mapping)

    def count(self, where: AlertFilter | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(alerts_table).where(*_conditions(where or AlertFilter()))
        with self._connect() as conn:
            return int(conn.execute(query).scalar_one())

    def page(self, where: AlertFilter | None = None, *, limit: int = 100, after: Cursor | None = None) -> AlertPage:
        """Up to ``limit`` alerts newest first, starting after ``after``; ``next_cursor`` is None on the last page."""
        table = alerts_table
        conditions = _conditions(where or AlertFilter())
        if after is not None:
            at = utc(after.event_time)
            conditions.append(
                sa.or_(
                    table.c.event_time < at,
                    sa.and_(table.c.event_time == at, table.c.transaction_id < after.transaction_id),
                )
            )
        query = (
            sa.select(table)
            .where(*conditions)
            .order_by(table.c.event_time.desc(), table.c.transaction_id.desc())
            .limit(limit + 1)
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        alerts = [_alert(row._mapping) for row in rows[:limit]]
        more = len(rows) > limit
        last = alerts[-1] if alerts else None
        cursor = Cursor(last.event_time, last.transaction_id) if more and last else None
        return AlertPage(alerts=alerts, next_cursor=cursor)

    def stats(self, where: AlertFilter | None = None, *, minutes: int = 60, now: datetime | None = None) -> AlertStats:
        """Counts by model version and verdict, by UTC hour of event time, by score bin, and per minute of the
        last ``minutes`` (by scored_at)."""
        table = alerts_table
        conditions = _conditions(where or AlertFilter())
        by_version = (
            sa.select(table.c.model_version, table.c.verdict, sa.func.count())
            .where(*conditions)
            .group_by(table.c.model_version, table.c.verdict)
        )
        counts: dict[str, dict[str | None, int]] = {}
        with self._connect() as conn:
            dialect = conn.dialect.name
            for version, verdict, count in conn.execute(by_version):
                counts.setdefault(str(version), {})[verdict] = int(count)
            hours = self._hours(conn, dialect, conditions)
            histogram = self._score_histogram(conn, dialect, conditions)
            per_minute = self._minutes(conn, dialect, conditions, minutes, utc(now or datetime.now(timezone.utc)))
        reviews = {
            version: VersionReview(
                alerts=sum(by_verdict.values()),
                reviewed=by_verdict.get("fraud", 0) + by_verdict.get("legitimate", 0),
                fraud=by_verdict.get("fraud", 0),
            )
            for version, by_verdict in counts.items()
        }
        verdicts = {"none": 0, "fraud": 0, "legitimate": 0}
        for by_verdict in counts.values():
            for verdict, count in by_verdict.items():
                verdicts[verdict or "none"] += count
        return AlertStats(
            total=sum(review.alerts for review in reviews.values()),
            by_model_version={version: review.alerts for version, review in reviews.items()},
            by_hour=dict(sorted(hours.items())),
            reviews=reviews,
            by_verdict=verdicts,
            score_histogram=histogram,
            by_minute=per_minute,
        )

    @staticmethod
    def _hours(conn: Connection, dialect: str, conditions: list[Any]) -> dict[datetime, int]:
        table = alerts_table
        bucket = hour_bucket(dialect, table.c.event_time)
        hours: dict[datetime, int] = {}
        if bucket is None:  # another dialect: bucket in Python
            for (event_time,) in conn.execute(sa.select(table.c.event_time).where(*conditions)):
                hour = utc(event_time).replace(minute=0, second=0, microsecond=0)
                hours[hour] = hours.get(hour, 0) + 1
            return hours
        for hour, count in conn.execute(sa.select(bucket, sa.func.count()).where(*conditions).group_by(bucket)):
            start = utc(datetime.fromisoformat(hour) if isinstance(hour, str) else hour)
            hours[start] = hours.get(start, 0) + int(count)
        return hours

    @staticmethod
    def _score_histogram(conn: Connection, dialect: str, conditions: list[Any]) -> list[int]:
        table = alerts_table
        histogram = [0] * SCORE_BINS
        bucket = score_bin(dialect, table.c.score, SCORE_BINS)
        if bucket is None:
            for (score,) in conn.execute(sa.select(table.c.score).where(*conditions)):
                histogram[min(int(score * SCORE_BINS), SCORE_BINS - 1)] += 1
            return histogram
        for index, count in conn.execute(sa.select(bucket, sa.func.count()).where(*conditions).group_by(bucket)):
            histogram[max(0, min(int(index), SCORE_BINS - 1))] += int(count)
        return histogram

    @staticmethod
    def _minutes(
        conn: Connection, dialect: str, conditions: list[Any], minutes: int, now: datetime
    ) -> dict[datetime, int]:
        table = alerts_table
        end = now.replace(second=0, microsecond=0)
        start = end - timedelta(minutes=minutes - 1)
        counts = {start + timedelta(minutes=i): 0 for i in range(minutes)}
        recent = [*conditions, table.c.scored_at >= start]
        bucket = minute_bucket(dialect, table.c.scored_at)
        if bucket is None:
            rows: Any = (
                (utc(at).replace(second=0, microsecond=0), 1)
                for (at,) in conn.execute(sa.select(table.c.scored_at).where(*recent))
            )
        else:
            rows = conn.execute(sa.select(bucket, sa.func.count()).where(*recent).group_by(bucket))
        for minute, count in rows:
            at = utc(datetime.fromisoformat(minute) if isinstance(minute, str) else minute)
            if at in counts:
                counts[at] += int(count)
        return counts


def _conditions(where: AlertFilter) -> list[sa.ColumnElement[bool]]:
    table = alerts_table
    conditions: list[sa.ColumnElement[bool]] = []
    if where.since is not None:
        conditions.append(table.c.event_time >= utc(where.since))
    if where.until is not None:
        conditions.append(table.c.event_time < utc(where.until))
    if where.min_score is not None:
        conditions.append(table.c.score >= where.min_score)
    if where.model_version is not None:
        conditions.append(table.c.model_version == where.model_version)
    if where.verdict == "none":
        conditions.append(table.c.verdict.is_(None))
    elif where.verdict is not None:
        conditions.append(table.c.verdict == where.verdict)
    return conditions


def _row(alert: Alert, stored_at: datetime) -> dict[str, Any]:
    row = alert.model_dump()  # features and explanation as plain dicts, for their JSON columns
    row["event_time"] = utc(alert.event_time)
    row["scored_at"] = utc(alert.scored_at)
    row["stored_at"] = stored_at
    return row


def _alert(row: Any) -> StoredAlert:
    values = dict(row)
    for name in ("event_time", "scored_at", "stored_at"):
        values[name] = utc(values[name])
    verdict = {name: values.pop(name) for name in ("verdict", "verdict_analyst", "verdict_note", "verdict_at")}
    if verdict["verdict"] is not None:
        values["verdict"] = AlertVerdict(
            verdict=verdict["verdict"],
            analyst=verdict["verdict_analyst"],
            note=verdict["verdict_note"],
            decided_at=utc(verdict["verdict_at"]),
        )
    return StoredAlert.model_validate(values)
