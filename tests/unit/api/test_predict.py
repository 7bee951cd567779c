"""POST /predict and /predict/batch: answers from the kernel's FraudModel, and 422s that name the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fraudstream.model.engine import OnnxEngine
from fraudstream.model.explain import describe
from fraudstream.schemas import FEATURES, SEED_EXAMPLE, Reason, TransactionFeatures, feature_matrix

from ..conftest import SmallForest


def _post_raw(client: TestClient, path: str, text: str) -> object:
    return client.post(path, content=text, headers={"content-type": "application/json"})


def test_predict_answers_with_the_kernel_model_score_threshold_and_version(
    client: TestClient, onnx_engine: OnnxEngine
) -> None:
    response = client.post("/predict", json=SEED_EXAMPLE)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"fraudulent", "score", "threshold", "model_version", "explanation"}
    assert body["explanation"] is None  # a legitimate answer is explained only on request
    expected = float(onnx_engine.fraud_probability(feature_matrix([TransactionFeatures(**SEED_EXAMPLE)]))[0])
    assert body["score"] == pytest.approx(expected, abs=1e-9)
    assert body["threshold"] == 0.5
    assert body["fraudulent"] is (expected >= 0.5)
    assert body["model_version"] == "1"


def test_integers_are_numbers(client: TestClient) -> None:
    response = client.post("/predict", json={**SEED_EXAMPLE, "Time": 0, "Amount": 3})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "error_type"),
    [
        ({k: v for k, v in SEED_EXAMPLE.items() if k != "V7"}, "V7", "missing"),
        ({**SEED_EXAMPLE, "merchant": "acme"}, "merchant", "extra_forbidden"),
        ({**SEED_EXAMPLE, "V3": "1.5"}, "V3", "float_type"),
        ({**SEED_EXAMPLE, "V3": True}, "V3", "float_type"),
        ({**SEED_EXAMPLE, "Amount": -0.01}, "Amount", "greater_than_equal"),
        ({**SEED_EXAMPLE, "Time": -1.0}, "Time", "greater_than_equal"),
        ({**SEED_EXAMPLE, "V12": None}, "V12", "float_type"),
    ],
    ids=["missing", "unknown", "string", "boolean", "negative-amount", "negative-time", "null"],
)
def test_invalid_transactions_are_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str, error_type: str
) -> None:
    response = client.post("/predict", json=body)

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert error["field"] == field
    assert error["type"] == error_type


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_422_and_the_answer_is_valid_json(client: TestClient, literal: str) -> None:
    text = json.dumps(SEED_EXAMPLE).replace('"V5": -0.338321', f'"V5": {literal}')
    assert literal in text

    response = _post_raw(client, "/predict", text)

    assert response.status_code == 422  # type: ignore[attr-defined]
    (error,) = response.json()["detail"]  # type: ignore[attr-defined]
    assert error["field"] == "V5"
    assert error["type"] == "finite_number"


def test_malformed_json_a_non_object_and_undecodable_bytes_are_422(client: TestClient) -> None:
    truncated = _post_raw(client, "/predict", '{"Time": 0,' + " " * 5000)
    assert truncated.status_code == 422  # type: ignore[attr-defined]
    assert truncated.json()["detail"][0]["type"] == "json_invalid"  # type: ignore[attr-defined]
    assert len(truncated.json()["detail"][0]["input"]) <= 200  # type: ignore[attr-defined]
    assert client.post("/predict", json=[SEED_EXAMPLE]).status_code == 422
    binary = client.post("/predict", content=b"\x80\xff", headers={"content-type": "application/json"})
    assert binary.status_code == 422
    assert client.post("/predict", content=b"").status_code == 422


def test_the_seed_example_is_the_openapi_example(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]["seed"]["value"] == SEED_EXAMPLE
    assert spec["components"]["schemas"]["TransactionFeatures"]["examples"] == [SEED_EXAMPLE]


def test_batch_scores_in_request_order_with_one_version(client: TestClient, onnx_engine: OnnxEngine) -> None:
    rng = np.random.default_rng(0)
    rows = [{**SEED_EXAMPLE, "V14": float(v), "V4": float(-v)} for v in rng.normal(0, 6, 20)]

    response = client.post("/predict/batch", json={"transactions": rows})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 20
    expected = onnx_engine.fraud_probability(feature_matrix([TransactionFeatures(**row) for row in rows]))
    assert [item["score"] for item in body["data"]] == pytest.approx(expected.tolist(), abs=1e-9)
    assert [item["fraudulent"] for item in body["data"]] == [bool(s >= 0.5) for s in expected]
    assert {item["model_version"] for item in body["data"]} == {"1"}
    single = client.post("/predict", json=rows[3]).json()
    assert single == body["data"][3]


def test_batch_over_the_configured_limit_or_empty_is_422(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_max_batch=3)

    over = client.post("/predict/batch", json={"transactions": [SEED_EXAMPLE] * 4})
    empty = client.post("/predict/batch", json={"transactions": []})
    bad_row = client.post("/predict/batch", json={"transactions": [SEED_EXAMPLE, {**SEED_EXAMPLE, "Amount": -1}]})

    assert over.status_code == 422
    assert over.json()["detail"][0]["field"] == "transactions"
    assert "at most 3" in over.json()["detail"][0]["msg"]
    assert empty.status_code == 422
    assert bad_row.status_code == 422
    assert bad_row.json()["detail"][0]["field"] == "transactions.1.Amount"
    assert client.post("/predict/batch", json={"transactions": [SEED_EXAMPLE] * 3}).status_code == 200


def test_no_model_yet_is_503_telling_to_run_the_trainer(
    make_client: Callable[..., TestClient], fake_registry: Any
) -> None:
    client = make_client(registry=fake_registry(None))

    single = client.post("/predict", json=SEED_EXAMPLE)
    batch = client.post("/predict/batch", json={"transactions": [SEED_EXAMPLE]})

    assert single.status_code == 503
    assert "fraudstream train" in single.json()["detail"]
    assert batch.status_code == 503


def test_the_model_is_reloaded_when_the_alias_moves(
    make_client: Callable[..., TestClient], onnx_engine: OnnxEngine, fake_registry: Any, services_of: Any
) -> None:
    registry = fake_registry(None)
    client = make_client(registry=registry)
    models = services_of(client).models
    assert client.post("/predict", json=SEED_EXAMPLE).status_code == 503

    registry.engine, registry.alias_version = onnx_engine, "1"
    assert models.refresh() is True
    assert client.post("/predict", json=SEED_EXAMPLE).json()["model_version"] == "1"

    registry.alias_version, registry.threshold = "2", 0.0  # a version flagging everything
    assert models.refresh() is True
    moved = client.post("/predict", json=SEED_EXAMPLE).json()
    assert moved["model_version"] == "2"
    assert moved["threshold"] == 0.0
    assert moved["fraudulent"] is True
    assert models.refresh() is False  # same version: nothing reloaded
    assert registry.loads == ["1", "2"]


# ---- reason codes ------------------------------------------------------------------------------------------------
def _rows(small_forest: SmallForest, frauds: bool, count: int) -> list[dict[str, float]]:
    frame = small_forest.frame[small_forest.frame["Class"] == int(frauds)].head(count)
    return [{name: float(row[name]) for name in FEATURES} for row in frame.to_dict("records")]


def _kernel_reasons(small_forest: SmallForest, row: dict[str, float]) -> list[tuple[str, float, float]]:
    (explanation,) = small_forest.explainer().explain(feature_matrix([TransactionFeatures(**row)]))
    return [(r.feature, r.value, r.contribution) for r in explanation.reasons]


def test_a_fraudulent_answer_carries_the_kernels_reasons_in_plain_words(
    client: TestClient, small_forest: SmallForest
) -> None:
    fraud = next(row for row in _rows(small_forest, True, 50) if client.post("/predict", json=row).json()["fraudulent"])

    body = client.post("/predict", json=fraud).json()

    explanation = body["explanation"]
    assert explanation["method"] == "treeshap"
    assert [(r["feature"], r["value"], r["contribution"]) for r in explanation["reasons"]] == _kernel_reasons(
        small_forest, fraud
    )
    assert len(explanation["reasons"]) == 3
    first = explanation["reasons"][0]
    assert first["text"] == describe(Reason(**{k: v for k, v in first.items() if k != "text"}))
    assert first["text"].startswith(f"{first['feature']} = ")


def test_explain_true_explains_a_legitimate_answer_and_a_bad_flag_is_422(
    client: TestClient, small_forest: SmallForest
) -> None:
    (legit,) = _rows(small_forest, False, 1)
    assert client.post("/predict", json=legit).json()["explanation"] is None
    explained = client.post("/predict", params={"explain": "true"}, json=legit).json()
    assert explained["fraudulent"] is False
    assert explained["explanation"]["method"] == "treeshap"
    assert all(r["contribution"] > 0 for r in explained["explanation"]["reasons"])
    assert client.post("/predict", params={"explain": "false"}, json=legit).json()["explanation"] is None
    bad = client.post("/predict", params={"explain": "maybe"}, json=legit)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "explain"


def test_a_bad_explain_flag_is_422_whatever_the_answer_would_have_been(
    client: TestClient, small_forest: SmallForest
) -> None:
    # the flag was once read only for a legitimate answer, so a fraudulent one answered 200 to ?explain=-5e307
    (fraud,) = _rows(small_forest, True, 1)
    assert client.post("/predict", json=fraud).json()["fraudulent"] is True
    bad = client.post("/predict", params={"explain": "-5.4e307"}, json=fraud)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "explain"


def test_a_batch_explains_its_fraudulent_answers_or_all_on_request(
    client: TestClient, small_forest: SmallForest
) -> None:
    rows = _rows(small_forest, True, 5) + _rows(small_forest, False, 5)
    body = client.post("/predict/batch", json={"transactions": rows}).json()
    for row, item in zip(rows, body["data"], strict=True):
        if item["fraudulent"]:
            reasons = [(r["feature"], r["value"], r["contribution"]) for r in item["explanation"]["reasons"]]
            assert reasons == _kernel_reasons(small_forest, row)
        else:
            assert item["explanation"] is None
    everything = client.post("/predict/batch", params={"explain": "true"}, json={"transactions": rows}).json()
    assert all(item["explanation"] is not None for item in everything["data"])
