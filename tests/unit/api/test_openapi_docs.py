"""Every status a route answers is in the OpenAPI document, with the schema of its body."""

from __future__ import annotations

from fastapi.testclient import TestClient

BODY_STATUSES = {"200", "401", "408", "413", "415", "422", "503"}
EXPECTED = {
    ("post", "/predict"): BODY_STATUSES,
    ("post", "/predict/batch"): BODY_STATUSES,
    ("get", "/alerts"): {"200", "401", "422", "503"},
    ("get", "/alerts/stats"): {"200", "401", "422", "503"},
    ("get", "/alerts/{transaction_id}"): {"200", "401", "404", "422", "503"},
    ("get", "/model"): {"200", "401", "503"},
    ("get", "/metrics"): {"200", "401"},
    ("get", "/readyz"): {"200", "503"},
    ("get", "/healthz"): {"200"},
}


def test_every_status_of_every_route_is_documented_with_its_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    for (method, path), statuses in EXPECTED.items():
        responses = spec["paths"][path][method]["responses"]
        assert set(responses) == statuses, (method, path, set(responses))
        for status in statuses - {"200"}:
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in schemas, (path, status)
    for body in ("TransactionFeatures", "TransactionBatch"):
        assert body in schemas
    assert schemas["ValidationErrorItem"]["required"] == ["loc", "msg", "type", "field"]
