"""GracefulStop: a SIGTERM becomes a flag that wakes a waiting loop at once; a second one interrupts."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from fraudstream.shutdown import GracefulStop


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
