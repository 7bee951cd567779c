"""Analysts' verdicts in the alert store: the current one on the alert, every one in the ``feedback`` history.

The history is also the outbox of the ``fraud-feedback`` topic (:mod:`api.feedback`): a verdict is stored first,
in the same transaction as the alert's current verdict, and counts as published once the topic's partition and
offset are written beside it. Nothing an analyst decided is lost when the broker is away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from api.exceptions import StoreError
from api.store.sql import alerts_table, feedback_table, leases_table
from fraudstream.schemas import AwareDatetime, Feedback, Verdict

Connect = Callable[..., AbstractContextManager[Connection]]


class StoredFeedback(Feedback):
    """A verdict as the store holds it: the topic's record, and where it landed on the topic once produced."""

    published_at: AwareDatetime | None = None
    topic_partition: int | None = None
    topic_offset: int | None = None

    @property
    def published(self) -> bool:
        return self.topic_offset is not None

    def message(self) -> Feedback:
        return Feedback.model_validate(self.model_dump(include=set(Feedback.model_fields)))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class FeedbackRepository:
    """Verdicts, their history and the outbox's bookkeeping; every method is one short transaction."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    def record(
        self, transaction_id: str, verdict: Verdict, analyst: str, note: str | None, *, now: datetime | None = None
    ) -> StoredFeedback | None:
        """Store a verdict as the alert's current one and append it to the history; None when no such alert."""
        decided_at = _utc(now or datetime.now(timezone.utc))
        alerts = alerts_table
        with self._connect(write=True) as conn:
            # The write comes first, so SQLite takes its write lock at once (a read first could not upgrade).
            updated = conn.execute(
                alerts.update()
                .where(alerts.c.transaction_id == transaction_id)
                .values(verdict=verdict, verdict_analyst=analyst, verdict_note=note, verdict_at=decided_at)
            )
            if updated.rowcount == 0:
                return None
            name, version = conn.execute(
                sa.select(alerts.c.model_name, alerts.c.model_version).where(alerts.c.transaction_id == transaction_id)
            ).one()
            values = {
                "transaction_id": transaction_id,
                "verdict": verdict,
                "analyst": analyst,
                "note": note,
                "decided_at": decided_at,
                "model_name": name,
                "model_version": version,
            }
            inserted = conn.execute(feedback_table.insert().values(**values))
            feedback_id = int(inserted.inserted_primary_key[0])
        return StoredFeedback(feedback_id=feedback_id, **values)

    def history(self, transaction_id: str) -> list[StoredFeedback]:
        """Every verdict on a transaction, oldest first."""
        query = feedback_table.select().where(feedback_table.c.transaction_id == transaction_id)
        with self._connect() as conn:
            return [_feedback(row._mapping) for row in conn.execute(query.order_by(feedback_table.c.id))]

    def get(self, feedback_id: int) -> StoredFeedback | None:
        with self._connect() as conn:
            row = conn.execute(feedback_table.select().where(feedback_table.c.id == feedback_id)).first()
        return None if row is None else _feedback(row._mapping)

    def pending(self, limit: int = 500) -> list[StoredFeedback]:
        """Verdicts not yet on the topic, oldest first."""
        query = feedback_table.select().where(feedback_table.c.topic_offset.is_(None)).order_by(feedback_table.c.id)
        with self._connect() as conn:
            return [_feedback(row._mapping) for row in conn.execute(query.limit(limit))]

    def mark_published(self, marks: Sequence[tuple[int, int, int]], *, now: datetime | None = None) -> None:
        """Record ``(feedback_id, partition, offset)`` of records the topic holds, in one transaction."""
        if not marks:
            return
        at = _utc(now or datetime.now(timezone.utc))
        table = feedback_table
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("fid"), table.c.topic_offset.is_(None))
            .values(published_at=at, topic_partition=sa.bindparam("part"), topic_offset=sa.bindparam("off"))
        )
        with self._connect(write=True) as conn:
            conn.execute(statement, [{"fid": fid, "part": part, "off": off} for fid, part, off in marks])

    def last_offsets(self) -> dict[int, int]:
        """The highest offset recorded per partition of the topic: every record after it may be unrecorded."""
        table = feedback_table
        query = (
            sa.select(table.c.topic_partition, sa.func.max(table.c.topic_offset))
            .where(table.c.topic_offset.is_not(None))
            .group_by(table.c.topic_partition)
        )
        with self._connect() as conn:
            return {int(partition): int(offset) for partition, offset in conn.execute(query)}

    def counts(self) -> tuple[int, int]:
        """(verdicts stored, verdicts not yet on the topic)."""
        table = feedback_table
        pending = sa.func.sum(sa.case((table.c.topic_offset.is_(None), 1), else_=0))
        with self._connect() as conn:
            total, waiting = conn.execute(sa.select(sa.func.count(), pending).select_from(table)).one()
        return int(total), int(waiting or 0)

    def acquire_lease(self, name: str, holder: str, ttl_s: float, *, now: datetime | None = None) -> bool:
        """Take or renew the named lease for ``ttl_s`` seconds; False while another holder's is unexpired."""
        at = _utc(now or datetime.now(timezone.utc))
        expires = at + timedelta(seconds=ttl_s)
        table = leases_table
        with self._connect(write=True) as conn:
            renewed = conn.execute(
                table.update()
                .where(table.c.name == name, sa.or_(table.c.holder == holder, table.c.expires_at < at))
                .values(holder=holder, expires_at=expires)
            )
            if renewed.rowcount:
                return True
            if conn.execute(sa.select(table.c.name).where(table.c.name == name)).first() is not None:
                return False
        try:
            with self._connect(write=True) as conn:
                conn.execute(table.insert().values(name=name, holder=holder, expires_at=expires))
        except StoreError as exc:
            if exc.transient:
                raise
            return False  # another process inserted it first
        return True

    def release_lease(self, name: str, holder: str) -> None:
        table = leases_table
        with self._connect(write=True) as conn:
            conn.execute(table.delete().where(table.c.name == name, table.c.holder == holder))


def _feedback(row: Any) -> StoredFeedback:
    values = {key: row[key] for key in row.keys() if key != "id"}  # noqa: SIM118 (a RowMapping)
    values["feedback_id"] = row["id"]
    for name in ("decided_at", "published_at"):
        if values[name] is not None:
            values[name] = _utc(values[name])
    return StoredFeedback.model_validate(values)
