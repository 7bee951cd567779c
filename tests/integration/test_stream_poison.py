"""Messages that once stopped the scorer for good, among valid ones, on a real broker: a value of 1,030,598 bytes
(under the broker's 1,048,588-byte limit, over the producer's 1,000,000), a 5 MB value gzip-compressed to a few
KB, and a dead letter the broker refuses at delivery (the DLQ topic's limit lowered while the scorer runs).
Every valid transaction is scored, each bad one is in the DLQ with a reason, and the scorer never stops."""

from __future__ import annotations

import base64
import os
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from fraudstream.kafka.clients import admin_config, producer_config
from scorer.decode import Rejection, decode

from .stream_support import ScorerThread, offline_flags, read_alerts, read_topic, replay_rows, tally, wait_caught_up

if TYPE_CHECKING:
    from fraudstream.settings import Settings
    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

ROWS = 2000
OVERSIZED = 1_030_598
BOMB = 5_000_000


def padded(transaction_id: str, size: int, filler: bytes) -> bytes:
    """A JSON object of exactly ``size`` bytes: a transaction id and an unknown field full of ``filler``."""
    head, tail = f'{{"transaction_id": "{transaction_id}", "padding": "'.encode(), b'"}'
    body = (filler * (size // len(filler) + 1))[: size - len(head) - len(tail)]
    return head + body + tail


def send(settings: Settings, value: bytes, key: bytes, **config: Any) -> None:
    producer = Producer(producer_config(settings.kafka(), client_id="poison-test", **config))
    producer.produce(settings.topic_transactions, value=value, key=key, headers=[("origin", b"poison-test")])
    assert producer.flush(30) == 0


def lower_dlq_limit(settings: Settings, limit: int) -> None:
    admin = AdminClient(admin_config(settings.kafka()))
    resource = ConfigResource(
        ResourceType.TOPIC,
        settings.topic_dlq,
        incremental_configs=[ConfigEntry("max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def wait_dead(settings: Settings, count: int) -> list[Any]:
    return read_topic(settings, settings.topic_dlq, at_least=count, idle_s=1.0, timeout=90)


def test_oversized_and_gzip_bomb_messages_go_to_the_dlq_and_every_valid_transaction_is_scored(
    trained_model: TrainedModel, settings_factory: SettingsFactory, stream: Path
) -> None:
    settings = settings_factory(**trained_model.overrides, scorer_batch_size=300)
    expected = offline_flags(settings, trained_model.version, stream)
    random_text = base64.b64encode(os.urandom(800_000))  # 1,066,668 bytes that lz4 cannot shrink much
    oversized = padded("poison:oversized", OVERSIZED, random_text)
    bomb = padded("poison:bomb", BOMB, b"A")  # compresses to a few KB
    refused = padded("poison:refused", 100_000, random_text)

    with ScorerThread(settings) as scorer:
        replay_rows(settings, stream, start=0, limit=500)
        send(settings, oversized, b"poison-oversized", **{"compression.type": "none", "message.max.bytes": 1_040_000})
        replay_rows(settings, stream, start=500, limit=500)
        send(settings, bomb, b"poison-bomb", **{"compression.type": "gzip", "message.max.bytes": 6_000_000})
        replay_rows(settings, stream, start=1000, limit=500)
        wait_caught_up(settings, 1500 + 2)
        assert len(wait_dead(settings, 2)) == 2
        # The DLQ topic now takes at most 20 KB a batch, which the scorer does not know: its dead letter of the
        # next bad message passes its own size check, and the broker refuses it at delivery.
        lower_dlq_limit(settings, 20_000)
        time.sleep(1.0)
        send(settings, refused, b"poison-refused", **{"compression.type": "none", "message.max.bytes": 1_040_000})
        replay_rows(settings, stream, start=1500, limit=500)
        wait_caught_up(settings, ROWS + 3)
        dead = wait_dead(settings, 3)
        alerts = read_alerts(settings, at_least=len(expected))
        assert scorer.alive, "the scorer must still be running"
        assert scorer.error is None
        status = scorer.status
        fallbacks = {
            how: scorer.scorer.metrics.value("fraudstream_scorer_dlq_fallbacks_total", how=how)
            for how in ("cut_to_fit", "minimal", "left_out")
        }

    ids = Counter(alert.transaction_id for alert in alerts)
    letters = {message.key(): message for message in dead}
    lost, duplicated = tally(
        "poison",
        sent=ROWS + 3,
        expected=expected,
        got=[alert.transaction_id for alert in alerts],
        dead_letters=len(dead),
        scored=status.scored,
        aborted=status.aborted,
        fallbacks=fallbacks,
    )
    assert not lost
    assert not duplicated
    assert set(ids) == expected
    assert status.scored == ROWS
    assert sorted(letters) == [b"poison-bomb", b"poison-oversized", b"poison-refused"]

    for key, original in ((b"poison-oversized", oversized), (b"poison-bomb", bomb)):
        message = letters[key]
        headers = dict(message.headers())
        rejection = decode(original)
        assert isinstance(rejection, Rejection)
        assert headers["error_kind"] == rejection.kind.encode()
        assert headers["reason"] == rejection.reason.encode()
        assert headers["source_topic"] == settings.topic_transactions.encode()
        assert headers["original_size"] == str(len(original)).encode()
        assert headers["value_kept"] == b"part"
        assert headers["origin"] == b"poison-test"  # the original headers travel with it
        assert original.startswith(message.value())
        assert 900_000 < len(message.value()) < 1_000_000

    minimal = letters[b"poison-refused"]
    headers = dict(minimal.headers())
    assert minimal.value() is None
    assert headers["value_kept"] == b"none"
    assert b"MSG_SIZE_TOO_LARGE" in headers["dlq_note"]
    assert headers["original_size"] == b"100000"
    assert headers["reason"]
    assert status.aborted >= 1  # the refused delivery aborted one transaction, its retry committed
    assert fallbacks["minimal"] >= 1
    assert fallbacks["left_out"] == 0
