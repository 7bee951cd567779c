"""A repeated query parameter is 422 naming it: FastAPI would keep the last value and drop the others unseen."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.query import repeated_keys


def test_repeated_keys_finds_only_the_keys_given_twice() -> None:
    assert repeated_keys(b"a=1&b=2&a=&c=3") == {"a": ["1", ""]}
    assert repeated_keys(b"min_score=%C3%B2&min_score=0.5") == {"min_score": ["\u00f2", "0.5"]}
    assert repeated_keys(b"limit=5") == {}


def test_a_repeated_query_parameter_is_422_naming_it(client: TestClient) -> None:
    answer = client.get("/alerts/stats", params=[("min_score", "x"), ("min_score", "+0.0")])
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["field"] == "min_score"
    assert error["loc"] == ["query", "min_score"]
    assert error["input"] == ["x", "+0.0"]
    assert client.get("/alerts/stats", params={"min_score": "0.5"}).status_code == 200


def test_a_lone_surrogate_in_a_repeated_value_still_answers_json(client: TestClient) -> None:
    answer = client.get("/alerts", params=[("cursor", "%ED%A0%80"), ("cursor", "b")])
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "cursor"
