"""Exactly once with real `fraudstream score` processes: a kill -9 in the middle of a stream and a restart,
and two scorers sharing a 3-partition topic through a rebalance. Alerts are read with read_committed."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from fraudstream.kafka.clients import heartbeat_interval_ms
from fraudstream.kafka.local.processes import free_port
from producer.pacing import Pace

from .fault_support import readyz
from .stream_support import (
    BackgroundReplay,
    ScorerProcess,
    committed_count,
    offline_flags,
    read_alerts,
    replay_rows,
    scorer_process,
    tally,
    wait_caught_up,
)

if TYPE_CHECKING:
    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

ROWS = 2000
RESTART_COMMITS_WITHIN_S = 10.0


def wait_for(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def consumed_by(process: ScorerProcess) -> int:
    found = re.search(r"stopped cleanly: ([\d,]+) consumed", process.output())
    assert found, process.output()[-3000:]
    return int(found.group(1).replace(",", ""))


def test_kill_9_mid_stream_then_restart_alerts_each_flagged_transaction_once(
    trained_model: TrainedModel, settings_factory: SettingsFactory, stream: Path, tmp_path: Path
) -> None:
    # A stable replica id is the transactional.id (the restarted scorer fences the dead one's open transaction at
    # once) and the group.instance.id (static membership: the restart gets the dead member's partitions back at
    # once). The session timeout is Kafka's default, 45 s: without static membership the restart would wait that.
    settings = settings_factory(
        **trained_model.overrides,
        scorer_batch_size=50,
        scorer_batch_timeout_s=0.05,
        scorer_transactional_id=f"scorer-kill-{tmp_path.name}",
        scorer_session_timeout_ms=45_000,
    )
    expected = offline_flags(settings, trained_model.version, stream)

    with scorer_process(settings, tmp_path / "first.log") as first:
        wait_for(lambda: "partitions assigned" in first.output(), "the first scorer to join the group")
        with BackgroundReplay(settings, stream, pace=Pace(rate=400)) as replay:
            wait_for(lambda: committed_count(settings) > 300, "the first scorer to commit")
            first.kill()
            at_kill = committed_count(settings)
            assert 0 < at_kill < ROWS, f"the kill should land mid-stream, committed {at_kill}"
            replay.join()

    restarted = time.monotonic()
    with scorer_process(settings, tmp_path / "second.log") as second:
        wait_for(lambda: committed_count(settings) > at_kill, "the restarted scorer to commit", timeout=60)
        first_commit_s = time.monotonic() - restarted
        wait_caught_up(settings, ROWS)
        alerts = read_alerts(settings, at_least=len(expected))
        assert second.terminate() == 0, second.output()[-3000:]

    lost, duplicated = tally(
        "scorer kill -9 and restart",
        sent=ROWS,
        expected=expected,
        got=[alert.transaction_id for alert in alerts],
        committed_at_kill=at_kill,
        first_commit_after_restart_s=round(first_commit_s, 1),
    )
    assert not duplicated
    assert not lost
    assert {alert.model_version for alert in alerts} == {trained_model.version}
    assert first_commit_s <= RESTART_COMMITS_WITHIN_S, second.output()[-3000:]


def test_a_surviving_replica_takes_over_a_killed_ones_partitions_within_the_session_timeout(
    trained_model: TrainedModel, settings_factory: SettingsFactory, stream: Path, tmp_path: Path
) -> None:
    session_s = 6  # the broker's group.min.session.timeout.ms
    settings = settings_factory(
        **trained_model.overrides,
        scorer_batch_size=50,
        scorer_batch_timeout_s=0.05,
        scorer_session_timeout_ms=session_s * 1000,
    )
    expected = offline_flags(settings, trained_model.version, stream)
    survivor_port = free_port()
    survivor_ready = f"http://127.0.0.1:{survivor_port}/readyz"

    def partitions() -> int:
        answer = readyz(survivor_ready)
        return int(answer[1]["partitions"]) if answer else 0

    with scorer_process(settings, tmp_path / "a.log", scorer_transactional_id=f"a-{tmp_path.name}") as doomed:
        wait_for(lambda: "partitions assigned" in doomed.output(), "the first replica to join the group")
        with scorer_process(
            settings,
            tmp_path / "b.log",
            scorer_transactional_id=f"b-{tmp_path.name}",
            scorer_metrics_port=survivor_port,
        ) as survivor:
            wait_for(lambda: 0 < partitions() < 3 and "partitions assigned" in doomed.output(), "a shared group")
            with BackgroundReplay(settings, stream, pace=Pace(rate=300)) as replay:
                wait_for(lambda: committed_count(settings) > 300, "the replicas to commit")
                doomed.kill()
                killed = time.monotonic()
                wait_for(lambda: partitions() == 3, "the survivor to take every partition", timeout=60)
                takeover_s = time.monotonic() - killed
                replay.join()
            wait_caught_up(settings, ROWS)
            alerts = read_alerts(settings, at_least=len(expected))
            assert survivor.terminate() == 0, survivor.output()[-3000:]

    lost, duplicated = tally(
        "replica kill -9, survivor takes over",
        sent=ROWS,
        expected=expected,
        got=[alert.transaction_id for alert in alerts],
        session_timeout_s=session_s,
        takeover_s=round(takeover_s, 1),
    )
    assert not lost
    assert not duplicated
    # the session expires, then the survivor hears of the rebalance at its next heartbeat (1 s) and rejoins
    assert takeover_s <= session_s + heartbeat_interval_ms(session_s * 1000) / 1000 + 2, f"took {takeover_s:.1f} s"


def test_two_scorers_in_one_group_share_the_partitions_without_duplicates_or_gaps(
    trained_model: TrainedModel, settings_factory: SettingsFactory, stream: Path, tmp_path: Path
) -> None:
    settings = settings_factory(**trained_model.overrides, scorer_batch_size=100, scorer_batch_timeout_s=0.1)
    assert settings.topic_partitions == 3
    expected = offline_flags(settings, trained_model.version, stream)

    half = ROWS // 2
    with scorer_process(settings, tmp_path / "a.log") as first:
        wait_for(lambda: "partitions assigned" in first.output(), "the first scorer to join the group")
        # the first half flows (paced) while the second scorer starts and joins: partitions move mid-stream
        with BackgroundReplay(settings, stream, limit=half, pace=Pace(rate=250)) as first_half:
            wait_for(lambda: committed_count(settings) > 200, "the first scorer to commit")
            with scorer_process(settings, tmp_path / "b.log") as second:
                wait_for(lambda: "partitions assigned" in second.output(), "the second scorer to get partitions")
                first_half.join()
                replay_rows(settings, stream, start=half, pace=Pace(rate=500))  # the second half: both score
                wait_caught_up(settings, ROWS)
                alerts = read_alerts(settings, at_least=len(expected))
                assert second.terminate() == 0, second.output()[-3000:]
        assert first.terminate() == 0, first.output()[-3000:]

    ids = Counter(alert.transaction_id for alert in alerts)
    assert not {tx: n for tx, n in ids.items() if n > 1}
    assert set(ids) == expected
    consumed = (consumed_by(first), consumed_by(second))
    assert all(count > 0 for count in consumed), f"both scorers should have scored a share: {consumed}"
    assert sum(consumed) == ROWS  # every transaction committed exactly once across the two processes
