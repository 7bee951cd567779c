"""Access control and request size: the optional API key, and a limit on request bodies.

Both are plain ASGI middleware: far cheaper a request than a FastAPI dependency tree on the /predict path, and
the key check denies by default: with FRAUD_API_KEY set, every path but OPEN_PATHS (the
probes, and the static pages of the docs and the console) needs the key, including the schema, /metrics, unknown
paths and routes added later. The key travels as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` and is
compared in constant time.

The body limit refuses a declared ``Content-Length`` over the limit before the app runs, and counts the bytes
actually received too (a chunked body has no length to declare).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/redoc", "/console", "/console/"})
"""Probes answer without the key, so an orchestrator needs no secret; so do the pages of the docs and the console,
which are static, hold no data, and ask for the key before their first call (/openapi.json stays protected)."""
OPEN_PREFIXES = ("/console/assets/", "/docs/assets/")
"""Static assets of those pages (scripts, styles), served from the package: no data behind them either."""
UNAUTHORIZED_DETAIL = "a valid API key is required: send it as X-API-Key or Authorization: Bearer"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The key in FRAUD_API_KEY."},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "The key in FRAUD_API_KEY as a bearer token."},
}


async def send_json_error(send: Send, status: int, detail: str, extra_headers: list[tuple[bytes, bytes]]) -> None:
    """A JSON error answer `{"detail": ...}` sent straight from an ASGI middleware."""
    body = json.dumps({"detail": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def supplied_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key from ``X-API-Key``, else from ``Authorization: Bearer``; None when neither is there."""
    bearer = None
    for name, value in headers:
        if name == b"x-api-key":
            return value
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                bearer = token.strip()
    return bearer


class ApiKeyMiddleware:
    """401 for every HTTP request outside OPEN_PATHS that lacks the configured key; a no-op without a key."""

    def __init__(self, app: ASGIApp, key: bytes | None) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.key is None or scope["type"] != "http" or self._open(scope):
            await self.app(scope, receive, send)
            return
        supplied = supplied_key(scope["headers"])
        if supplied is not None and hmac.compare_digest(supplied, self.key):
            await self.app(scope, receive, send)
            return
        await send_json_error(send, 401, UNAUTHORIZED_DETAIL, [(b"www-authenticate", b"Bearer")])

    @staticmethod
    def _open(scope: Scope) -> bool:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return path in OPEN_PATHS or (path.startswith(OPEN_PREFIXES) and ".." not in path)


def document_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the key in an OpenAPI document: needed everywhere but on the open paths."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
    for path in OPEN_PATHS:
        for operation in schema.get("paths", {}).get(path, {}).values():
            operation["security"] = []
    return schema


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` when the bytes received pass the limit; answered 413 by the app or the middleware."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"request body larger than {limit} bytes (the limit is FRAUD_API_MAX_BODY_BYTES)",
        )


class BodySizeLimitMiddleware:
    """Answer 413 for request bodies over ``max_bytes``, by declared length or by bytes received."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        detail = BodyTooLargeError(self.max_bytes).detail
        await send_json_error(send, 413, str(detail), [(b"connection", b"close")])
