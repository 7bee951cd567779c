"""The one place where errors become HTTP answers.

* A request that does not validate is 422 in FastAPI's standard shape (``detail``: a list of ``loc``, ``msg``,
  ``type``, ``input``), each error also naming its ``field`` (``V3``, ``transactions.4.Amount``, ``limit``). The
  echoed input is made JSON-safe: NaN, infinity and lone surrogates (``"\ud800"`` is valid JSON, but no UTF-8)
  are what a client may send, and they must not turn a 422 into a 500 on the way out.
* A FraudstreamError is mapped by its class (404, 503...); anything else of ours is a 500 with its message.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.exceptions import (
    AlertNotFoundError,
    InvalidInputError,
    ModelUnavailableError,
    StoreError,
)
from fraudstream.exceptions import FraudstreamError, ModelLoadError, ModelNotFoundError

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[FraudstreamError], int], ...] = (
    (AlertNotFoundError, 404),
    (ModelUnavailableError, 503),
    (ModelNotFoundError, 503),
    (ModelLoadError, 503),
    (StoreError, 503),
)
_LOCATIONS = ("body", "query", "path", "header", "cookie")
MAX_ECHOED_INPUT = 200


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidInputError, _invalid_input)  # type: ignore[arg-type]
    app.add_exception_handler(FraudstreamError, _fraudstream_error)  # type: ignore[arg-type]


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "transactions", 4, "Amount")`` -> ``"transactions.4.Amount"``; the location kind is dropped."""
    parts = list(loc[1:] if loc and loc[0] in _LOCATIONS else loc)
    return ".".join(str(part) for part in parts) or str(loc[0] if loc else "body")


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats written as strings ("nan", "inf"), bytes decoded (undecodable bytes
    replaced) and lone surrogates escaped (``\ud800``), so the 422 body can always be UTF-8 JSON."""
    if isinstance(value, str):
        return _utf8_safe(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {json_safe(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def _utf8_safe(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    detail = []
    for error in errors:
        item = {key: value for key, value in error.items() if key != "url"}
        item["field"] = field_name(error.get("loc", ()))
        if isinstance(item.get("input"), str | bytes) and len(item["input"]) > MAX_ECHOED_INPUT:
            item["input"] = item["input"][:MAX_ECHOED_INPUT]  # an unparsable body is echoed in part only
        detail.append(jsonable_encoder(json_safe(item)))
    return detail


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": validation_detail(list(exc.errors()))})


async def _invalid_input(request: Request, exc: InvalidInputError) -> JSONResponse:
    loc = [exc.location, *exc.field.split(".")]
    error = {"type": "value_error", "loc": loc, "msg": exc.message, "field": exc.field}
    return JSONResponse(status_code=422, content={"detail": [json_safe(error)]})


async def _fraudstream_error(request: Request, exc: FraudstreamError) -> JSONResponse:
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, status, exc)
    return JSONResponse(status_code=status, content={"detail": _utf8_safe(str(exc))})
