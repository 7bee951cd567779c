"""The alert sink in a thread of its own: inside the API process (:class:`SinkThread`, which the app's lifespan
starts and stops), or as the one sink of several replicas (:func:`run_sink`, what ``fraudstream sink`` calls).

Kafka errors never stop the sink (it rides out outages and replaces its consumer). Should it stop on anything
else (a bug), the API's thread logs it, /readyz reports it, and the sink starts again after a back-off; the
stand-alone sink stops and raises it, so its supervisor sees a failed process and restarts it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from api.sink import AlertSink
from api.store import AlertRepository
from fraudstream.settings import Settings
from fraudstream.shutdown import Stop

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (1.0, 30.0)


class SinkThread:
    """Runs an AlertSink in a daemon thread inside the API process; ``stop()`` ends it after the current batch."""

    def __init__(self, sink: AlertSink) -> None:
        self.sink = sink
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alert-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff, longest = RESTART_BACKOFF_S
        while not self._stop.is_set():
            try:
                self.sink.run(self._stop)
            except Exception:
                log.exception("the alert sink stopped on an error (/readyz reports it); restarting in %.0f s", backoff)
                if self._stop.wait(backoff):
                    return
                self.restarts += 1
                backoff = min(backoff * 2, longest)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the alert sink did not stop within %.0f s", timeout)


def run_sink(
    settings: Settings,
    stop: Stop,
    *,
    on_start: Callable[[AlertSink], None] | None = None,
    on_status: Callable[[AlertSink], None] | None = None,
    status_interval_s: float = 10.0,
) -> None:
    """Run the alert sink into the store ``settings`` names until ``stop`` is set, then return.

    The sink works in a thread, so the caller's thread stays free for signals and for ``on_status`` (every
    ``status_interval_s``, and once at the end); ``on_start`` sees the sink before it consumes. Whatever stopped the
    sink other than ``stop`` is raised, after the store's connections are closed.
    """
    store = AlertRepository.from_url(settings.alert_store)
    store.create_schema()
    sink = AlertSink(settings, store)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            sink.run(stop)
        except BaseException as exc:
            failure.append(exc)

    if on_start is not None:
        on_start(sink)
    worker = threading.Thread(target=work, name="alert-sink", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(status_interval_s)
            if worker.is_alive() and on_status is not None:
                on_status(sink)
    finally:
        if on_status is not None:
            on_status(sink)
        store.engine.dispose()
    if failure:
        raise failure[0]
