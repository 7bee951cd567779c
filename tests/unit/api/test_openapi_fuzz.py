"""The OpenAPI spec fuzzed with schemathesis against the ASGI app (a real ONNX model, a SQLite store holding
alerts): valid and invalid inputs for every operation, and no answer is a 5xx.

The operations are driven from one test with Hypothesis directly: schemathesis' lazy pytest loader
(``schemathesis.pytest.from_fixture``) does not run under pytest 9.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from fraudstream.schemas import Alert

from .conftest import T0

EXAMPLES_PER_OPERATION_AND_MODE = 50


@pytest.fixture
def fuzz_schema(make_client: Callable[..., TestClient], services_of: Any, alert: Callable[..., Alert]) -> Any:
    client = make_client(api_max_batch=50)
    services_of(client).store.upsert_many([alert(i, T0 + timedelta(minutes=7 * i)) for i in range(30)])
    return schemathesis.openapi.from_asgi("/openapi.json", client.app)


def test_no_input_makes_the_api_answer_5xx(fuzz_schema: Any) -> None:
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
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
    calls = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: Any) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(checks=[not_a_server_error])

            try:
                fuzz()
            except Unsatisfiable:
                # No invalid input exists for this operation (no parameters, or only a free-form string).
                assert mode is GenerationMode.NEGATIVE, f"no valid input generated for {operation.label}"
    assert calls >= len(operations) * 10  # the generators did produce cases
