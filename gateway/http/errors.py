"""Turning rejections into HTTP responses: the only place that knows status codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from gateway.errors import Rejection

__all__ = ["STATUS", "error_body", "rejection_headers", "send_json", "send_rejection"]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

STATUS: dict[str, int] = {
    "malformed_json": 400,
    "invalid_signature": 401,
    "missing_credentials": 401,
    "timestamp_out_of_window": 401,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "cell_closed": 409,
    "exposure_limit": 409,
    "insufficient_funds": 409,
    "multiplier_below_minimum": 409,
    "nonce_reused": 409,
    "pricing_unavailable": 409,
    "reference_conflict": 409,
    "tick_rejected": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "upgrade_required": 426,
    "invalid_field": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "market_halted": 503,
    "overloaded": 503,
    "quote_stale": 503,
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
