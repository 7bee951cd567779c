"""What a request body must be: JSON (415 otherwise), sent in time (408 otherwise, over a real socket), and free
of repeated keys (422 naming the key); and the 422 for a lone surrogate stays a 422."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient

from fraudstream.schemas import SEED_EXAMPLE

BODY = json.dumps(SEED_EXAMPLE)


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_that_is_not_json_is_415(client: TestClient, path: str, content_type: str) -> None:
    response = client.post(path, content=BODY, headers={"content-type": content_type})

    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"])
def test_json_content_types_are_accepted(client: TestClient, content_type: str) -> None:
    response = client.post("/predict", content=BODY, headers={"content-type": content_type})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/predict", BODY[:-1] + ', "V3": 1.0}', "V3"),
        ("/predict", BODY[:-1] + ', "\\u0041mount": 1.0}', "Amount"),
        ("/predict/batch", '{"transactions": [' + BODY + ", " + BODY[:-1] + ', "V9": 0}]}', "transactions.1.V9"),
        ("/predict/batch", '{"transactions": [' + BODY + '], "transactions": [' + BODY + "]}", "transactions"),
    ],
)
def test_a_repeated_key_is_422_naming_it(client: TestClient, path: str, body: str, field: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422, response.text
    first = response.json()["detail"][0]
    assert (first["type"], first["field"]) == ("duplicate_key", field)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", '{"\\ud800": 1.0}'),
        ("/predict", BODY[:-1] + ', "V3": "\\udfff"}'),
        ("/predict/batch", '{"transactions": [{"\\ud800x": 1}]}'),
        ("/predict/batch", '{"\\ud83d": []}'),
    ],
)
def test_a_lone_surrogate_is_a_422_in_valid_json(client: TestClient, path: str, body: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert response.json()["detail"]  # the answer itself is valid UTF-8 JSON


# ---- the read timeout, over a real socket -----------------------------------------------------------------------
@pytest.fixture
def server(make_client: Callable[..., TestClient]) -> Iterator[tuple[str, int]]:
    """The app under uvicorn on a free port, with a 0.5 s body timeout (its services started by the client)."""
    app = make_client(api_body_timeout_s=0.5).app
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", timeout_keep_alive=30)
    uvi = uvicorn.Server(config)
    thread = threading.Thread(target=uvi.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvi.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield sock.getsockname()
    uvi.should_exit = True
    thread.join(10)
    sock.close()


@pytest.mark.parametrize("sent", [b"", b'{"Time": 0'], ids=["nothing", "part"])
def test_a_body_declared_but_not_sent_is_408_and_the_connection_closed(server: tuple[str, int], sent: bytes) -> None:
    head = b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 800\r\n\r\n"
    with socket.create_connection(server, timeout=10) as conn:
        started = time.monotonic()
        conn.sendall(head + sent)
        answer = b""
        while chunk := conn.recv(65536):  # until the server closes the connection
            answer += chunk
        waited = time.monotonic() - started

    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"FRAUD_API_BODY_TIMEOUT_S" in answer
    assert 0.4 <= waited < 5


def test_a_body_sent_in_time_is_answered(server: tuple[str, int]) -> None:
    body = BODY.encode()
    head = f"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(server, timeout=10) as conn:
        conn.sendall(head.encode() + body[:100])
        time.sleep(0.1)
        conn.sendall(body[100:])
        answer = conn.recv(65536)

    assert answer.startswith(b"HTTP/1.1 200"), answer
