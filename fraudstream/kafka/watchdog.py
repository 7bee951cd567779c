"""A watchdog for blocking Kafka calls: no call may block its caller past its timeout plus a margin.

librdkafka's blocking calls take a timeout but do not always keep it: after a short broker outage
``send_offsets_to_transaction`` was measured blocking ~600 s with a 20 s timeout (librdkafka issue #5456), and a
synchronous commit or ``close()`` may wait on a coordinator that is gone. :meth:`Watchdog.call` runs the call in a
worker thread (confluent-kafka releases the GIL while librdkafka blocks) and waits for it with a deadline, waking
every 50 ms to see a stop request. When the deadline passes, or a stop request is not answered within a short
grace, the worker and the client it was using are *abandoned*: the caller gets :class:`CallAbandoned`, builds a
new client and goes on, while the old one stays referenced by its blocked worker (never destroyed under
librdkafka's feet); when the call returns at last, the worker drops it and ends.

The last resort: while ``max_stuck`` abandoned calls are still blocked, :meth:`Watchdog.call` raises
:class:`WatchdogGaveUp`, which the services turn into a clean exit with a clear message and a non-zero code (a
supervisor then starts a fresh process). A process with a call still blocked ends with :func:`exit_process`,
since the interpreter's own shutdown would destroy that client while librdkafka still uses it.
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
SLOW_S = 2.0
"""A call still running after this long is reported to ``on_slow`` once (e.g. as a sign of an outage)."""
DEFAULT_MAX_STUCK = 3
_WAKE_S = 0.05

_stuck_in_process: set[_Worker] = set()
_stuck_lock = threading.Lock()


class CallAbandoned(FraudstreamError):  # noqa: N818 (what happened to the call, not a failure of the code)
    """A blocking Kafka call did not return in time (or after a stop request); its client must be replaced."""

    def __init__(self, what: str, waited_s: float, *, stopping: bool) -> None:
        self.what = what
        self.waited_s = waited_s
        self.stopping = stopping
        why = "a stop was requested" if stopping else "it ran past its timeout"
        super().__init__(f"{what} did not return after {waited_s:.1f} s ({why}); its client was abandoned")


class WatchdogGaveUp(FraudstreamError):  # noqa: N818
    """Too many blocking Kafka calls are stuck at once: the process should exit and be restarted."""


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
        self.abandoned = False
        self.on_unstuck: Callable[[_Worker], None] | None = None
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
            job = None  # drop the client references between jobs (an abandoned client is destroyed here)
            if self.abandoned and self.on_unstuck is not None:
                self.on_unstuck(self)

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
        max_stuck: int = DEFAULT_MAX_STUCK,
        on_abandoned: Callable[[CallAbandoned], None] | None = None,
        on_slow: Callable[[str, float], None] | None = None,
        slow_s: float = SLOW_S,
    ) -> None:
        self.name = name
        self.stop = stop
        self.margin_s = margin_s
        self.stop_grace_s = stop_grace_s
        self.max_stuck = max_stuck
        self.slow_s = slow_s
        self.abandoned = 0
        """Calls abandoned so far (those still blocked are :attr:`stuck`)."""
        self._on_abandoned = on_abandoned
        self._on_slow = on_slow
        self._stuck: set[_Worker] = set()
        self._lock = threading.Lock()
        self._worker: _Worker | None = None

    @property
    def stuck(self) -> int:
        """Abandoned calls that have not returned yet."""
        with self._lock:
            return len(self._stuck)

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
        if not holder:
            return
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
        if counts and self.stuck >= self.max_stuck:
            raise WatchdogGaveUp(self._gave_up_message(what))
        worker = self._worker = self._worker or _Worker(f"{self.name}-kafka-call")
        job: _Job[T] = _Job(fn)
        started = time.monotonic()
        deadline = started + limit_s
        stopping = slow_told = False
        worker.jobs.put(job)
        while not job.done.wait(_WAKE_S):
            now = time.monotonic()
            if not stopping and self.stop is not None and self.stop.is_set():
                stopping = True
                deadline = min(deadline, now + (self.stop_grace_s if stop_grace_s is None else stop_grace_s))
            if not slow_told and counts and now - started >= self.slow_s and self._on_slow is not None:
                slow_told = True
                self._on_slow(what, now - started)
            if now >= deadline:
                self._abandon(worker, CallAbandoned(what, now - started, stopping=stopping), counts=counts)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def _abandon(self, worker: _Worker, error: CallAbandoned, *, counts: bool) -> None:
        self._worker = None
        if counts:
            with self._lock:
                self._stuck.add(worker)
        with _stuck_lock:
            _stuck_in_process.add(worker)
        worker.on_unstuck = self._unstuck
        worker.abandoned = True
        worker.retire()  # it exits once the stuck job returns, if ever
        if counts:
            self.abandoned += 1
            if not error.stopping:
                log.error("%s (%d still stuck, at most %d)", error, self.stuck, self.max_stuck)
            if self._on_abandoned is not None:
                self._on_abandoned(error)
        raise error

    def _unstuck(self, worker: _Worker) -> None:
        with self._lock:
            self._stuck.discard(worker)
        with _stuck_lock:
            _stuck_in_process.discard(worker)

    def _gave_up_message(self, what: str) -> str:
        return (
            f"{self.stuck} blocking Kafka calls of the {self.name} are stuck past their timeouts (librdkafka "
            f"wedged?); not starting {what}: exiting so that a fresh process takes over"
        )


def stuck_calls() -> int:
    """Abandoned calls of this process still blocked (their clients are referenced by those threads)."""
    with _stuck_lock:
        return len(_stuck_in_process)


def exit_process(code: int) -> None:
    """Exit now with ``code`` when an abandoned call is still blocked (skipping the interpreter shutdown that would
    destroy its client under librdkafka); return otherwise, so the caller exits the usual way."""
    if not stuck_calls():
        return
    log.warning("%d Kafka calls are still stuck: exiting without the interpreter's teardown", stuck_calls())
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
