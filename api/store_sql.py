"""The alert table and the few statements that differ between SQLite and PostgreSQL.

``event_time`` is stored in UTC: SQLite keeps timestamps as text without a zone, so every value written and every
bound parameter is converted to UTC first (api/store.py), which keeps text order equal to time order.
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
    # The page order (newest first, transaction id as tiebreak) is this index read backwards.
    sa.Index("ix_alerts_event_time_transaction_id", "event_time", "transaction_id"),
    sa.Index("ix_alerts_model_version", "model_version"),
)

UPDATED_ON_CONFLICT: tuple[str, ...] = tuple(
    column.name for column in alerts_table.columns if column.name not in ("transaction_id", "stored_at")
)
"""A redelivered or re-scored alert refreshes every field but the key and the time it was first stored."""


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
