"""`fraudstream replay` as a user runs it, with the replay itself replaced: how the command ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import producer.bootstrap
from fraudstream.cli import main
from fraudstream.kafka.watchdog import WatchdogGaveUp
from producer.replay import ReplayStats


def test_the_replay_command_ends_with_a_clear_message_and_code_3_when_kafka_calls_stay_stuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class StuckReplayer:
        stats = ReplayStats(source="creditcard.csv")

        def run(self) -> ReplayStats:
            raise WatchdogGaveUp("3 blocking Kafka calls are stuck at once")

    monkeypatch.setattr(producer.bootstrap, "bootstrap", lambda *args, **kwargs: StuckReplayer())
    main._register()
    result = CliRunner().invoke(
        main.app, ["replay", "--transactional"], env={"FRAUD_STATE_DIR": str(tmp_path), "COLUMNS": "200"}
    )

    assert result.exit_code == 3, result.output
    assert "the replay stops" in result.output
    assert "3 blocking Kafka calls are stuck at once" in result.output
