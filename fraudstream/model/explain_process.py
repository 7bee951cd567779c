"""Reason codes computed in a process of their own (``FRAUD_SCORER_EXPLAIN_PROCESS``).

Exact TreeSHAP is shap's C++, which holds the GIL: milliseconds a flagged row, up to the budget (8 ms a batch by
default), spent in the scorer's loop thread, where every message's decoding waits for it. Here the forest is
loaded in one worker process (``spawn``: a fresh interpreter, no copy of the scorer's Kafka threads), and a
batch's flagged rows are sent there when the batch is scored; the commit thread collects the explanations just
before it begins the batch's transaction, while the loop thread decodes the next batch. Only the flagged rows
travel (a few per batch of thousands at 0.17% frauds), and back their explanations.

The explanations are the same as in-process: the same :class:`~fraudstream.model.explain.ForestExplainer`, with
the same policy (its exact-row budget and running cost estimate live in the worker). When the worker cannot load
the forest or dies, the error is logged once and the explanations are None (alerts go out without reasons), as
:class:`~fraudstream.model.explain.ExplainerLoader` does; a worker that died is started again for the next call.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from fraudstream.model.explain import ExplainPolicy, ForestExplainer, QuantileSource, forest_from_skops
from fraudstream.schemas import Explanation

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 30.0
"""Longest wait for one batch's explanations (they take milliseconds); beyond it, that batch's go without."""

_WORKER: ForestExplainer | None = None
_LOAD_ERROR = "not loaded"


class LoadFailedError(Exception):
    """The worker could not build its explainer (the message says why, as the in-process loader would)."""


def _start_worker(
    data: bytes, policy: ExplainPolicy, profile: QuantileSource | None, encode: Callable[[np.ndarray], Any] | None
) -> None:  # pragma: no cover (runs in the worker process)
    global _WORKER, _LOAD_ERROR
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the scorer's to handle; it closes us
    parent = multiprocessing.parent_process()
    if parent is not None:  # a scorer killed with kill -9 leaves no worker behind (300 MB each)
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="parent-watch", daemon=True).start()
    try:
        _WORKER = ForestExplainer(forest_from_skops(data), policy, profile, encode)
    except Exception as exc:  # skops, sklearn and shap raise many kinds: told to the scorer by _exact_row_s
        _LOAD_ERROR = f"{exc.__class__.__name__}: {exc}"


def _exit_with(sentinel: int) -> None:  # pragma: no cover (runs in the worker process)
    multiprocessing.connection.wait([sentinel])  # ready once the parent process is gone
    os._exit(0)


def _explain(features: np.ndarray) -> list[Explanation]:  # pragma: no cover (runs in the worker process)
    if _WORKER is None:
        raise LoadFailedError(_LOAD_ERROR)
    return _WORKER.explain(features)


def _exact_row_s() -> float:  # pragma: no cover (runs in the worker process)
    if _WORKER is None:
        raise LoadFailedError(_LOAD_ERROR)
    return _WORKER.exact_row_s


Later = Callable[[], "list[Explanation | None]"]
"""The explanations of rows sent to be explained, once asked for (waits for them)."""


class ExplainerProcess:
    """A ForestExplainer in a worker process: :meth:`submit` sends rows, the returned callable waits for their
    explanations. Has the waiting interface of ExplainerLoader (``ready``, ``loaded``, ``wait_s``, ``label``,
    ``explain``), so the scorer waits for it before it takes partitions."""

    def __init__(
        self,
        data: bytes,
        policy: ExplainPolicy,
        profile: QuantileSource | None = None,
        encode: Callable[[np.ndarray], Any] | None = None,
        *,
        label: str,
    ) -> None:
        self.label = label
        self.wait_s = policy.load_wait_s
        self.error: str | None = None
        self.load_seconds: float | None = None
        self._args = (data, policy, profile, encode)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._loaded: Future[float] = self._start()

    def _start(self) -> Future[float]:
        started = time.perf_counter()
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=self._args,
        )
        loaded = self._pool.submit(_exact_row_s)  # runs once the worker holds the forest
        loaded.add_done_callback(lambda done: self._on_loaded(done, started))
        return loaded

    def _on_loaded(self, done: Future[float], started: float) -> None:
        try:
            exact_row_s = done.result()
        except Exception as exc:  # the worker's skops, sklearn or shap (LoadFailedError), or its death
            self.error = str(exc) if isinstance(exc, LoadFailedError) else f"{exc.__class__.__name__}: {exc}"
            log.error("cannot load the explainer of %s, alerts go out without reasons: %s", self.label, self.error)
            return
        self.load_seconds = time.perf_counter() - started
        log.info(
            "explainer loaded in its own process",
            extra={"model": self.label, "seconds": round(self.load_seconds, 2), "exact_row_ms": exact_row_s * 1000},
        )

    @property
    def ready(self) -> bool:
        return self._loaded.done()

    def loaded(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the worker to load the forest (quietly); True once it has, or failed."""
        try:
            self._loaded.exception(timeout)
        except FutureTimeout:
            return False
        return True

    def wait(self, timeout: float | None = None) -> ExplainerProcess | None:
        """This explainer once its worker holds the forest (None when loading failed or is not done in time)."""
        if not self.loaded(self.wait_s if timeout is None else timeout):
            log.warning("the explainer of %s is not loaded after %.0f s: no reasons for now", self.label, self.wait_s)
            return None
        return None if self.error else self

    def submit(self, features: np.ndarray) -> Later:
        """Send the rows (an (n, 30) matrix in FEATURES order) to be explained; call the result for them."""
        rows = len(features)
        if rows == 0 or self.error is not None:
            return lambda: [None] * rows
        with self._lock:
            pool = self._pool
            if pool is None:  # closed
                return lambda: [None] * rows
            try:
                future = pool.submit(_explain, np.ascontiguousarray(features, dtype=np.float32))
            except BrokenProcessPool:
                self._restart()
                return lambda: [None] * rows
        return lambda: self._result(future, rows)

    def explain(self, features: np.ndarray) -> list[Explanation | None]:
        return self.submit(features)()

    def _result(self, future: Future[list[Explanation]], rows: int) -> list[Explanation | None]:
        try:
            return list(future.result(timeout=max(CALL_TIMEOUT_S, self.wait_s)))
        except BrokenProcessPool:
            log.error("the explainer process of %s died: this batch's alerts go out without reasons", self.label)
            with self._lock:
                self._restart()
        except FutureTimeout:
            log.error("the explainer process of %s did not answer in time: alerts without reasons", self.label)
        except Exception as exc:  # shap raising on a row: that batch goes without reasons, the next may not
            log.error("explaining a batch with %s failed (%s): its alerts go out without reasons", self.label, exc)
        return [None] * rows

    def _restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._loaded = self._start()

    def close(self, *, wait: bool = True) -> None:
        """Stop the worker. ``wait=False`` (a model replaced while its last batch may still be committing): the
        rows already sent are explained first, then the worker exits."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=wait, cancel_futures=wait)
                self._pool = None
