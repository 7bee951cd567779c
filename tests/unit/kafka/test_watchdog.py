"""The watchdog of blocking Kafka calls: results and errors pass through, a stuck call is abandoned at its
deadline (or a second after a stop request), a slow one is reported, and the last resort is a clear error, never
a hang."""

from __future__ import annotations

import threading
import time

import pytest

from fraudstream.kafka import watchdog as module
from fraudstream.kafka.watchdog import CallAbandoned, Watchdog, WatchdogGaveUp


def test_a_call_returns_its_result_or_raises_its_error() -> None:
    watchdog = Watchdog("test", margin_s=1.0)
    assert watchdog.call("add", lambda: 1 + 1, timeout_s=1.0) == 2

    def fails() -> None:
        raise ValueError("broker said no")

    with pytest.raises(ValueError, match="broker said no"):
        watchdog.call("fail", fails, timeout_s=1.0)
    assert watchdog.abandoned == 0


def test_a_call_past_its_timeout_and_margin_is_abandoned_and_the_next_call_gets_a_fresh_worker() -> None:
    release = threading.Event()
    watchdog = Watchdog("test", margin_s=0.2)
    started = time.monotonic()
    with pytest.raises(CallAbandoned, match="send_offsets_to_transaction did not return after"):
        watchdog.call("send_offsets_to_transaction", release.wait, timeout_s=0.3)
    assert 0.45 <= time.monotonic() - started < 2.0
    assert (watchdog.abandoned, watchdog.stuck) == (1, 1)
    assert module.stuck_calls() >= 1
    assert watchdog.call("next", lambda: "fresh worker", timeout_s=1.0) == "fresh worker"
    release.set()
    deadline = time.monotonic() + 5
    while watchdog.stuck and time.monotonic() < deadline:  # the call returned at last: its worker ends
        time.sleep(0.01)
    assert watchdog.stuck == 0


def test_a_stop_request_abandons_a_stuck_call_within_its_grace() -> None:
    stop = threading.Event()
    release = threading.Event()
    watchdog = Watchdog("test", stop=stop, margin_s=600.0, stop_grace_s=0.3)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(CallAbandoned) as caught:
        watchdog.call("commit_transaction", release.wait, timeout_s=600.0)
    assert caught.value.stopping
    assert time.monotonic() - started < 2.0
    release.set()


def test_too_many_calls_stuck_at_once_end_in_a_clear_error_not_a_hang() -> None:
    release = threading.Event()
    watchdog = Watchdog("scorer", margin_s=0.0, max_stuck=2)
    for _ in range(2):
        with pytest.raises(CallAbandoned):
            watchdog.call("init_transactions", release.wait, timeout_s=0.05)
    with pytest.raises(WatchdogGaveUp, match="2 blocking Kafka calls of the scorer are stuck"):
        watchdog.call("init_transactions", release.wait, timeout_s=0.05)
    release.set()


def test_a_slow_call_is_reported_once() -> None:
    slow: list[str] = []
    watchdog = Watchdog("test", slow_s=0.1, on_slow=lambda what, seconds: slow.append(what))
    assert watchdog.call("commit_transaction", lambda: time.sleep(0.3) or "done", timeout_s=5.0) == "done"
    assert slow == ["commit_transaction"]


def test_dispose_runs_the_destructor_in_the_worker() -> None:
    destroyed_in: list[str] = []

    class Client:
        def __del__(self) -> None:
            destroyed_in.append(threading.current_thread().name)

    watchdog = Watchdog("test")
    holder = [Client()]
    watchdog.dispose("client", holder)
    assert holder == []
    assert destroyed_in == ["test-kafka-call"]


def test_exit_process_returns_when_nothing_was_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(module, "_stuck_in_process", set())
    monkeypatch.setattr(module.os, "_exit", exits.append)
    module.exit_process(0)
    assert exits == []
    monkeypatch.setattr(module, "_stuck_in_process", {object()})
    module.exit_process(3)
    assert exits == [3]
