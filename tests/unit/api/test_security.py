"""FRAUD_API_KEY (X-API-Key or Bearer) on every route but health and readiness; the request body limit."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from fraudstream.schemas import SEED_EXAMPLE

KEY = "s3cret-key"
PROTECTED = [
    ("POST", "/predict"),
    ("POST", "/predict/batch"),
    ("GET", "/alerts"),
    ("GET", "/alerts/stats"),
    ("GET", "/alerts/tx-1"),
    ("GET", "/model"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/alerts/tx-1/feedback"),
    ("GET", "/alerts/tx-1/feedback"),
]
PAGES = ["/docs", "/redoc", "/console/", "/console/assets/console.js", "/docs/assets/swagger-ui-bundle.js"]


@pytest.fixture
def keyed(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(api_key=KEY)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_route_needs_the_key_when_one_is_set(keyed: TestClient, method: str, path: str) -> None:
    body = {"json": SEED_EXAMPLE} if path == "/predict" else {}
    missing = keyed.request(method, path, **body)
    wrong = keyed.request(method, path, headers={"X-API-Key": "guess"}, **body)
    wrong_bearer = keyed.request(method, path, headers={"Authorization": "Bearer guess"}, **body)

    for response in (missing, wrong, wrong_bearer):
        assert response.status_code == 401
        assert "API key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}], ids=["header", "bearer"])
def test_the_key_opens_the_routes_as_header_or_bearer_token(keyed: TestClient, headers: dict[str, str]) -> None:
    assert keyed.post("/predict", json=SEED_EXAMPLE, headers=headers).status_code == 200
    assert keyed.get("/alerts", headers=headers).status_code == 200
    assert keyed.get("/alerts/none", headers=headers).status_code == 404
    assert keyed.get("/openapi.json", headers=headers).status_code == 200
    assert keyed.get("/metrics", headers=headers).status_code == 200


def test_health_and_readiness_stay_open(keyed: TestClient) -> None:
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200


@pytest.mark.parametrize("path", PAGES)
def test_the_docs_and_console_pages_open_without_the_key_but_hold_no_data(keyed: TestClient, path: str) -> None:
    # Static files only: the schema and every route they call stay behind the key (PROTECTED above), and the
    # pages ask for the key before their first call.
    response = keyed.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in ("text/html", "text/javascript", "application/javascript")


@pytest.mark.parametrize("path", ["/console/assets/../../openapi.json", "/docs/assets/%2e%2e/openapi.json"])
def test_the_open_asset_folders_do_not_lead_elsewhere(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code in (401, 404)


def test_without_a_key_everything_is_open(client: TestClient) -> None:
    assert client.post("/predict", json=SEED_EXAMPLE).status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_a_body_over_the_limit_is_413_by_declared_length(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_max_body_bytes=2048)
    big = {"transactions": [SEED_EXAMPLE] * 10}  # ~7 kB

    response = client.post("/predict/batch", json=big)

    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]
    assert client.post("/predict/batch", json={"transactions": [SEED_EXAMPLE]}).status_code == 200


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_a_streamed_body_over_the_limit_is_413_by_bytes_received(
    make_client: Callable[..., TestClient], path: str
) -> None:
    client = make_client(api_max_body_bytes=2048)

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"transactions": ['
        for _ in range(10):
            yield (json.dumps(SEED_EXAMPLE) + ",").encode()
        yield b"{}]}"

    response = client.post(path, content=chunks(), headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert "FRAUD_API_MAX_BODY_BYTES" in response.json()["detail"]


def test_the_schema_declares_the_key_when_one_is_set(keyed: TestClient, client: TestClient) -> None:
    spec = keyed.get("/openapi.json", headers={"X-API-Key": KEY}).json()

    assert set(spec["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    assert spec["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert "securitySchemes" not in client.get("/openapi.json").json()["components"]


def test_an_unknown_path_needs_the_key_too(keyed: TestClient) -> None:
    assert keyed.get("/no/such/path").status_code == 401
    assert keyed.get("/no/such/path", headers={"X-API-Key": KEY}).status_code == 404
