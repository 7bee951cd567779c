"""The alert table and the few statements that differ between SQLite and PostgreSQL.

``event_time`` is stored in UTC: SQLite keeps timestamps as text without a zone, so every value written and every
bound parameter is converted to UTC first (api/store/alerts.py), which keeps text order equal to time order.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

alerts_table = sa.Table(
    "alerts",
    metadata,
    sa.Column("transaction_id", sa.String(), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("model_name", sa.String(), nullable=False),
    sa.Column("model_version", sa.String(), nullable=False),
    sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("label", sa.SmallInteger, nullable=True),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    # Added with reason codes and verdicts (nullable: create_schema adds them to an older table).
    sa.Column("features", sa.JSON, nullable=True),
    sa.Column("explanation", sa.JSON, nullable=True),
    sa.Column("verdict", sa.String(16), nullable=True),
    sa.Column("verdict_analyst", sa.String(), nullable=True),
    sa.Column("verdict_note", sa.Text, nullable=True),
    sa.Column("verdict_at", sa.DateTime(timezone=True), nullable=True),
    # The page order (newest first, transaction id as tiebreak) is this index read backwards.
    sa.Index("ix_alerts_event_time_transaction_id", "event_time", "transaction_id"),
    sa.Index("ix_alerts_model_version", "model_version"),
    sa.Index("ix_alerts_verdict", "verdict"),
)

VERDICT_COLUMNS: tuple[str, ...] = ("verdict", "verdict_analyst", "verdict_note", "verdict_at")
"""The current verdict, written by POST /alerts/{id}/feedback only (its history is in ``feedback``)."""

UPDATED_ON_CONFLICT: tuple[str, ...] = tuple(
    column.name
    for column in alerts_table.columns
    if column.name not in ("transaction_id", "stored_at", *VERDICT_COLUMNS)
)
"""A redelivered or re-scored alert refreshes every field but the key, the time it was first stored and the verdict."""

feedback_table = sa.Table(
    "feedback",
    metadata,
    # The verdicts' history and the outbox of the fraud-feedback topic: a row is published once it has an offset.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("transaction_id", sa.String(), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("analyst", sa.String(), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_name", sa.String(), nullable=False),
    sa.Column("model_version", sa.String(), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("topic_partition", sa.Integer, nullable=True),
    sa.Column("topic_offset", sa.BigInteger, nullable=True),
    sa.Index("ix_feedback_transaction_id", "transaction_id", "id"),
    sa.Index("ix_feedback_published_at", "published_at"),
)

monitoring_table = sa.Table(
    "monitoring_windows",
    metadata,
    # The scorer's monitoring records (fraud-monitoring), one row per window of one model version. ``seq`` orders
    # the rows by arrival (the history's cursor); ``window`` numbers a version's windows 1, 2, ... in the order
    # their records reached the store (a version's records share a partition, so the order is the topic's).
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("window_id", sa.String(), nullable=False, unique=True),
    sa.Column("model_name", sa.String(), nullable=False),
    sa.Column("model_version", sa.String(), nullable=False),
    sa.Column("window", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("scorer", sa.String(), nullable=False),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    # The MLflow writer's outbox: set once the window's metrics are on the version's run (or why they never will be).
    sa.Column("mlflow_logged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("mlflow_note", sa.Text, nullable=True),
    sa.UniqueConstraint("model_name", "model_version", "window", name="uq_monitoring_version_window"),
    sa.Index("ix_monitoring_window_end", "window_end"),
    sa.Index("ix_monitoring_mlflow_pending", "mlflow_logged_at", "seq"),
)

leases_table = sa.Table(
    "leases",
    metadata,
    # One named lease per job that only one process may run at a time (the fraud-feedback publisher).
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("holder", sa.String(), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


def upsert_statement(dialect: str) -> Any | None:
    """INSERT ... ON CONFLICT (transaction_id) DO UPDATE for SQLite and PostgreSQL; None for other dialects."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    statement = insert(alerts_table)
    return statement.on_conflict_do_update(
        index_elements=[alerts_table.c.transaction_id],
        set_={name: statement.excluded[name] for name in UPDATED_ON_CONFLICT},
    )


def hour_bucket(dialect: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any] | None:
    """The start of the UTC hour of ``column`` in SQL; None where the store buckets in Python instead."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%dT%H:00:00", column)
    if dialect == "postgresql":
        return sa.func.date_trunc("hour", sa.func.timezone("UTC", column))
    return None


def minute_bucket(dialect: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any] | None:
    """The start of the UTC minute of ``column`` in SQL; None where the store buckets in Python instead."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%dT%H:%M:00", column)
    if dialect == "postgresql":
        return sa.func.date_trunc("minute", sa.func.timezone("UTC", column))
    return None


def score_bin(dialect: str, column: sa.ColumnElement[Any], bins: int) -> sa.ColumnElement[Any] | None:
    """The histogram bin (0..bins-1) of a score in [0, 1] in SQL; None where the store bins in Python instead."""
    scaled = column * bins
    if dialect == "sqlite":  # CAST truncates toward zero in SQLite (scores are never negative)
        return sa.func.min(sa.cast(scaled, sa.Integer), bins - 1)
    if dialect == "postgresql":  # PostgreSQL's CAST rounds: floor first
        return sa.func.least(sa.cast(sa.func.floor(scaled), sa.Integer), bins - 1)
    return None


def missing_columns(conn: sa.Connection, table: sa.Table) -> list[sa.Column[Any]]:
    """Columns of ``table`` that the database's copy lacks (a table created by an older release)."""
    present = {column["name"] for column in sa.inspect(conn).get_columns(table.name)}
    return [column for column in table.columns if column.name not in present]


def add_column(conn: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> None:
    """ALTER TABLE ... ADD COLUMN for a nullable column, typed for the connection's dialect."""
    quote = conn.dialect.identifier_preparer.quote
    kind = column.type.compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"))
