"""Helpers of the fault tests (no tests here): kill -9 and restart a broker of the test's own, probe readiness,
run `fraudstream replay` as a process, and count what a service logged."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from fraudstream.kafka.local.broker import LocalBroker
from fraudstream.kafka.local.processes import process_alive
from fraudstream.settings import Settings

from .stream_support import FRAUDSTREAM, scorer_env

_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (WARNING|ERROR|CRITICAL) ", re.M)


def kill_9(broker: LocalBroker) -> float:
    """SIGKILL the broker process (no clean shutdown at all) and wait until it is gone; returns when.

    Only the broker: the lone broker's KRaft controller is a process of its own and keeps running, so the restarted
    broker registers with a live controller (which fences the killed incarnation after 5 s)."""
    pid = broker.status().pid
    assert pid is not None, "the fault broker is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while process_alive(pid):
        assert time.monotonic() < deadline, f"broker pid {pid} survived SIGKILL"
        time.sleep(0.05)
    return time.monotonic()


def restart(broker: LocalBroker) -> float:
    """Start the broker again on its home and port (beside its controller); returns when it answers metadata
    requests."""
    broker.up(timeout=240)
    return time.monotonic()


def readyz(url: str) -> tuple[int, Any] | None:
    """(status, body) of a readiness probe; None when nothing answers within 2 s."""
    try:
        response = httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None
    return response.status_code, response.json()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def warning_lines(text: str) -> list[str]:
    """The WARNING and ERROR lines of a fraudstream log (text format: ``HH:MM:SS LEVEL logger: message``)."""
    return [line for line in text.splitlines() if _LOG_LINE.match(line)]


class ReplayProcess:
    """`fraudstream replay` as a real subprocess, paced, with its output in a file."""

    def __init__(self, settings: Settings, csv: Path, log: Path, *, rate: float, start: int = 0, limit: int) -> None:
        self.log = log
        self._handle = log.open("wb")
        options = ["--rate", str(rate), "--start", str(start), "--limit", str(limit)]
        self.process = subprocess.Popen(
            [str(FRAUDSTREAM), "replay", "--data", str(csv), *options],
            env=scorer_env(settings),
            stdout=self._handle,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._handle.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self._handle.close()
