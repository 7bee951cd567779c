"""Several copies of one service, each a process of its own, supervised by the process that started them.

CPython runs one thread of Python at a time, so a service whose Python work is its bottleneck uses one core however
many threads it has; the scorer is one (benchmarks/README.md, "workers"). :class:`Supervisor` runs ``count`` copies
of a command, each with its own environment (``env_of(index)``: for the scorer, its own transactional.id and
metrics port), and keeps them running:

* **stop**: on Ctrl-C or SIGTERM each worker gets one SIGTERM (its own graceful stop: the scorer finishes its
  transaction) and is waited for, ``stop_timeout_s`` at most, then killed. The workers run in a session of their
  own, so a terminal's Ctrl-C reaches each of them once, through the supervisor, never twice (a second signal
  forces a worker out);
* **a worker that dies** (killed, crashed, or any exit the supervisor did not ask for) is started again after a
  back-off: 1 s, doubled while it keeps dying within a minute of its start, 30 s at most. An exit code in ``fatal``
  (a configuration the settings or Kafka refuse: every copy would fail alike) stops them all instead, and the
  supervisor exits with it;
* **a supervisor that dies** (``kill -9``): on Linux each worker has asked the kernel (``PR_SET_PDEATHSIG``) for a
  SIGTERM when its parent goes, so no worker is left running unsupervised.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from fraudstream.shutdown import Stop

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STEADY_S = 60.0
"""A worker up this long is healthy again: its next death is restarted after the first back-off."""


def _die_with_parent() -> None:  # pragma: no cover (runs in the child, between fork and exec)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    backoff_s: float = BACKOFF_S
    restarts: int = 0


class Supervisor:
    """``count`` copies of ``command``, worker ``i`` with the environment ``env_of(i)``; see the module docstring."""

    def __init__(
        self,
        command: Sequence[str],
        count: int,
        env_of: Callable[[int], Mapping[str, str]],
        *,
        stop: Stop,
        fatal: Collection[int] = (),
        stop_timeout_s: float = 60.0,
        poll_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        self.command = list(command)
        self.env_of = env_of
        self.stop = stop
        self.fatal = frozenset(fatal)
        self.stop_timeout_s = stop_timeout_s
        self.poll_s = poll_s
        self.clock = clock
        self.workers = [_Worker(index) for index in range(count)]

    def run(self) -> int:
        """Start the workers, keep them running until stopped; 0 when all stopped on request, else the fatal code
        a worker exited with."""
        for worker in self.workers:
            self._start(worker)
        code = 0
        try:
            while not self.stop.wait(self.poll_s):
                fatal = self._tend()
                if fatal is not None:
                    code = fatal
                    break
        finally:
            failed = self._stop_all()
        return code or failed

    @property
    def pids(self) -> list[int | None]:
        return [worker.process.pid if worker.process else None for worker in self.workers]

    def _start(self, worker: _Worker) -> None:
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        worker.process = subprocess.Popen(
            self.command, env=dict(self.env_of(worker.index)), start_new_session=True, preexec_fn=preexec
        )
        worker.started, worker.restart_at = self.clock(), None
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)

    def _tend(self) -> int | None:
        """Restart the workers that died (after their back-off); a fatal exit code, when one came."""
        now = self.clock()
        for worker in self.workers:
            if worker.restart_at is not None:
                if now >= worker.restart_at:
                    worker.restarts += 1
                    self._start(worker)
                continue
            assert worker.process is not None
            code = worker.process.poll()
            if code is None:
                continue
            if code in self.fatal:
                log.error(
                    "worker %d exited with %d: its configuration is refused; stopping every worker", worker.index, code
                )
                return code
            if now - worker.started >= STEADY_S:
                worker.backoff_s = BACKOFF_S
            log.warning(
                "worker %d (pid %d) %s; started again in %.0f s",
                worker.index,
                worker.process.pid,
                _describe(code),
                worker.backoff_s,
            )
            worker.restart_at = now + worker.backoff_s
            worker.backoff_s = min(MAX_BACKOFF_S, worker.backoff_s * 2)
        return None

    def _stop_all(self) -> int:
        """SIGTERM to each running worker, then wait (killing what outlives the timeout); 0 when every worker
        exited 0 or by that SIGTERM (or had died and was waiting for its restart), else the first other code."""
        running = [w.process for w in self.workers if w.process is not None and w.restart_at is None]
        for process in running:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = self.clock() + self.stop_timeout_s
        codes: list[int] = []
        for process in running:
            try:
                codes.append(process.wait(timeout=max(0.0, deadline - self.clock())))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop within %.0f s: killed", process.pid, self.stop_timeout_s)
                process.kill()
                codes.append(process.wait())
        # killed by the SIGTERM asked for (one still starting, before its handler): stopped as asked
        return next((code for code in codes if code not in (0, -signal.SIGTERM)), 0)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with {code}"
