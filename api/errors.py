"""The one error shape: ``{"error": {"code", "message", "field"}}`` for every failure.

``GodelError`` classes carry their HTTP status and code, so this module only
translates; pydantic errors become 422 naming the field, and Werkzeug's own
errors (404, 405, 413, ...) get the same JSON shape instead of HTML pages.
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from pydantic import ValidationError as PydanticValidationError
from werkzeug.exceptions import HTTPException

from godel.errors import GodelError

from .openapi import json_response
from .schemas import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, field=field))
    return json_response(body, status, headers)


def _godel(exc: GodelError) -> Response:
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.http_status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="godel"')
    return error_response(exc.http_status, exc.code, exc.message, exc.field, headers)


def _pydantic(exc: PydanticValidationError) -> Response:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    return error_response(422, "invalid", f"{field}: {first['msg']}" if field else first["msg"], field)


def _http(exc: HTTPException) -> Response:
    status = exc.code or 500
    field = "body" if status == 413 else None
    allowed = getattr(exc, "valid_methods", None)
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return error_response(status, HTTP_CODES.get(status, "http_error"), exc.description or exc.name, field, headers)


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "internal", f"internal error: {type(exc).__name__}")


def register(app: Flask) -> None:
    app.register_error_handler(GodelError, _godel)
    app.register_error_handler(PydanticValidationError, _pydantic)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
