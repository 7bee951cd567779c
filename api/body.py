"""What a request body must be before a route reads it: JSON, and arriving in time.

* A POST, PUT or PATCH whose Content-Type is not JSON (``application/json`` or ``application/<x>+json``) is
  answered 415 before the app runs. A request that declares no Content-Type is read as JSON, as FastAPI does.
* The whole body must arrive within FRAUD_API_BODY_TIMEOUT_S of the route's first read: a client that declares a
  length and sends nothing (or drips a byte at a time) gets 408 and the connection is closed, instead of holding
  the request open until it goes away. uvicorn has no such timeout of its own.

One ASGI middleware on the /predict hot path, so it is kept cheap (an ``asyncio.timeout`` around each read cost
more than the whole middleware does now): other methods pass straight through (their routes never read a body),
and the deadline is one timer handle per request that cancels the waiting read if it fires.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security import send_json_error

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
UNSUPPORTED_DETAIL = "the request body must be JSON: send Content-Type: application/json"
_CLOSE = [(b"connection", b"close")]


class BodyTimeoutError(HTTPException):
    """Raised from ``receive`` when the body has not arrived by the deadline; answered 408, connection closed.

    An HTTPException, so the app's own handler answers it wherever the route was reading its body.
    """

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            status_code=408,
            detail=f"the request body did not arrive within {timeout_s:g} s (FRAUD_API_BODY_TIMEOUT_S)",
            headers={"connection": "close"},
        )


def is_json(content_type: bytes | None) -> bool:
    """True for ``application/json`` and ``application/<x>+json``, with any parameters; True when absent."""
    if content_type is None:
        return True
    media = content_type.partition(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"content-type":
            return value
    return None


class RequestBodyMiddleware:
    """415 for a body that is not JSON; 408 for a body that does not arrive within ``timeout_s``."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if not is_json(_content_type(scope["headers"])):
            await send_json_error(send, 415, UNSUPPORTED_DETAIL, _CLOSE)
            return
        reader = _TimedBody(receive, self.timeout_s)
        try:
            await self.app(scope, reader.receive, send)
        except BodyTimeoutError as exc:  # raised outside the app's own error handling (not by a route's read)
            await send_json_error(send, 408, str(exc.detail), _CLOSE)
        finally:
            reader.close()


class _TimedBody:
    """``receive`` with a deadline over the whole body, set at the first read."""

    __slots__ = ("_deadline", "_done", "_expired", "_receive", "_task", "_timeout_s", "_timer", "_waiting")

    def __init__(self, receive: Receive, timeout_s: float) -> None:
        self._receive = receive
        self._timeout_s = timeout_s
        self._done = False
        self._expired = False
        self._waiting = False
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._deadline = 0.0

    async def receive(self) -> Message:
        if self._done:  # after the body: a wait for the disconnect, which may be long
            return await self._receive()
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._deadline = loop.time() + self._timeout_s
            self._timer = loop.call_at(self._deadline, self._expire)
        elif self._expired:
            raise BodyTimeoutError(self._timeout_s)
        self._waiting = True
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self._expired or self._task is None:
                raise
            uncancel = getattr(self._task, "uncancel", None)  # Python 3.11+ counts cancellations
            if uncancel is not None:
                uncancel()  # the cancel was ours: the deadline passed, not a shutdown
            raise BodyTimeoutError(self._timeout_s) from None
        finally:
            self._waiting = False
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._done = True
            self.close()
        return message

    def _expire(self) -> None:
        self._expired = True
        if self._waiting and self._task is not None:
            self._task.cancel()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
