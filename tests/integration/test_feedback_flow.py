"""Analysts' verdicts on a real broker: POST /alerts/{id}/feedback on `fraudstream serve` stores each verdict,
replaces the previous one, and puts each on the compacted fraud-feedback topic exactly once, across a verdict
stored just before a crash, an API restart, and delivery reports that never arrived."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import ConfigResource

from api.feedback import FeedbackPublisher, kafka_producer
from api.store.alerts import AlertRepository
from fraudstream.kafka.local.processes import free_port
from fraudstream.kafka.topics import admin_client
from fraudstream.schemas import Feedback
from fraudstream.settings import Settings

from .api_support import Service, process_env, sample_alerts, wait_ready
from .stream_support import read_topic


def _on_topic(settings: Settings, at_least: int) -> list[tuple[bytes, Feedback]]:
    records = read_topic(settings, settings.topic_feedback, at_least=at_least, idle_s=2.0)
    return [(record.key(), Feedback.model_validate_json(record.value())) for record in records]


def test_verdicts_are_stored_replaced_and_on_fraud_feedback_exactly_once_each(
    trained_model: Any, settings_factory: Callable[..., Settings], services: Callable[..., Service], tmp_path: Path
) -> None:
    settings = settings_factory(
        **trained_model.overrides, alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}", api_port=free_port()
    )
    base_url = f"http://127.0.0.1:{settings.api_port}"
    store = AlertRepository.from_url(settings.alert_store)
    store.create_schema()
    store.upsert_many(sample_alerts(10))
    before_crash = store.feedback.record("creditcard.csv:9", "fraud", "night-shift", "stored, then the API died")
    assert before_crash is not None

    api = services(["serve"], process_env(settings, FRAUD_API_RUN_SINK="false"), tmp_path / "serve-1.log")
    wait_ready(base_url, api)
    verdicts = [(0, "fraud"), (1, "legitimate"), (2, "fraud"), (0, "legitimate"), (3, "fraud"), (0, "fraud")]
    answers = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for index, verdict in verdicts:
            answer = client.post(
                f"/alerts/creditcard.csv:{index}/feedback", json={"verdict": verdict, "analyst": "ana", "note": None}
            )
            assert answer.status_code == 201, answer.text
            answers.append(answer.json())
        assert client.post("/alerts/nope/feedback", json={"verdict": "fraud", "analyst": "a"}).status_code == 404
        assert (
            client.post("/alerts/creditcard.csv:1/feedback", json={"verdict": "?", "analyst": "a"}).status_code == 422
        )
        current = client.get("/alerts/creditcard.csv:0").json()["verdict"]
        history = client.get("/alerts/creditcard.csv:0/feedback").json()
        fraud_only = client.get("/alerts", params={"verdict": "fraud"}).json()["data"]
        stats = client.get("/alerts/stats").json()
    assert current["verdict"] == "fraud"  # the last of three
    assert [item["verdict"] for item in history["data"]] == ["fraud", "legitimate", "fraud"]
    assert {item["transaction_id"] for item in fraud_only} == {f"creditcard.csv:{i}" for i in (0, 2, 3, 9)}

    # confirmed precision per version equals what the stored verdicts say
    alerts = [store.get(f"creditcard.csv:{i}") for i in range(10)]
    for row in stats["by_model_version"]:
        mine = [a for a in alerts if a is not None and a.model_version == row["model_version"]]
        reviewed = [a for a in mine if a.verdict is not None]
        fraud = [a for a in reviewed if a.verdict is not None and a.verdict.verdict == "fraud"]
        assert (row["reviewed"], row["confirmed_fraud"]) == (len(reviewed), len(fraud))
        assert row["confirmed_precision"] == (len(fraud) / len(reviewed) if reviewed else None)

    expected_ids = {before_crash.feedback_id, *(answer["feedback_id"] for answer in answers)}
    records = _on_topic(settings, at_least=len(expected_ids))
    counts = Counter(feedback.feedback_id for _, feedback in records)
    assert set(counts) == expected_ids
    assert max(counts.values()) == 1  # exactly once each
    assert all(key == feedback.transaction_id.encode() for key, feedback in records)  # keyed by transaction id
    latest = {
        feedback.transaction_id: feedback.verdict for _, feedback in sorted(records, key=lambda r: r[1].feedback_id)
    }
    assert latest == {f"creditcard.csv:{i}": a.verdict.verdict for i, a in enumerate(alerts) if a and a.verdict}
    assert _cleanup_policy(settings) == "compact"
    assert api.stop() == 0, api.output()[-3000:]

    # a restart produces nothing again
    api = services(["serve"], process_env(settings, FRAUD_API_RUN_SINK="false"), tmp_path / "serve-2.log")
    wait_ready(base_url, api)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        again = client.post("/alerts/creditcard.csv:5/feedback", json={"verdict": "legitimate", "analyst": "bo"})
    assert again.status_code == 201
    counts = Counter(feedback.feedback_id for _, feedback in _on_topic(settings, at_least=len(expected_ids) + 1))
    assert set(counts) == expected_ids | {again.json()["feedback_id"]}
    assert max(counts.values()) == 1
    assert api.stop() == 0, api.output()[-3000:]


class ForgetfulProducer:
    """A real producer whose delivery reports are dropped for the first ``forget`` records (the process "died"
    right after handing them over)."""

    def __init__(self, config: dict[str, Any], forget: int) -> None:
        self._producer = kafka_producer(config)
        self.forget = forget

    def produce(self, topic: str, *, on_delivery: Any, **kwargs: Any) -> None:
        if self.forget:
            self.forget -= 1
            self._producer.produce(topic, **kwargs)
        else:
            self._producer.produce(topic, on_delivery=on_delivery, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    def __len__(self) -> int:
        return len(self._producer)


def test_records_whose_delivery_reports_were_lost_are_read_back_from_the_topic_not_produced_twice(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}")
    store = AlertRepository.from_url(settings.alert_store)
    store.create_schema()
    store.upsert_many(sample_alerts(6))
    ids = [store.feedback.record(f"creditcard.csv:{i}", "fraud", "ana", None) for i in range(6)]
    publisher = FeedbackPublisher(
        settings, store.feedback, producer_factory=lambda config: ForgetfulProducer(config, forget=4), holder="test"
    )

    assert publisher.run_round() == 0  # 4 of 6 reports lost: nothing recorded, the topic is in doubt
    assert publisher.run_round() == 6  # all six found on the topic, none produced again
    assert publisher.run_round() == 0
    records = _on_topic(settings, at_least=6)
    assert Counter(feedback.feedback_id for _, feedback in records) == Counter(
        {item.feedback_id: 1 for item in ids if item}
    )
    assert store.feedback.counts() == (6, 0)


def _cleanup_policy(settings: Settings) -> str:
    admin = admin_client(settings.kafka())
    resource = ConfigResource(ConfigResource.Type.TOPIC, settings.topic_feedback)
    (future,) = admin.describe_configs([resource]).values()
    return str(future.result(timeout=15)["cleanup.policy"].value)
