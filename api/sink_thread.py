"""The alert sink inside the API process: a daemon thread the app's lifespan starts and stops."""

from __future__ import annotations

import logging
import threading

from api.sink import AlertSink

log = logging.getLogger(__name__)


class SinkThread:
    """Runs an AlertSink in a daemon thread inside the API process; ``stop()`` ends it after the current batch."""

    def __init__(self, sink: AlertSink) -> None:
        self.sink = sink
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alert-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.sink.run(self._stop)
        except Exception:
            log.exception("the alert sink stopped on an error; /readyz reports it")

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the alert sink did not stop within %.0f s", timeout)
