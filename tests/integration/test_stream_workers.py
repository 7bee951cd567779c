"""`fraudstream score --workers 2` as a real process on the session's broker: two worker processes share the
partitions as two replicas; one killed with kill -9 mid-stream is started again by the supervisor and the alerts
stay exactly once (read_committed); SIGTERM to the supervisor stops both workers cleanly; kill -9 of the supervisor
leaves no worker running."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fraudstream.kafka.local.processes import free_port_run, process_alive
from producer.pacing import Pace

from .fault_support import readyz, wait_for
from .stream_support import (
    BackgroundReplay,
    committed_count,
    offline_flags,
    read_alerts,
    scorer_process,
    tally,
    wait_caught_up,
)

if TYPE_CHECKING:
    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

ROWS = 2000


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux: /proc/<pid>/task/<pid>/children)."""
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in found.read_text().split()] if found.exists() else []


def partitions(port: int) -> int:
    answer = readyz(f"http://127.0.0.1:{port}/readyz")
    return int(answer[1]["partitions"]) if answer and answer[0] == 200 else 0


def shares(port: int) -> tuple[int, int]:
    """The partitions worker 0 and worker 1 hold, as their /readyz answers say now."""
    return partitions(port), partitions(port + 1)


def test_two_workers_share_the_stream_a_killed_one_comes_back_and_sigterm_stops_both(
    trained_model: TrainedModel, settings_factory: SettingsFactory, stream: Path, tmp_path: Path
) -> None:
    port = free_port_run(2)
    settings = settings_factory(
        **trained_model.overrides,
        scorer_batch_size=50,
        scorer_batch_timeout_s=0.05,
        scorer_transactional_id=f"workers-{tmp_path.name}",  # worker i: workers-...-i, its own static member
        scorer_metrics_port=port,  # worker i: port + i
    )
    assert settings.topic_partitions == 3
    expected = offline_flags(settings, trained_model.version, stream)

    with scorer_process(settings, tmp_path / "score.log", scorer_workers=2) as supervisor:
        # One reading of both workers a poll, until the group is settled: a poll during a rebalance may see one
        # worker with its partitions revoked (eager protocol) and the other already holding its new ones.
        wait_for(lambda: shares(port) in ((1, 2), (2, 1)), "both workers to hold partitions", timeout=120)
        workers = children(supervisor.process.pid)
        assert len(workers) == 2, workers
        with BackgroundReplay(settings, stream, pace=Pace(rate=400)) as replay:
            wait_for(lambda: committed_count(settings) > 400, "the workers to commit", timeout=60)
            doomed = workers[1]
            os.kill(doomed, signal.SIGKILL)
            at_kill = committed_count(settings)
            assert at_kill < ROWS, f"the kill should land mid-stream, committed {at_kill}"
            restarted = wait_for(
                lambda: len(now := children(supervisor.process.pid)) == 2 and doomed not in now and now,
                "the supervisor to start the killed worker again",
                timeout=30,
            )
            replay.join()
        wait_caught_up(settings, ROWS, timeout=120)
        alerts = read_alerts(settings, at_least=len(expected))
        wait_for(lambda: shares(port) in ((1, 2), (2, 1)), "both workers ready again", timeout=60)
        asked = time.monotonic()
        assert supervisor.terminate(timeout=60) == 0, supervisor.output()[-3000:]
        stopped_s = time.monotonic() - asked
        assert not any(process_alive(pid) for pid in restarted)

    output = supervisor.output()
    lost, duplicated = tally(
        "two workers, one killed with kill -9 and started again",
        sent=ROWS,
        expected=expected,
        got=[alert.transaction_id for alert in alerts],
        committed_at_kill=at_kill,
        sigterm_stopped_in_s=round(stopped_s, 1),
    )
    assert not lost
    assert not duplicated
    assert f"(pid {doomed}) was killed by SIGKILL; started again" in output
    assert output.count("stopped cleanly:") == 3  # each worker (the one killed never said it), then the supervisor
    assert "stopped cleanly: 2 workers" in output


def test_a_supervisor_killed_with_kill_9_leaves_no_worker_running(
    trained_model: TrainedModel, settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    port = free_port_run(2)
    settings = settings_factory(**trained_model.overrides, scorer_metrics_port=port)
    with scorer_process(settings, tmp_path / "score.log", scorer_workers=2) as supervisor:
        wait_for(lambda: len(children(supervisor.process.pid)) == 2, "two workers", timeout=60)
        workers = children(supervisor.process.pid)
        wait_for(lambda: readyz(f"http://127.0.0.1:{port + 1}/readyz"), "the second worker to serve", timeout=120)
        supervisor.kill()
        wait_for(lambda: not any(process_alive(pid) for pid in workers), "the orphaned workers to stop", timeout=30)
