"""Every query parameter of ours takes one value: a repeated one is 422 naming it, before any route runs.

FastAPI reads a scalar query parameter from the *last* of its repeated values, so ``?min_score=x&min_score=0.5``
would be answered as if the ``x`` had never been sent. An API that silently drops part of its input is not one a
client can trust (and it is off the OpenAPI document, where each parameter is one value), so a key that appears
twice is refused in FastAPI's own 422 shape. A request without a query string, as /predict's usually are, costs
one ``if``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import json_safe

MESSAGE = "give this query parameter once; it was repeated"


def repeated_keys(query_string: bytes) -> dict[str, list[str]]:
    """The keys of ``query_string`` given more than once, each with all its values, decoded as Starlette does."""
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        values.setdefault(key, []).append(value)
    return {key: found for key, found in values.items() if len(found) > 1}


class SingleValuedQueryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        repeated = repeated_keys(scope["query_string"])
        if not repeated:
            await self.app(scope, receive, send)
            return
        detail = [
            json_safe({"type": "repeated", "loc": ["query", key], "msg": MESSAGE, "input": found, "field": key})
            for key, found in repeated.items()
        ]
        body = json.dumps({"detail": detail}).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("ascii"))]
        await send({"type": "http.response.start", "status": 422, "headers": headers})
        await send({"type": "http.response.body", "body": body})
