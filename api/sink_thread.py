"""A sink (alerts, monitoring) inside the API process: a daemon thread the app's lifespan starts and stops.

Kafka errors never stop the sink (it rides out outages and replaces its consumer); should it stop on anything
else (a bug), the thread logs it, /readyz reports it, and the sink starts again after a back-off.
"""

from __future__ import annotations

import logging
import threading

from api.sink import AlertSink

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (1.0, 30.0)


class SinkThread:
    """Runs an AlertSink in a daemon thread inside the API process; ``stop()`` ends it after the current batch."""

    def __init__(self, sink: AlertSink, name: str = "alert-sink") -> None:
        self.sink = sink
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff, longest = RESTART_BACKOFF_S
        while not self._stop.is_set():
            try:
                self.sink.run(self._stop)
            except Exception:
                log.exception(
                    "the %s stopped on an error (/readyz reports it); restarting in %.0f s", self.name, backoff
                )
                if self._stop.wait(backoff):
                    return
                self.restarts += 1
                backoff = min(backoff * 2, longest)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the %s did not stop within %.0f s", self.name, timeout)
