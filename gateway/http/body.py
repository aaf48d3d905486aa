"""Reading request bodies with a hard size limit (declared or chunked)."""

from __future__ import annotations

from starlette.types import Receive

from gateway.errors import ErrorCode, Rejection

__all__ = ["ClientGone", "check_json_content_type", "read_body"]


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


def check_json_content_type(value: bytes | None) -> None:
    """Accept ``application/json`` with at most a ``charset=utf-8`` parameter."""
    if value == b"application/json":  # what clients send: no parsing (2.5k instructions)
        return
    if value is not None:
        media, _, params = value.partition(b";")
        if media.strip().lower() == b"application/json":
            params = params.strip().lower().replace(b" ", b"")
            if params in (b"", b"charset=utf-8", b'charset="utf-8"'):
                return
    raise Rejection(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json")


def too_large(limit: int) -> Rejection:
    return Rejection(ErrorCode.PAYLOAD_TOO_LARGE, f"request body is larger than {limit} bytes")


async def read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The whole body, refusing one over ``limit`` bytes before reading it all."""
    if declared is not None:
        if not declared.isdigit():
            raise Rejection(ErrorCode.MALFORMED_JSON, "Content-Length is not a number")
        if int(declared) > limit:
            raise too_large(limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise too_large(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
