"""Starlette responses in the gateway's JSON shapes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import Rejection
from gateway.http.context import request_id
from gateway.http.errors import STATUS, error_body, rejection_headers

__all__ = ["JSON", "http_exception", "rejection_response"]


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def rejection_response(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, Rejection):
        raise TypeError(exc)
    headers = {k.decode(): v.decode() for k, v in rejection_headers(exc)}
    return Response(
        error_body(exc, request_id(request.scope)),
        status_code=STATUS[exc.code],
        headers=headers,
        media_type="application/json",
    )


def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the gateway's error shape."""
    if not isinstance(exc, HTTPException):
        raise TypeError(exc)
    if exc.status_code == 405:
        rejection = Rejection("method_not_allowed", "method not allowed on this path")
    else:
        rejection = Rejection("not_found", "no such resource")
    return rejection_response(request, rejection)
