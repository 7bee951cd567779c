"""Verdicts: POST /alerts/{id}/feedback stores, replaces and keeps the history; GET /alerts filters by verdict;
/alerts/stats counts reviews; each verdict reaches fraud-feedback exactly once, whatever fails on the way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.feedback import LEASE, FeedbackPublisher
from api.store.alerts import AlertRepository
from fraudstream.schemas import Alert, Feedback

from .conftest import unit_settings
from .fakes import FakeFeedbackTopic


def _store(client: TestClient, services_of: Any, alerts: list[Alert]) -> None:
    services_of(client).store.upsert_many(alerts)


def _topic_verdicts(topic: FakeFeedbackTopic) -> list[Feedback]:
    return [Feedback.model_validate_json(value) for _, _, _, value in topic.records()]


def test_a_verdict_is_stored_with_the_alert_replaced_by_the_next_and_the_history_kept(
    client: TestClient, services_of: Any, alert: Callable[..., Alert], feedback_topic: FakeFeedbackTopic
) -> None:
    _store(client, services_of, [alert(1, transaction_id="creditcard.csv:1")])

    first = client.post("/alerts/creditcard.csv:1/feedback", json={"verdict": "fraud", "analyst": "ana"})
    second = client.post(
        "/alerts/creditcard.csv:1/feedback", json={"verdict": "legitimate", "analyst": "bo", "note": "known shop"}
    )

    assert first.status_code == 201, first.text
    assert second.status_code == 201
    assert first.json()["published"] is True
    assert first.json()["topic_offset"] is not None
    current = client.get("/alerts/creditcard.csv:1").json()["verdict"]
    assert (current["verdict"], current["analyst"], current["note"]) == ("legitimate", "bo", "known shop")
    history = client.get("/alerts/creditcard.csv:1/feedback").json()
    assert history["count"] == 2
    assert [(item["verdict"], item["analyst"]) for item in history["data"]] == [("fraud", "ana"), ("legitimate", "bo")]
    on_topic = _topic_verdicts(feedback_topic)
    assert [(v.transaction_id, v.verdict, v.feedback_id) for v in on_topic] == [
        ("creditcard.csv:1", "fraud", first.json()["feedback_id"]),
        ("creditcard.csv:1", "legitimate", second.json()["feedback_id"]),
    ]
    assert {key for _, _, key, _ in feedback_topic.records()} == {b"creditcard.csv:1"}  # keyed by transaction id


def test_an_unknown_alert_is_404_and_a_bad_verdict_422(
    client: TestClient, services_of: Any, alert: Callable[..., Alert], feedback_topic: FakeFeedbackTopic
) -> None:
    _store(client, services_of, [alert(1)])

    unknown = client.post("/alerts/nope/feedback", json={"verdict": "fraud", "analyst": "ana"})
    bad = client.post("/alerts/tx-00001/feedback", json={"verdict": "maybe", "analyst": "ana"})
    anonymous = client.post("/alerts/tx-00001/feedback", json={"verdict": "fraud", "analyst": ""})
    extra = client.post("/alerts/tx-00001/feedback", json={"verdict": "fraud", "analyst": "a", "score": 1})

    assert unknown.status_code == 404
    assert client.get("/alerts/nope/feedback").status_code == 404
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "verdict"
    assert anonymous.status_code == 422
    assert anonymous.json()["detail"][0]["field"] == "analyst"
    assert extra.status_code == 422
    assert client.get("/alerts/tx-00001").json()["verdict"] is None
    assert feedback_topic.records() == []


def test_alerts_filter_by_verdict_and_stats_give_the_confirmed_precision_per_version(
    client: TestClient, services_of: Any, alert: Callable[..., Alert]
) -> None:
    _store(client, services_of, [alert(i, model_version=str(1 + i % 2)) for i in range(12)])
    verdicts = {0: "fraud", 2: "fraud", 4: "legitimate", 1: "fraud", 3: "legitimate", 5: "legitimate", 7: "fraud"}
    for index, verdict in verdicts.items():
        assert client.post(f"/alerts/tx-{index:05d}/feedback", json={"verdict": verdict, "analyst": "a"}).is_success
    client.post("/alerts/tx-00007/feedback", json={"verdict": "legitimate", "analyst": "b"})  # replaces fraud
    verdicts[7] = "legitimate"

    def ids(verdict: str) -> set[str]:
        body = client.get("/alerts", params={"verdict": verdict, "limit": 100}).json()
        return {item["transaction_id"] for item in body["data"]}

    assert ids("fraud") == {f"tx-{i:05d}" for i, v in verdicts.items() if v == "fraud"}
    assert ids("legitimate") == {f"tx-{i:05d}" for i, v in verdicts.items() if v == "legitimate"}
    assert ids("none") == {f"tx-{i:05d}" for i in range(12) if i not in verdicts}
    assert client.get("/alerts", params={"verdict": "unsure"}).status_code == 422

    stats = client.get("/alerts/stats").json()
    stored = services_of(client).store
    for row in stats["by_model_version"]:
        alerts = [a for a in (stored.get(f"tx-{i:05d}") for i in range(12)) if a.model_version == row["model_version"]]
        reviewed = [a for a in alerts if a.verdict is not None]
        fraud = [a for a in reviewed if a.verdict.verdict == "fraud"]
        assert (row["count"], row["reviewed"], row["confirmed_fraud"]) == (len(alerts), len(reviewed), len(fraud))
        assert row["confirmed_precision"] == pytest.approx(len(fraud) / len(reviewed))
    assert stats["reviewed"] == len(verdicts)
    assert stats["by_verdict"] == {"none": 12 - len(verdicts), "fraud": 3, "legitimate": 4}
    assert stats["feedback"] == {"stored": len(verdicts) + 1, "pending": 0}


def test_a_redelivered_alert_keeps_its_verdict(
    client: TestClient, services_of: Any, alert: Callable[..., Alert]
) -> None:
    _store(client, services_of, [alert(1)])
    client.post("/alerts/tx-00001/feedback", json={"verdict": "fraud", "analyst": "ana"})
    _store(client, services_of, [alert(1, score=0.97)])
    found = client.get("/alerts/tx-00001").json()
    assert (found["score"], found["verdict"]["verdict"]) == (0.97, "fraud")


# ---- the publisher: exactly once on the topic ---------------------------------------------------------------
@pytest.fixture
def repository(tmp_path: Path, alert: Callable[..., Alert]) -> AlertRepository:
    store = AlertRepository.from_url(f"sqlite:///{tmp_path / 'alerts.db'}")
    store.create_schema()
    store.upsert_many([alert(i) for i in range(6)])
    return store


def _publisher(tmp_path: Path, store: AlertRepository, topic: FakeFeedbackTopic, name: str) -> FeedbackPublisher:
    return FeedbackPublisher(
        unit_settings(tmp_path),
        store.feedback,
        producer_factory=topic.producer,
        consumer_factory=topic.consumer,
        holder=name,
        create_topic=False,
    )


def _ids_on(topic: FakeFeedbackTopic) -> Counter[int]:
    return Counter(orjson.loads(value)["feedback_id"] for _, _, _, value in topic.records())


def test_a_verdict_stored_before_a_crash_is_produced_once_after_the_restart(
    tmp_path: Path, repository: AlertRepository
) -> None:
    topic = FakeFeedbackTopic()
    stored = [repository.feedback.record(f"tx-{i:05d}", "fraud", "ana", None) for i in range(3)]  # then the crash
    assert repository.feedback.counts() == (3, 3)

    publisher = _publisher(tmp_path, repository, topic, "after-restart")
    assert publisher.run_round() == 3
    assert publisher.run_round() == 0
    assert _ids_on(topic) == Counter({s.feedback_id: 1 for s in stored if s})
    assert repository.feedback.counts() == (3, 0)


def test_a_record_whose_delivery_report_was_lost_is_found_on_the_topic_not_produced_again(
    tmp_path: Path, repository: AlertRepository
) -> None:
    topic = FakeFeedbackTopic()
    publisher = _publisher(tmp_path, repository, topic, "one")
    for i in range(4):
        repository.feedback.record(f"tx-{i:05d}", "fraud", "ana", None)
    topic.lose_reports = 2  # written, but the process never hears of it

    assert publisher.run_round() == 0  # in doubt: nothing recorded
    assert publisher.run_round() == 4  # read back from the topic, not produced again
    assert _ids_on(topic) == Counter({1: 1, 2: 1, 3: 1, 4: 1})
    offsets = {f.feedback_id: (f.topic_partition, f.topic_offset) for f in map(repository.feedback.get, range(1, 5))}
    assert sorted(offsets.values()) == sorted((p, o) for p, o, _, _ in topic.records())


def test_a_refused_record_is_produced_again_once(tmp_path: Path, repository: AlertRepository) -> None:
    topic = FakeFeedbackTopic()
    publisher = _publisher(tmp_path, repository, topic, "one")
    for i in range(3):
        repository.feedback.record(f"tx-{i:05d}", "legitimate", "bo", None)
    topic.refuse = 1

    publisher.run_round()
    publisher.run_round()
    assert _ids_on(topic) == Counter({1: 1, 2: 1, 3: 1})
    assert repository.feedback.pending() == []


def test_a_newer_verdict_waits_for_the_older_so_the_topic_keeps_their_order(
    tmp_path: Path, repository: AlertRepository
) -> None:
    topic = FakeFeedbackTopic()
    publisher = _publisher(tmp_path, repository, topic, "one")
    for verdict in ("fraud", "legitimate", "fraud"):
        repository.feedback.record("tx-00001", verdict, "ana", None)
    topic.refuse = 1  # the first fails: the two after it must not overtake it

    publisher.run_round()
    publisher.run_round()
    assert [v.verdict for v in _topic_verdicts(topic)] == ["fraud", "legitimate", "fraud"]
    assert [v.feedback_id for v in _topic_verdicts(topic)] == [1, 2, 3]


def test_only_the_lease_holder_publishes_and_another_takes_over_when_it_expires(
    tmp_path: Path, repository: AlertRepository
) -> None:
    topic = FakeFeedbackTopic()
    first, second = (_publisher(tmp_path, repository, topic, name) for name in ("a", "b"))
    repository.feedback.record("tx-00001", "fraud", "ana", None)
    assert first.run_round() == 1
    repository.feedback.record("tx-00002", "fraud", "ana", None)
    assert second.run_round() == 0  # a holds the lease
    topic.lose_reports = 1
    assert first.run_round() == 0  # written, report lost... and then a dies
    assert repository.feedback.acquire_lease(LEASE, "a", ttl_s=-1.0)  # a's lease runs out
    repository.feedback.record("tx-00003", "fraud", "ana", None)
    assert second.run_round() == 2  # takes over: finds tx-00002 on the topic, produces tx-00003
    assert _ids_on(topic) == Counter({1: 1, 2: 1, 3: 1})


def test_the_api_answers_202_while_the_topic_does_not_take_the_verdict_and_produces_it_later(
    make_client: Callable[..., TestClient], services_of: Any, alert: Callable[..., Alert], feedback_topic: Any
) -> None:
    client = make_client(feedback_publish_timeout_s=0.3)
    _store(client, services_of, [alert(1)])
    feedback_topic.refuse = 1_000_000  # the broker is away

    answer = client.post("/alerts/tx-00001/feedback", json={"verdict": "fraud", "analyst": "ana"})

    assert answer.status_code == 202
    assert answer.json()["published"] is False
    assert client.get("/alerts/tx-00001").json()["verdict"]["verdict"] == "fraud"  # stored all the same
    feedback_topic.refuse = 0  # back
    publisher = services_of(client).feedback
    assert publisher.wait_published(answer.json()["feedback_id"], timeout=10) is not None
    assert _ids_on(feedback_topic) == Counter({answer.json()["feedback_id"]: 1})
