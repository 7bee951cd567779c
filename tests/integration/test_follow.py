"""Following a topic from outside (``follow_topic``, ``fraudstream alerts tail``) on the session's real broker."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import typer
from confluent_kafka import Producer
from typer.testing import CliRunner

from fraudstream.cli import alerts as alerts_command
from fraudstream.kafka.clients import producer_config
from fraudstream.kafka.follow import Followed, follow_topic
from fraudstream.schemas import Alert
from fraudstream.settings import Settings

from .api_support import sample_alerts
from .conftest import SettingsFactory


def _send(settings: Settings, values: list[bytes]) -> None:
    producer = Producer(producer_config(settings.kafka(), client_id="test-follow"))
    for value in values:
        producer.produce(settings.topic_alerts, value=value)
    assert producer.flush(30) == 0


def test_following_from_the_end_sees_only_later_records_and_sets_aside_what_it_cannot_decode(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory()
    before, *after = (alert.model_dump_json().encode() for alert in sample_alerts(3))
    _send(settings, [before])  # before the follower: not seen
    stop, ready = threading.Event(), threading.Event()
    seen: list[Followed[Alert]] = []
    invalid: list[tuple[int, int]] = []
    records = follow_topic(
        settings,
        settings.topic_alerts,
        Alert.model_validate_json,
        stop=stop,
        on_ready=ready.set,
        on_invalid=lambda partition, offset, _: invalid.append((partition, offset)),
        poll_s=0.2,
    )

    def follow() -> None:
        for item in records:
            seen.append(item)
            if len(seen) == 2:
                stop.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert ready.wait(30)
    _send(settings, [after[0], b"not json", after[1]])
    follower.join(60)

    assert not follower.is_alive(), "the follower did not stop once its stop was set"
    assert sorted(item.value.transaction_id for item in seen) == ["creditcard.csv:1", "creditcard.csv:2"]
    assert all(item.received_at >= datetime.now(timezone.utc) - timedelta(minutes=2) for item in seen)
    assert len(invalid) == 1
    partition, offset = invalid[0]
    assert offset >= 0
    assert partition in range(settings.topic_partitions)


def test_alerts_tail_from_the_beginning_prints_each_alert_as_json_and_stops_at_the_limit(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory()
    sent = [alert.model_dump_json() for alert in sample_alerts(3)]
    _send(settings, [value.encode() for value in sent])
    app = typer.Typer()
    app.add_typer(alerts_command.app, name="alerts")
    env = {"FRAUD_KAFKA_BOOTSTRAP": settings.bootstrap_servers, "FRAUD_TOPIC_ALERTS": settings.topic_alerts}

    result = CliRunner().invoke(app, ["alerts", "tail", "--from-beginning", "--json", "--limit", "3"], env=env)

    assert result.exit_code == 0, result.output
    printed = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(json.loads(line)["transaction_id"] for line in printed) == sorted(
        json.loads(value)["transaction_id"] for value in sent
    )
