"""Cooperative stop on Ctrl-C / SIGTERM: long-running loops check ``stop.is_set()`` between units of work.

:class:`Stop` is the one protocol every service loop takes (the scorer, the sink, the replay, the Kafka
watchdog): ``threading.Event`` and :class:`GracefulStop` both fit it. :func:`stop_on_signals` is the guard each
service's ``run_...()`` puts around its loop.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Protocol

log = logging.getLogger(__name__)


class Stop(Protocol):
    """A stop request: ``is_set()`` asks, ``wait(timeout)`` sleeps until it is set (True) or the timeout passes."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


class GracefulStop:
    """Context manager that turns SIGINT and SIGTERM into a flag; a second signal forces KeyboardInterrupt.

    Outside the main thread (where signal handlers cannot be installed) it is a plain flag that callers
    set with :meth:`set`.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._flag = False
        self._previous: dict[int, object] = {}
        self.signal_name: str | None = None

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._flag:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        log.info("%s received: finishing the current unit of work, then stopping", self.signal_name)
        self._flag = True
        # Not self._event.set() here: the handler runs in the main thread between two bytecodes, possibly while
        # that thread holds the Event's internal (non-reentrant) lock inside wait(), which would deadlock. A
        # short-lived thread sets it as soon as the lock is free.
        threading.Thread(target=self._event.set, name="stop-signal", daemon=True).start()

    def set(self) -> None:
        self._flag = True
        self._event.set()

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once when stopped; True when stopped."""
        return self._flag or self._event.wait(timeout) or self._flag


@contextlib.contextmanager
def stop_on_signals(stop: Stop | None = None) -> Iterator[Stop]:
    """The stop a service runs with: ``stop`` when the caller gives one, else a new :class:`GracefulStop`.

    A :class:`GracefulStop` (given or new) turns SIGINT and SIGTERM into it while the block runs (from the main
    thread); any other stop (e.g. a ``threading.Event`` a test or a supervising thread sets) is used as it is.
    """
    stop = stop if stop is not None else GracefulStop()
    if isinstance(stop, GracefulStop):
        with stop:
            yield stop
    else:
        yield stop
