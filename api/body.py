"""What a request body must be before a route reads it: JSON, and arriving in time.

* A POST, PUT or PATCH whose Content-Type is not JSON (``application/json`` or ``application/<x>+json``) is
  answered 415 before the app runs. A request that declares no Content-Type is read as JSON, as FastAPI does.
* The whole body must arrive within FRAUD_API_BODY_TIMEOUT_S of the first read: a client that declares a length
  and sends nothing (or drips a byte at a time) gets 408 and the connection is closed, instead of holding a
  worker slot until it goes away. uvicorn has no such timeout of its own.

Both are one ASGI middleware (a few microseconds a request; the deadline is an ``asyncio.timeout`` around the
reads of the body, not a task).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security import send_json_error

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
UNSUPPORTED_DETAIL = "the request body must be JSON: send Content-Type: application/json"


class BodyTimeoutError(HTTPException):
    """Raised from ``receive`` when the body has not arrived by the deadline; answered 408, connection closed."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            status_code=408,
            detail=f"the request body did not arrive within {timeout_s:g} s (FRAUD_API_BODY_TIMEOUT_S)",
            headers={"connection": "close"},
        )


def is_json(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/<x>+json``, with any parameters; True when absent."""
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class RequestBodyMiddleware:
    """415 for a body that is not JSON; 408 for a body that does not arrive within ``timeout_s``."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in BODY_METHODS and not is_json(Headers(scope=scope).get("content-type")):
            await send_json_error(send, 415, UNSUPPORTED_DETAIL, [(b"connection", b"close")])
            return
        deadline: float | None = None
        complete = False
        started = False

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:  # after the body: a wait for the disconnect, which may be long
                return await receive()
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.timeout_s
            try:
                message = await _until(deadline, receive)
            except TimeoutError:
                raise BodyTimeoutError(self.timeout_s) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyTimeoutError as exc:
            if started:
                raise
            await send_json_error(send, 408, str(exc.detail), [(b"connection", b"close")])


if sys.version_info >= (3, 11):

    async def _until(deadline: float, receive: Callable[[], Awaitable[Any]]) -> Any:
        async with asyncio.timeout_at(deadline):
            return await receive()

else:  # pragma: no cover (Python 3.10)

    async def _until(deadline: float, receive: Callable[[], Awaitable[Any]]) -> Any:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(receive(), max(remaining, 0))
        except asyncio.TimeoutError as exc:
            raise TimeoutError from exc
