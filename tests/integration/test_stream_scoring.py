"""Replay -> scorer -> fraud-alerts on a real broker with a real registered model: the alerts are exactly the
offline flags of the same model version; malformed messages land in the DLQ with a reason and the loop goes on."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from confluent_kafka import Producer

from fraudstream.kafka.clients import producer_config
from fraudstream.schemas import SEED_EXAMPLE

from .stream_support import (
    STREAM_FILE,
    ScorerThread,
    offline_flags,
    read_alerts,
    read_topic,
    replay_rows,
    wait_caught_up,
)

if TYPE_CHECKING:
    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

ROWS = 2000


def test_replayed_rows_alert_exactly_the_offline_flags_of_the_serving_version(
    trained_model: TrainedModel, settings_factory: SettingsFactory, stream: Path
) -> None:
    settings = settings_factory(**trained_model.overrides, scorer_batch_size=500)
    expected = offline_flags(settings, trained_model.version, stream)
    assert expected, "the test stream should hold frauds the model flags"

    with ScorerThread(settings) as scorer:
        stats = replay_rows(settings, stream)
        assert stats.sent == ROWS
        wait_caught_up(settings, ROWS)
        alerts = read_alerts(settings, at_least=len(expected))
        assert scorer.error is None

    ids = Counter(alert.transaction_id for alert in alerts)
    assert set(ids) == expected
    assert max(ids.values()) == 1
    assert {alert.model_version for alert in alerts} == {trained_model.version}
    assert {alert.model_name for alert in alerts} == {settings.model_name}
    assert all(alert.score >= alert.threshold for alert in alerts)
    assert all(alert.label in (0, 1) for alert in alerts)  # the ground truth travels along, never as a feature
    assert scorer.status.scored == ROWS


def malformed_messages() -> list[tuple[str, bytes | None]]:
    """50 malformed messages of 20 kinds (kind expected in the DLQ header, raw value)."""
    good = {**SEED_EXAMPLE, "transaction_id": "bad:0", "event_time": "2024-05-01T12:00:00Z", "label": 0}
    raw = orjson.dumps(good)

    def changed(**changes: object) -> bytes:
        return orjson.dumps({**good, **changes})

    def without(name: str) -> bytes:
        return orjson.dumps({key: value for key, value in good.items() if key != name})

    kinds: list[tuple[str, bytes | None]] = [
        ("invalid_json", b"{this is not json"),
        ("not_an_object", b"[1, 2, 3]"),
        ("empty", b""),
        ("empty", None),
        ("missing_field", without("V7")),
        ("unknown_field", changed(merchant="ACME")),
        ("wrong_type", changed(V3="2.5")),
        ("non_finite", raw.replace(b'"V3":2.536347', b'"V3":NaN')),
        ("non_finite", raw.replace(b'"V3":2.536347', b'"V3":Infinity')),
        ("out_of_range", changed(Amount=-12.5)),
        ("wrong_type", changed(V9=True)),
        ("wrong_type", changed(V10=None)),
        ("missing_field", without("transaction_id")),
        ("invalid_timestamp", changed(event_time="not a time")),
        ("out_of_range", changed(label=2)),
        ("invalid_json", raw + b"trailing"),
        ("duplicate_key", raw[:-1] + b',"transaction_id":"bad:1"}'),
        ("invalid_timestamp", changed(event_time="0001-01-01T00:00:00+14:00")),
        ("invalid_value", changed(transaction_id="bad\n0")),
        ("wrong_type", changed(label=True)),
    ]
    return [kinds[i % len(kinds)] for i in range(50)]


def test_malformed_messages_go_to_the_dlq_with_a_reason_and_scoring_goes_on(
    trained_model: TrainedModel, settings_factory: SettingsFactory, stream: Path
) -> None:
    settings = settings_factory(**trained_model.overrides, scorer_batch_size=300)
    expected = offline_flags(settings, trained_model.version, stream)
    bad = malformed_messages()
    producer = Producer(producer_config(settings.kafka(), client_id="stream-test-bad"))

    with ScorerThread(settings) as scorer:
        for part in range(4):  # valid rows and malformed messages interleaved, in four rounds
            replay_rows(settings, stream, start=part * 500, limit=500)
            for index, (_, value) in enumerate(bad[part::4]):
                producer.produce(settings.topic_transactions, value=value, key=f"bad-{part}-{index}".encode())
            assert producer.flush(30) == 0
        wait_caught_up(settings, ROWS + len(bad))
        dead = read_topic(settings, settings.topic_dlq, at_least=len(bad))
        alerts = read_alerts(settings, at_least=len(expected))
        assert scorer.alive, "the scorer must still be running"
        assert scorer.error is None

    assert len(dead) == len(bad)
    headers = [dict(message.headers()) for message in dead]
    assert all(h["reason"] and h["source_topic"] == settings.topic_transactions.encode() for h in headers)
    assert Counter(h["error_kind"].decode() for h in headers) == Counter(kind for kind, _ in bad)
    assert len({kind for kind, _ in bad}) >= 10
    sent_values = Counter(value or b"" for _, value in bad)
    assert Counter(message.value() or b"" for message in dead) == sent_values  # the original bytes, untouched
    assert all(message.key().startswith(b"bad-") for message in dead)
    reasons = {h["error_kind"].decode(): h["reason"].decode() for h in headers}
    assert reasons["missing_field"] in ("missing field 'V7'", "missing field 'transaction_id'")
    assert reasons["unknown_field"] == "unknown field 'merchant'"
    assert {alert.transaction_id for alert in alerts} == expected
    assert all(alert.transaction_id.startswith(f"{STREAM_FILE}:") for alert in alerts)
    assert scorer.status.scored == ROWS
    assert scorer.status.dead_letters == len(bad)
    assert scorer.scorer.metrics.value("fraudstream_scorer_dlq_total", kind="non_finite") == sent_count(
        bad, "non_finite"
    )


def sent_count(bad: list[tuple[str, bytes | None]], kind: str) -> int:
    return sum(1 for k, _ in bad if k == kind)
