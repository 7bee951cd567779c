"""Cooperative stop on Ctrl-C / SIGTERM: long-running loops check ``stop.is_set()`` between units of work."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType

log = logging.getLogger(__name__)


class GracefulStop:
    """Context manager that turns SIGINT and SIGTERM into a flag; a second signal forces KeyboardInterrupt.

    Outside the main thread (where signal handlers cannot be installed) it is a plain flag that callers
    set with :meth:`set`.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
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
        if self._event.is_set():
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        log.info("%s received: finishing the current unit of work, then stopping", self.signal_name)
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once when stopped; True when stopped."""
        return self._event.wait(timeout)
