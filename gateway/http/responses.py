"""Starlette responses in the gateway's JSON shapes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from gateway.errors import ErrorCode, Rejection, internal_rejection
from gateway.http.body import check_json_content_type, read_body
from gateway.http.context import request_id
from gateway.http.errors import STATUS, error_body, rejection_headers
from gateway.protocol import refuse_repeated_keys

__all__ = [
    "JSON",
    "http_exception",
    "internal_error",
    "json_body",
    "json_object",
    "rejection_response",
]


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object (400 ``malformed_json`` otherwise)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejection(ErrorCode.MALFORMED_JSON, "body is not valid JSON") from exc
    if type(data) is not dict:
        raise Rejection(ErrorCode.MALFORMED_JSON, "body must be a JSON object")
    refuse_repeated_keys(body)  # admin bodies are small and rare: the exact check always
    return data


async def json_body(request: Request, limit: int) -> dict[str, Any]:
    """A JSON-object body of at most ``limit`` bytes, with the content type checked."""
    check_json_content_type(request.headers.get("content-type", "").encode("latin-1"))
    declared = request.headers.get("content-length")
    body = await read_body(request.receive, None if declared is None else declared.encode(), limit)
    return json_object(body)


def rejection_response(request: HTTPConnection, exc: Exception) -> Response:
    if not isinstance(exc, Rejection):
        raise TypeError(exc)
    headers = {k.decode(): v.decode() for k, v in rejection_headers(exc)}
    return Response(
        error_body(exc, request_id(request.scope)),
        status_code=STATUS[exc.code],
        headers=headers,
        media_type="application/json",
    )


def internal_error(request: Request, exc: Exception) -> Response:
    """A bug in a Starlette route: the generic 500 body, the request id and nothing else.

    Starlette re-raises the exception after this response, so RequestContext logs it.
    """
    return rejection_response(request, internal_rejection())


def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the gateway's error shape."""
    if not isinstance(exc, HTTPException):
        raise TypeError(exc)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        rejection = Rejection(
            ErrorCode.METHOD_NOT_ALLOWED,
            "method not allowed on this path",
            headers=((b"allow", allow.encode("latin-1")),) if allow else (),
        )
    else:
        rejection = Rejection(ErrorCode.NOT_FOUND, "no such resource")
    return rejection_response(request, rejection)
