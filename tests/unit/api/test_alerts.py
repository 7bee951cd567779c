"""GET /alerts, /alerts/stats and /alerts/{transaction_id} over a real SQLite store."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.schemas import AlertPublic
from fraudstream.schemas import SEED_EXAMPLE, Alert, Explanation, Reason, TransactionFeatures

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def _store(client: TestClient, services_of: Any, alerts: list[Alert]) -> None:
    services_of(client).store.upsert_many(alerts)


def _all_pages(client: TestClient, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        body = client.get("/alerts", params=query).json()
        pages.append(body["data"])
        assert body["count"] == len(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_an_alert_is_found_by_transaction_id_and_an_unknown_one_is_404(
    client: TestClient, services_of: Any, alert: Callable[..., Alert]
) -> None:
    stored = alert(7, transaction_id="creditcard.csv:7")
    _store(client, services_of, [stored])

    found = client.get("/alerts/creditcard.csv:7")
    missing = client.get("/alerts/nope")

    assert found.status_code == 200
    body = found.json()
    assert AlertPublic.model_validate(body).message() == stored
    assert datetime.fromisoformat(body["stored_at"]).tzinfo is not None
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]


def test_pages_are_newest_first_and_never_repeat_or_skip_an_alert(
    client: TestClient, services_of: Any, alert: Callable[..., Alert]
) -> None:
    # 5 event times x 7 alerts each: ties on event_time cross every page boundary.
    alerts = [alert(i, T0 + timedelta(minutes=i % 5)) for i in range(35)]
    _store(client, services_of, alerts)

    for limit in (1, 4, 7, 10, 35, 1000):
        pages = _all_pages(client, limit)
        seen = [item["transaction_id"] for page in pages for item in page]
        assert len(seen) == len(set(seen)) == 35, limit
        assert all(len(page) <= limit for page in pages)
        keys = [(item["event_time"], item["transaction_id"]) for page in pages for item in page]
        assert keys == sorted(keys, reverse=True)


def test_alerts_arriving_between_pages_do_not_disturb_the_walk(
    client: TestClient, services_of: Any, alert: Callable[..., Alert]
) -> None:
    _store(client, services_of, [alert(i, T0 + timedelta(seconds=i)) for i in range(10)])
    first = client.get("/alerts", params={"limit": 4}).json()
    _store(client, services_of, [alert(100 + i, T0 + timedelta(hours=1, seconds=i)) for i in range(3)])  # newer
    _store(client, services_of, [alert(200, T0 - timedelta(hours=1))])  # older: still ahead of the cursor

    rest = _all_pages(client, 4, cursor=first["next_cursor"])

    ids = [item["transaction_id"] for item in first["data"]] + [i["transaction_id"] for p in rest for i in p]
    assert ids == [f"tx-{i:05d}" for i in range(9, -1, -1)] + ["tx-00200"]


def test_filters_since_until_min_score_and_model_version(
    client: TestClient, services_of: Any, alert: Callable[..., Alert]
) -> None:
    _store(
        client,
        services_of,
        [
            alert(1, T0, score=0.6),
            alert(2, T0 + timedelta(hours=1), score=0.95, model_version="2"),
            alert(3, T0 + timedelta(hours=2), score=0.99, model_version="2"),
            alert(4, T0 + timedelta(hours=3), score=0.7),
        ],
    )

    def ids(**params: Any) -> list[str]:
        response = client.get("/alerts", params=params)
        assert response.status_code == 200, response.text
        return [item["transaction_id"][-1] for item in response.json()["data"]]

    assert ids() == ["4", "3", "2", "1"]
    assert ids(since=(T0 + timedelta(hours=1)).isoformat()) == ["4", "3", "2"]
    assert ids(until=(T0 + timedelta(hours=2)).isoformat()) == ["2", "1"]
    assert ids(since="2024-05-01T13:00:00", until="2024-05-01T15:00:00") == ["3", "2"]  # no zone: UTC
    assert ids(since="2024-05-01T15:00:00+02:00") == ["4", "3", "2"]  # 13:00 UTC
    assert ids(min_score=0.9) == ["3", "2"]
    assert ids(model_version="2", min_score=0.97) == ["3"]
    assert ids(model_version="9") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"min_score": 1.5}, "min_score"),
        ({"min_score": "nan"}, "min_score"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "until"),
        ({"since": "9999-12-31T23:59:59-23:59"}, "since"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'["2024-05-01T00:00:00", "x"]').decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'["2024-05-01T00:00:00Z", "\\ud800"]').decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'["2024-05-01T00:00:00Z", "a\\nb"]').decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+14:00", "x"]').decode()}, "cursor"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_parameter(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    response = client.get("/alerts", params=params)

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_stats_count_by_model_version_and_by_utc_hour(
    client: TestClient, services_of: Any, alert: Callable[..., Alert]
) -> None:
    two_hours = [T0 + timedelta(minutes=5), T0 + timedelta(minutes=59), T0 + timedelta(hours=1, minutes=1)]
    _store(client, services_of, [alert(i, t, model_version=str(1 + i % 2)) for i, t in enumerate(two_hours)])
    _store(client, services_of, [alert(9, datetime(2024, 5, 1, 15, 30, tzinfo=timezone(timedelta(hours=2))))])

    body = client.get("/alerts/stats").json()
    window = client.get("/alerts/stats", params={"since": "2024-05-01T13:00:00Z"}).json()

    assert body["total"] == 4
    counts = [{key: item[key] for key in ("model_version", "count")} for item in body["by_model_version"]]
    assert counts == [{"model_version": "1", "count": 3}, {"model_version": "2", "count": 1}]
    hours = {datetime.fromisoformat(item["hour"]): item["count"] for item in body["by_hour"]}
    assert hours == {T0.replace(hour=12): 2, T0.replace(hour=13): 2}  # 15:30+02:00 is 13:30 UTC
    assert window["total"] == 2


def test_stats_of_an_empty_store(client: TestClient) -> None:
    body = client.get("/alerts/stats").json()
    assert (body["total"], body["reviewed"], body["by_model_version"], body["by_hour"]) == (0, 0, [], [])
    assert body["by_verdict"] == {"none": 0, "fraud": 0, "legitimate": 0}
    assert body["score_histogram"] == [0] * 20
    assert len(body["by_minute"]) == 60
    assert {item["count"] for item in body["by_minute"]} == {0}
    assert body["feedback"] == {"stored": 0, "pending": 0}


def test_an_alert_shows_its_transaction_and_its_reasons_in_plain_words(
    client: TestClient, services_of: Any, alert: Callable[..., Alert]
) -> None:
    explanation = Explanation(
        method="treeshap",
        base_value=0.05,
        reasons=[
            Reason(feature="V14", value=-9.8, contribution=0.31, quantile=0.0004),
            Reason(feature="Amount", value=1.0, contribution=0.02, quantile=None),
        ],
    )
    stored = alert(3, explanation=explanation, features=TransactionFeatures(**SEED_EXAMPLE))
    _store(client, services_of, [stored])

    body = client.get("/alerts/tx-00003").json()

    assert [r["text"] for r in body["explanation"]["reasons"]] == [
        "V14 = -9.8, lower than 99.9% of training rows, raised the score by 0.31",
        "Amount = 1, raised the score by 0.02",
    ]
    assert body["features"] == SEED_EXAMPLE
    assert AlertPublic.model_validate(body).message() == stored  # the text is derived, not stored
    listed = client.get("/alerts").json()["data"][0]
    assert listed["explanation"]["reasons"][0]["text"].startswith("V14 = -9.8")


@pytest.mark.parametrize(
    "path", ["/alerts/%20%20", "/alerts/a%09b", "/alerts/a%00b", "/alerts/%1B%5B31m", "/alerts/" + "a" * 201]
)
def test_an_id_no_transaction_can_have_is_422_not_404(client: TestClient, path: str) -> None:
    # (a newline is 404: Starlette's path pattern does not match it, so the route is never reached)
    response = client.get(path)

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "transaction_id"
