"""Check a message against a schema of /openapi.json (tests use it for the stream)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs

from gateway.http.openapi import openapi

STREAM_SCHEMA = {
    "hello": "StreamHello", "snapshot": "StreamSnapshot", "tick": "StreamTick",
    "grid_delta": "StreamGridDelta", "breaker": "StreamBreaker", "unwatched": "StreamUnwatched",
    "subscribed": "StreamSubscribed", "bet_result": "StreamBetResult", "error": "StreamError",
}  # fmt: skip


@cache
def _validator(name: str) -> Any:
    schemas = openapi()["components"]["schemas"]
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    )


def schema_errors(name: str, instance: object) -> list[str]:
    """Why ``instance`` does not match the schema ``name`` (empty when it does)."""
    return [str(error) for error in _validator(name).iter_errors(instance)]


def stream_errors(message: dict[str, Any]) -> list[str]:
    """Why a stream message does not match the schema of its type."""
    name = STREAM_SCHEMA.get(message.get("type", ""))
    return (
        [f"unknown type {message.get('type')!r}"] if name is None else schema_errors(name, message)
    )
