"""The sinks (alerts, monitoring) in threads of their own: inside the API process (:class:`SinkThread`, which the
app's lifespan starts and stops), or as the one pair of sinks of several API replicas (:func:`run_sink`, what
``fraudstream sink`` calls).

Kafka errors never stop the sink (it rides out outages and replaces its consumer). Should it stop on anything
else (a bug), the API's thread logs it, /readyz reports it, and the sink starts again after a back-off; the
stand-alone sink stops and raises it, so its supervisor sees a failed process and restarts it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from api.sink.alerts import AlertSink
from api.store.alerts import AlertRepository
from fraudstream.settings import Settings
from fraudstream.shutdown import Stop

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


class _EitherStop:
    """Set when the caller's stop is, or when one of the sinks failed (so the other stops too)."""

    def __init__(self, outer: Stop) -> None:
        self.outer = outer
        self.failed = threading.Event()

    def is_set(self) -> bool:
        return self.failed.is_set() or self.outer.is_set()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.failed.wait(min(left, 0.2))
        return True


def run_sink(
    settings: Settings,
    stop: Stop,
    *,
    on_start: Callable[[AlertSink], None] | None = None,
    on_status: Callable[[AlertSink], None] | None = None,
    status_interval_s: float = 10.0,
) -> None:
    """Run the alert sink and the monitoring sink into the store ``settings`` names until ``stop`` is set.

    Each sink works in a thread, so the caller's thread stays free for signals and for ``on_status`` (each sink,
    every ``status_interval_s`` and once at the end); ``on_start`` sees each sink before it consumes. Whatever
    stopped a sink other than ``stop`` stops the other one too and is raised, after the store's connections are
    closed.
    """
    from api.sink.monitoring import MonitoringSink

    store = AlertRepository.from_url(settings.alert_store)
    store.create_schema()
    sinks = [AlertSink(settings, store), MonitoringSink(settings, store)]
    either = _EitherStop(stop)
    failure: list[BaseException] = []

    def work(one: AlertSink) -> None:
        try:
            one.run(either)
        except BaseException as exc:
            failure.append(exc)
            either.failed.set()

    for one in sinks:
        if on_start is not None:
            on_start(one)
    workers = [
        threading.Thread(target=work, args=(one,), name=one.label.replace(" ", "-"), daemon=True) for one in sinks
    ]
    for worker in workers:
        worker.start()
    try:
        while any(worker.is_alive() for worker in workers):
            if not either.wait(status_interval_s) and on_status is not None:
                for one in sinks:
                    on_status(one)
            if either.is_set():
                for worker in workers:
                    worker.join()
    finally:
        if on_status is not None:
            for one in sinks:
                on_status(one)
        store.engine.dispose()
    if failure:
        raise failure[0]
