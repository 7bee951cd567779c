"""The overlapped, idle-closing loop writes the same records as the loop before it (one batch at a time, closed
at the timeout), on the stream tests' inputs: the same alerts byte for byte apart from their timestamps, and the
same dead letters, on one real broker with one real registered model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import Producer

from fraudstream.kafka.clients import producer_config
from fraudstream.kafka.topics import ensure_topics, standard_topics

from .conftest import unique_name
from .stream_support import ScorerThread, read_topic, replay_rows, wait_caught_up
from .test_stream_scoring import ROWS, malformed_messages

if TYPE_CHECKING:
    from fraudstream.settings import Settings
    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

TIMESTAMPS = ("scored_at",)
"""The only alert fields that depend on when the scorer ran (event_time comes from the input)."""


def test_the_overlapped_loop_writes_the_same_alerts_and_dead_letters_as_the_serial_loop(
    trained_model: TrainedModel, settings_factory: SettingsFactory, stream: Path
) -> None:
    # Exact reason codes for every alert in both runs: the time budget would otherwise pick the method by timing.
    base = settings_factory(**trained_model.overrides, scorer_batch_size=300, explain_exact_budget_ms=60_000)
    bad = malformed_messages()
    replay_rows(base, stream, limit=ROWS // 2)
    producer = Producer(producer_config(base.kafka(), client_id="stream-test-same"))
    for index, (_, value) in enumerate(bad):
        producer.produce(base.topic_transactions, value=value, key=f"bad-{index}".encode())
    assert producer.flush(30) == 0
    replay_rows(base, stream, start=ROWS // 2)

    serial = _outputs(
        base, "serial", scorer_batch_close_when_idle=False, scorer_commit_overlap=False, expected=ROWS + len(bad)
    )
    overlapped = _outputs(
        base, "overlap", scorer_batch_close_when_idle=True, scorer_commit_overlap=True, expected=ROWS + len(bad)
    )

    assert serial["alerts"], "the stream should hold frauds the model flags"
    assert len(serial["dead"]) == len(bad)
    assert overlapped == serial


def _outputs(base: Settings, name: str, *, expected: int, **rule: Any) -> dict[str, list[Any]]:
    """Score the whole topic with a fresh group into topics of its own; its alerts (timestamps left out) and dead
    letters, each sorted by where its input was."""
    settings = base.model_copy(
        update={
            "topic_alerts": unique_name(f"alerts-{name}"),
            "topic_dlq": unique_name(f"dlq-{name}"),
            "scorer_group_id": unique_name(f"scorer-{name}"),
            **rule,
        }
    )
    ensure_topics(settings.kafka(), standard_topics(settings))
    with ScorerThread(settings) as scorer:
        wait_caught_up(settings, expected)
        alerts = read_topic(settings, settings.topic_alerts, at_least=scorer.status.alerts)
        dead = read_topic(settings, settings.topic_dlq, at_least=scorer.status.dead_letters)
        assert scorer.error is None
    assert scorer.status.consumed == expected
    bodies = []
    for message in alerts:
        body = orjson.loads(message.value())
        for field in TIMESTAMPS:
            body.pop(field)
        bodies.append((message.key(), orjson.dumps(body, option=orjson.OPT_SORT_KEYS)))
    letters = [(message.key(), message.value(), sorted(message.headers() or [])) for message in dead]
    return {"alerts": sorted(bodies), "dead": sorted(letters, key=repr)}
