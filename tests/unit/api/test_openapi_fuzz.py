"""The OpenAPI spec fuzzed with schemathesis against the ASGI app (a real ONNX model, a SQLite store holding
alerts): valid and invalid inputs for every operation; no answer is a 5xx, every status and every answer body is
the one the spec documents, and invalid input is refused. Run once without and once with an API key (401s).

The operations are driven from one test with Hypothesis directly: schemathesis' lazy pytest loader
(``schemathesis.pytest.from_fixture``) does not run under pytest 9.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from fraudstream.schemas import Alert

from .conftest import T0

EXAMPLES_PER_OPERATION_AND_MODE = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
OPERATIONS = {
    "POST /predict",
    "POST /predict/batch",
    "GET /alerts",
    "GET /alerts/stats",
    "GET /alerts/{transaction_id}",
    "GET /model",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
}
KEY = "fuzz-key"


def _fuzz(schema: Any, examples: int, headers: dict[str, str] | None = None) -> tuple[int, set[int]]:
    """Run every operation in both modes; the number of calls made and the statuses seen."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= OPERATIONS
    calls = 0
    statuses: set[int] = set()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: Any) -> None:
                nonlocal calls
                calls += 1
                statuses.add(case.call_and_validate(checks=CHECKS, headers=headers).status_code)

            try:
                fuzz()
            except Unsatisfiable:
                # No invalid input exists for this operation (no parameters, or only a free-form string).
                assert mode is GenerationMode.NEGATIVE, f"no valid input generated for {operation.label}"
    return calls, statuses


def test_no_input_makes_the_api_answer_5xx_or_off_its_spec(
    make_client: Callable[..., TestClient], services_of: Any, alert: Callable[..., Alert]
) -> None:
    client = make_client(api_max_batch=50)
    services_of(client).store.upsert_many([alert(i, T0 + timedelta(minutes=7 * i)) for i in range(30)])

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)

    calls, statuses = _fuzz(schema, EXAMPLES_PER_OPERATION_AND_MODE)

    assert calls >= len(OPERATIONS) * 10  # the generators did produce cases
    assert {200, 404, 422} <= statuses, statuses


def test_with_an_api_key_every_answer_is_documented_too(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_key=KEY)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app, headers={"X-API-Key": KEY})

    _, keyed = _fuzz(schema, 5, headers={"X-API-Key": KEY})
    _, anonymous = _fuzz(schema, 3, headers={"X-API-Key": "wrong"})

    assert 200 in keyed
    assert 401 in anonymous
