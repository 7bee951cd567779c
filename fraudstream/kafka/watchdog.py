"""A watchdog for blocking Kafka calls: no call may block its caller past its timeout plus a margin.

librdkafka's blocking calls take a timeout but do not always keep it: after a short broker outage
``send_offsets_to_transaction`` was measured blocking ~600 s with a 20 s timeout (librdkafka issue #5456), and
``close()`` may wait on a rebalance. :meth:`Watchdog.call` runs the call in a worker thread (confluent-kafka
releases the GIL while librdkafka blocks) and waits for it with a deadline, waking every 50 ms to see a stop
request. When the deadline passes, or a stop request is not answered within a short grace, the worker and the
client it was using are *abandoned*: the caller gets :class:`CallAbandoned`, builds a new client and goes on,
while the old one stays referenced by its blocked worker (leaked, never destroyed under its own feet).

The last resort: after ``max_abandoned`` abandoned calls, :meth:`Watchdog.call` raises :class:`WatchdogGaveUp`,
which the services turn into a clean exit with a clear message and a non-zero code (a supervisor then starts a
fresh process). A process that abandoned a client ends with :func:`exit_process`, since the interpreter's own
shutdown would destroy that client while librdkafka still uses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fraudstream.exceptions import FraudstreamError
from fraudstream.shutdown import Stop

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MARGIN_S = 5.0
"""How long past its own timeout a call may run before it is abandoned."""
STOP_GRACE_S = 1.0
"""How long a running call may go on after a stop request (a commit normally takes a few milliseconds)."""
DEFAULT_MAX_ABANDONED = 5
_WAKE_S = 0.05

_abandoned_in_process = 0
_abandoned_lock = threading.Lock()


class CallAbandoned(FraudstreamError):  # noqa: N818 (what happened to the call, not a failure of the code)
    """A blocking Kafka call did not return in time (or after a stop request); its client must be replaced."""

    def __init__(self, what: str, waited_s: float, *, stopping: bool) -> None:
        self.what = what
        self.waited_s = waited_s
        self.stopping = stopping
        why = "a stop was requested" if stopping else "it ran past its timeout"
        super().__init__(f"{what} did not return after {waited_s:.1f} s ({why}); its client was abandoned")


class WatchdogGaveUp(FraudstreamError):  # noqa: N818
    """Too many blocking Kafka calls had to be abandoned: the process should exit and be restarted."""


@dataclass
class _Job(Generic[T]):
    fn: Callable[[], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class _Worker:
    """One daemon thread running jobs in order; abandoned (left to finish alone, then exit) when a job is stuck."""

    def __init__(self, name: str) -> None:
        self.jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                job.result = job.fn()
            except BaseException as exc:  # handed to the caller
                job.error = exc
            finally:
                job.done.set()
            job = None  # drop the client references between jobs

    def retire(self) -> None:
        self.jobs.put(None)


class Watchdog:
    """Runs blocking Kafka calls with a deadline. One per service; calls from one thread at a time."""

    def __init__(
        self,
        name: str,
        *,
        stop: Stop | None = None,
        margin_s: float = DEFAULT_MARGIN_S,
        stop_grace_s: float = STOP_GRACE_S,
        max_abandoned: int = DEFAULT_MAX_ABANDONED,
        on_abandoned: Callable[[CallAbandoned], None] | None = None,
    ) -> None:
        self.name = name
        self.stop = stop
        self.margin_s = margin_s
        self.stop_grace_s = stop_grace_s
        self.max_abandoned = max_abandoned
        self.abandoned = 0
        self._on_abandoned = on_abandoned
        self._worker: _Worker | None = None

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        timeout_s: float,
        margin_s: float | None = None,
        stop_grace_s: float | None = None,
    ) -> T:
        """``fn()``, raising what it raises; CallAbandoned when it does not return within ``timeout_s`` + margin
        (or within the grace after a stop request). ``timeout_s`` is the timeout the call itself was given."""
        margin = self.margin_s if margin_s is None else margin_s
        return self._run(what, fn, timeout_s + margin, stop_grace_s=stop_grace_s)

    def dispose(self, what: str, holder: list[Any], *, timeout_s: float = 2.0) -> None:
        """Empty ``holder`` (a list holding the last reference to a client) in the worker, so that a destructor
        that blocks (librdkafka's destroy waits for its threads) cannot block the caller.

        Move the reference in, keeping none: ``holder = [self.consumer]; self.consumer = None``. A destructor
        still running after ``timeout_s`` is abandoned (it does not count towards the last resort).
        """
        try:
            self._run(f"closing the {what}", holder.clear, timeout_s, counts=False, stop_grace_s=timeout_s)
        except CallAbandoned:
            log.warning("the %s did not close within %.0f s; left behind", what, timeout_s)

    def close(self) -> None:
        """Let the worker thread end (it is a daemon: nothing waits for it)."""
        if self._worker is not None:
            self._worker.retire()
            self._worker = None

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _run(
        self, what: str, fn: Callable[[], T], limit_s: float, *, counts: bool = True, stop_grace_s: float | None = None
    ) -> T:
        if counts and self.abandoned >= self.max_abandoned:
            raise WatchdogGaveUp(self._gave_up_message(what))
        worker = self._worker = self._worker or _Worker(f"{self.name}-kafka-call")
        job: _Job[T] = _Job(fn)
        started = time.monotonic()
        deadline = started + limit_s
        stopping = False
        worker.jobs.put(job)
        while not job.done.wait(_WAKE_S):
            now = time.monotonic()
            if not stopping and self.stop is not None and self.stop.is_set():
                stopping = True
                deadline = min(deadline, now + (self.stop_grace_s if stop_grace_s is None else stop_grace_s))
            if now >= deadline:
                self._abandon(worker, CallAbandoned(what, now - started, stopping=stopping), counts=counts)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def _abandon(self, worker: _Worker, error: CallAbandoned, *, counts: bool) -> None:
        global _abandoned_in_process
        worker.retire()  # it exits once the stuck job returns, if ever
        self._worker = None
        with _abandoned_lock:
            _abandoned_in_process += 1
        if counts:
            self.abandoned += 1
        if counts and not error.stopping:
            log.error("%s (%d of at most %d)", error, self.abandoned, self.max_abandoned)
        if self._on_abandoned is not None:
            self._on_abandoned(error)
        raise error

    def _gave_up_message(self, what: str) -> str:
        return (
            f"{self.abandoned} blocking Kafka calls of the {self.name} did not return within their timeouts "
            f"(librdkafka stuck?); not starting {what}: exiting so that a fresh process takes over"
        )


def abandoned_calls() -> int:
    """How many calls this process abandoned (their clients are still referenced by blocked threads)."""
    return _abandoned_in_process


def exit_process(code: int) -> None:
    """Exit now with ``code`` when a client was abandoned (skipping the interpreter shutdown that would destroy it
    under a blocked librdkafka call); return otherwise, so the caller exits the usual way."""
    if not abandoned_calls():
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
