"""What else a batch writes in its transaction: the hook through which monitoring (and anything like it) sees
every scored batch and adds its own records to the same Kafka transaction.

The loop calls an observer at three points of each batch, always from the loop's thread and in batch order:

1. :meth:`BatchObserver.records` after the batch is scored and before its transaction begins: the observer
   reads the batch's :class:`~scorer.batch.ScoredRows` and returns records for other topics (e.g. a
   monitoring window that closes with this batch). They are produced in the batch's transaction.
2. :meth:`BatchObserver.committed` once that transaction committed: the observer makes the batch's effect on
   its state permanent.
3. :meth:`BatchObserver.aborted` when it aborted (the batch will be consumed again from the committed
   offsets): the observer forgets the batch's effect, so a batch is counted exactly once, as its alerts are.

When nothing was consumed, the loop asks :meth:`BatchObserver.pending` for records to commit on their own (e.g.
a window whose time is up, or, with ``final`` on a clean stop, the open one), commits them in a transaction of
their own (no new offsets), then calls ``committed`` or ``aborted`` with that empty batch.

With the commit overlapping the next batch (:mod:`scorer.loop`), batch n+1 is consumed and scored while batch
n's transaction commits in another thread, but the observer is still called only from the loop thread, and
``records(n+1)`` only after batch n's ``committed`` or ``aborted``: an observer sees the three calls of one batch
before the next batch's ``records``. A batch scored while its predecessor aborted is dropped before its
``records`` (the rewind delivers it again): the observer never hears of it.

When ``commit_transaction``'s outcome is unknown (a timeout; the loop replaces the producer and rewinds to the
committed offsets) the loop reports ``aborted``, though the transaction may have committed. An observer whose
state must match the committed offsets writes that state in every transaction and reads it back after an abort
(the monitor does: :mod:`scorer.monitor_state`).

An observer makes no Kafka call per batch (the monitor reads its own state back, at start and after an abort, in a
few seconds at most) and raises nothing for a batch it cannot measure (it logs and returns no
records): a monitoring problem must never stop scoring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fraudstream.kafka.records import OutRecord
    from scorer.batch import ScoredBatch


class BatchObserver(Protocol):
    def records(self, batch: ScoredBatch) -> list[tuple[str, OutRecord]]: ...

    def committed(self, batch: ScoredBatch) -> None: ...

    def aborted(self, batch: ScoredBatch) -> None: ...

    def pending(self, *, final: bool) -> list[tuple[str, OutRecord]]: ...

    def prepare(self) -> None:
        """Once, at start, after the producer's init_transactions and before any batch, off the loop thread (it
        overlaps the model's loading): e.g. read committed state back, out of the first batch's time."""


class NoObserver:
    """The observer when nothing watches the batches (monitoring off)."""

    def records(self, batch: ScoredBatch) -> list[tuple[str, OutRecord]]:
        return []

    def committed(self, batch: ScoredBatch) -> None:
        return None

    def aborted(self, batch: ScoredBatch) -> None:
        return None

    def pending(self, *, final: bool) -> list[tuple[str, OutRecord]]:
        return []

    def prepare(self) -> None:
        return None
