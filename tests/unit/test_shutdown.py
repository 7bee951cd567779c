"""GracefulStop: a SIGTERM becomes a flag that wakes a waiting loop at once; a second one interrupts."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from fraudstream.shutdown import GracefulStop, stop_on_signals


def test_sigterm_wakes_a_loop_waiting_on_the_stop_and_a_second_one_interrupts() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with GracefulStop() as stop:
        assert signal.getsignal(signal.SIGTERM) != before
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        started = time.monotonic()
        woke = stop.wait(10.0)  # the main thread waits inside Event.wait when the signal lands
        assert woke
        assert time.monotonic() - started < 2.0
        assert stop.is_set()
        assert stop.signal_name == "SIGTERM"
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(KeyboardInterrupt):
            time.sleep(2.0)  # the second signal's handler runs here and raises
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back


def test_a_service_without_a_stop_gets_one_that_signals_set_and_gives_the_handlers_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert isinstance(stop, GracefulStop)
        assert signal.getsignal(signal.SIGTERM) != before
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        assert stop.wait(10.0)
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_stop_the_caller_owns_is_used_as_it_is_and_no_handler_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    event = threading.Event()
    with stop_on_signals(event) as stop:
        assert stop is event
        assert signal.getsignal(signal.SIGTERM) == before
