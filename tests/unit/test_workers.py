"""fraudstream.workers.Supervisor with real child processes (small Python programs): restarts, fatal exits, stop."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from fraudstream.workers import Supervisor

# A worker: writes its pid, then sleeps until SIGTERM, which it answers by writing "stopped" and exiting 0.
WORKER = """
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1]) / f"{os.environ['INDEX']}-{os.getpid()}"
def stop(*_):
    out.write_text("stopped")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
out.write_text("running")
code = os.environ.get("EXIT_WITH")
if code:
    sys.exit(int(code))
while True:
    time.sleep(0.05)
"""


def supervisor(tmp_path: Path, count: int, stop: threading.Event, **env: str) -> Supervisor:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    runs = tmp_path / "runs"
    runs.mkdir(exist_ok=True)
    return Supervisor(
        [sys.executable, str(script), str(runs)],
        count,
        lambda index: {**os.environ, "INDEX": str(index), **env},
        stop=stop,
        fatal=(1, 2),
        poll_s=0.05,
        stop_timeout_s=10,
    )


def runs_of(tmp_path: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in (tmp_path / "runs").iterdir()}


def wait_for(condition: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def run_in_thread(target: Supervisor) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(target.run()), daemon=True)
    thread.start()
    return thread, codes


def test_each_worker_gets_its_own_environment_and_all_stop_cleanly_on_request(tmp_path: Path) -> None:
    stop = threading.Event()
    workers = supervisor(tmp_path, 3, stop)
    thread, codes = run_in_thread(workers)
    wait_for(lambda: len(runs_of(tmp_path)) == 3)
    assert sorted(name.split("-")[0] for name in runs_of(tmp_path)) == ["0", "1", "2"]
    stop.set()
    thread.join(15)
    assert codes == [0]
    assert set(runs_of(tmp_path).values()) == {"stopped"}  # each had its SIGTERM, and its own graceful exit


def test_a_killed_worker_is_started_again_and_the_others_run_on(tmp_path: Path) -> None:
    stop = threading.Event()
    workers = supervisor(tmp_path, 2, stop)
    thread, codes = run_in_thread(workers)
    wait_for(lambda: len(runs_of(tmp_path)) == 2)
    first, other = workers.pids
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(runs_of(tmp_path)) == 3, timeout=10)  # back after the 1 s back-off
    assert workers.pids[1] == other
    assert workers.pids[0] not in (None, first)
    assert workers.workers[0].restarts == 1
    stop.set()
    thread.join(15)
    assert codes == [0]
    assert runs_of(tmp_path)[f"0-{first}"] == "running"  # killed: no stop of its own
    assert list(runs_of(tmp_path).values()).count("stopped") == 2


@pytest.mark.parametrize("code", [1, 2])
def test_a_fatal_exit_stops_every_worker_and_is_the_supervisors_code(tmp_path: Path, code: int) -> None:
    stop = threading.Event()
    workers = supervisor(tmp_path, 2, stop, EXIT_WITH=str(code))
    thread, codes = run_in_thread(workers)
    thread.join(15)
    assert codes == [code]
    assert all(worker.restarts == 0 for worker in workers.workers)


def test_an_exit_that_is_not_fatal_is_restarted_with_a_growing_back_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fraudstream.workers")
    stop = threading.Event()
    workers = supervisor(tmp_path, 1, stop, EXIT_WITH="3")
    thread, codes = run_in_thread(workers)
    wait_for(lambda: workers.workers[0].restarts >= 2, timeout=15)  # after 1 s, then after 2 s
    began = time.monotonic()
    stop.set()
    thread.join(15)
    assert time.monotonic() - began < 5  # a worker waiting out its back-off is not waited for
    # 0 when its last exit was seen (no worker left to stop), else that exit's 3: a stop never hides a failure
    assert codes in ([0], [3])
    waits = [record.getMessage().rsplit(" in ", 1)[1] for record in caplog.records if "started again" in record.message]
    assert waits[:2] == ["1 s", "2 s"]
    assert waits[2:3] in ([], ["4 s"])


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Supervisor(["true"], 0, lambda index: {}, stop=threading.Event())
