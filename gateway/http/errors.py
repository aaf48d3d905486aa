"""Turning rejections into HTTP responses: the only place that knows status codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from gateway.errors import ErrorCode, Rejection

__all__ = ["STATUS", "error_body", "rejection_headers", "send_json", "send_rejection"]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# Every ErrorCode has its status here (tests/http/test_errors.py proves the table complete).
STATUS: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED_JSON: 400,
    ErrorCode.INVALID_HEADER: 400,
    ErrorCode.INVALID_SIGNATURE: 401,
    ErrorCode.MISSING_CREDENTIALS: 401,
    ErrorCode.TIMESTAMP_OUT_OF_WINDOW: 401,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CELL_CLOSED: 409,
    ErrorCode.EXPOSURE_LIMIT: 409,
    ErrorCode.INSUFFICIENT_FUNDS: 409,
    ErrorCode.MULTIPLIER_BELOW_MINIMUM: 409,
    ErrorCode.NONCE_REUSED: 409,
    ErrorCode.PRICING_UNAVAILABLE: 409,
    ErrorCode.REFERENCE_CONFLICT: 409,
    ErrorCode.TICK_REJECTED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.UPGRADE_REQUIRED: 426,
    ErrorCode.INVALID_FIELD: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.HEADERS_TOO_LARGE: 431,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.MARKET_HALTED: 503,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.QUOTE_STALE: 503,
}

_JSON = (b"content-type", b"application/json")


def error_body(rejection: Rejection, request_id: str) -> bytes:
    error: dict[str, str] = {
        "code": rejection.code,
        "message": rejection.message,
        "request_id": request_id,
    }
    if rejection.field is not None:
        error["field"] = rejection.field
    return orjson.dumps({"error": error})


def rejection_headers(rejection: Rejection) -> list[tuple[bytes, bytes]]:
    headers = list(rejection.headers)
    if rejection.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(rejection.retry_after))).encode()))
    return headers


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    out = [_JSON, (b"content-length", str(len(body)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_rejection(send: Send, rejection: Rejection, request_id: str) -> None:
    await send_json(
        send,
        STATUS[rejection.code],
        error_body(rejection, request_id),
        rejection_headers(rejection),
    )
