"""Fuzz the stream on a real broker through the real scorer: a few hundred messages generated around the
schema's edges (tests/message_corpus.py) are each either scored or in the DLQ with the schema's reason, and every
alert the scorer publishes passes the sink's own decode path and is held by a real alert store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from confluent_kafka import Producer
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from message_corpus import message

from api.sink.decode import decode_alert
from api.store.alerts import AlertRepository
from fraudstream.kafka.clients import producer_config
from fraudstream.model.registry import ModelRegistry
from fraudstream.schemas import FEATURES
from scorer.decode import Rejection, decode

from .stream_support import ScorerThread, read_topic, wait_caught_up

if TYPE_CHECKING:
    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

MESSAGES = 300
EXAMPLES = 6


def flagged_rows(settings: Any, version: str, csv: Path) -> list[dict[str, float]]:
    """Feature rows of the training data that the serving version flags: messages built on them raise alerts."""
    frame = pd.read_csv(csv)
    frauds = frame[frame["Class"] == 1][list(FEATURES)]
    model = ModelRegistry(settings).load(version)
    flags = model.flags(model.score(frauds.to_numpy(np.float32)))
    return frauds[flags].to_dict("records")[:50]


@settings(max_examples=EXAMPLES, phases=[Phase.generate], derandomize=True, deadline=None, database=None)
@given(data=st.data())
def _corpus(data: st.DataObject, rows: list[dict[str, float]], out: list[bytes | None]) -> None:
    """MESSAGES generated messages appended to ``out``, in EXAMPLES draws (the first of which hypothesis makes
    the simplest); all go through one broker round trip, too slow to shrink on."""
    out += [data.draw(message(st.sampled_from(rows))) for _ in range(MESSAGES // EXAMPLES)]


def test_every_generated_message_is_scored_or_dead_lettered_and_every_alert_is_stored(
    trained_model: TrainedModel, settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_factory(**trained_model.overrides, scorer_batch_size=100)
    rows = flagged_rows(settings, trained_model.version, trained_model.data_csv)
    assert rows, "the model flags none of its training frauds"
    values: list[bytes | None] = [None]  # a tombstone, then the generated messages
    _corpus(rows=rows, out=values)
    reference = [decode(value) for value in values]
    refused = {f"fuzz-{i}" for i, verdict in enumerate(reference) if isinstance(verdict, Rejection)}
    accepted = {f"fuzz-{i}": verdict for i, verdict in enumerate(reference) if not isinstance(verdict, Rejection)}
    assert len(accepted) >= MESSAGES // 5, len(accepted)
    assert len(refused) >= MESSAGES // 5, len(refused)

    producer = Producer(producer_config(settings.kafka(), client_id="stream-fuzz"))
    with ScorerThread(settings) as scorer:
        for index, value in enumerate(values):
            producer.produce(settings.topic_transactions, value=value, key=f"fuzz-{index}".encode())
        assert producer.flush(30) == 0
        wait_caught_up(settings, len(values))
        dead = read_topic(settings, settings.topic_dlq, at_least=len(refused))
        published = read_topic(settings, settings.topic_alerts, at_least=1)
        assert scorer.alive
        assert scorer.error is None
        scored, dead_letters = scorer.status.scored, scorer.status.dead_letters

    reasons = {message.key().decode(): dict(message.headers()) for message in dead}
    alerts = [decode_alert(message) for message in published]
    store = AlertRepository.from_url(f"sqlite:///{tmp_path / 'alerts.db'}")
    store.create_schema()
    store.upsert_many([alert for alert in alerts if alert is not None])
    alert_ids = {alert.transaction_id for alert in alerts if alert is not None}
    stored = {tid for tid in alert_ids if store.get(tid) is not None}
    kinds = Counter(verdict.kind for verdict in reference if isinstance(verdict, Rejection))
    print(  # noqa: T201 (the acceptance report: what was sent, what came out, what was lost)
        f"sent {len(values)}: {len(accepted)} valid, {len(refused)} invalid {dict(kinds)}; scored {scored},"
        f" dead-lettered {dead_letters}, lost {len(values) - scored - dead_letters}; alerts {len(published)},"
        f" refused by the sink {alerts.count(None)}, stored {len(stored)} of {len(alert_ids)} ids"
    )
    assert set(reasons) == refused  # every invalid message in the DLQ, and nothing valid
    for key, headers in reasons.items():
        expected: Rejection = reference[int(key.split("-")[1])]  # type: ignore[assignment]
        assert headers["reason"].decode() == expected.reason  # the schema's own words
        assert headers["error_kind"].decode() == expected.kind
    assert (scored, dead_letters) == (len(accepted), len(refused))
    assert published, "no alert to hand to the sink"
    assert None not in alerts  # nothing the scorer publishes is refused by the sink
    assert alert_ids <= {verdict.transaction_id for verdict in accepted.values()}  # type: ignore[union-attr]
    assert stored == alert_ids  # ... and the store holds every one
