"""What the gateway answers, as JSON Schema: every response body and every stream message.

``/openapi.json`` puts these under ``components/schemas``; schemathesis checks every live
response against them (tests/integration/test_schemathesis.py) and the stream tests check
every message they receive. What clients send is gateway/wire.py.
"""

from __future__ import annotations

from typing import Any

from gateway.wire import BET_ID, BET_STATUSES, CELL, MULTIPLIER, NONCE, WALLET

__all__ = ["RESPONSES", "STREAM_MESSAGES", "ref"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object with exactly these members (each of ``required`` always present)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_NUM = {"type": "number"}
_BET_ID = {"type": "string", "pattern": f"^{BET_ID.pattern}$"}
_MULT = {"type": "string", "pattern": f"^{MULTIPLIER.pattern}$"}
_WALLET = {"type": "string", "pattern": f"^{WALLET.pattern}$"}
_CELL_ID = {"type": "string", "pattern": f"^{CELL.pattern}$"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_BREAKER_NAME = {"type": "string", "enum": ["normal", "warning", "critical"]}
_STATUS = {"type": "string", "enum": list(BET_STATUSES)}

RESPONSES: dict[str, dict[str, Any]] = {
    "Error": _object(
        {"error": _object({"code": _STR, "message": _STR, "request_id": _STR}, {"field": _STR})}
    ),
    "Health": _object({"status": {"const": "ok"}}),
    "Readiness": _object(
        {
            "status": {"enum": ["ready", "not_ready"]},
            "checks": {"type": "object", "additionalProperties": _STR},
            "markets": {
                "type": "object",
                "additionalProperties": _object(
                    {"state": _STR, "reasons": {"type": "array", "items": _STR}}
                ),
            },
        }
    ),
    "Receipt": _object(
        {
            "bet_id": _BET_ID,
            "wallet": _WALLET,
            "market": _STR,
            "cell_id": _CELL_ID,
            "amount": _INT,
            "nonce": {"type": "string", "pattern": f"^{NONCE.pattern}$"},
            "timestamp": _INT,
            "multiplier": _MULT,
            "potential_payout": _INT,
            "balance": _INT,
            "status": {"const": "accepted"},
            "accepted_at": _INT,
        }
    ),
    "BetView": _object(
        {
            "bet_id": _BET_ID,
            "wallet": _WALLET,
            "market": _STR,
            "cell_id": _CELL_ID,
            "amount": _INT,
            "nonce": _STR,
            "timestamp": _INT,
            "min_multiplier": _nullable(_MULT),
            "multiplier": _MULT,
            "potential_payout": _INT,
            "status": _STATUS,
            "accepted_at": _INT,
            "payout": _nullable(_INT),
            "settled_at": _nullable(_INT),
            "quote": _nullable(
                _object({"tick_seq": _INT, "sigma_low": _NUM, "sigma_high": _NUM, "p_win": _NUM})
            ),
        }
    ),
    "BetList": _object(
        {"bets": {"type": "array", "items": ref("BetView")}, "next_before": _nullable(_BET_ID)}
    ),
    "WalletView": _object(
        {
            "wallet": _WALLET,
            "balance": _INT,
            "reserved": _INT,
            "open_bets": _INT,
            "open_stake": _INT,
            "open_exposure": _INT,
        }
    ),
    "Cell": _object(
        {
            "cell_id": _CELL_ID,
            "row": _INT,
            "col": _INT,
            "low": _INT,
            "high": _INT,
            "start_ms": _INT,
            "end_ms": _INT,
            "multiplier": _MULT,
        }
    ),
    "Grid": _object(
        {
            "market": _STR,
            "price": _nullable(_INT),
            "price_ts": _nullable(_INT),
            "breaker": _BREAKER_NAME,
            "cells": {"type": "array", "items": ref("Cell")},
        },
        {"server_time_ms": _INT},
    ),
    "MarketSummary": _object(
        {
            "market": _STR,
            "price": _nullable(_INT),
            "price_ts": _nullable(_INT),
            "seq": _nullable(_INT),
            "feed_age_ms": _nullable(_INT),
            "breaker": _object(
                {
                    "state": {"type": "integer", "enum": [0, 1, 2]},
                    "name": _BREAKER_NAME,
                    "reasons": {"type": "array", "items": _STR},
                }
            ),
            "priced": _BOOL,
            "quote_age_ms": _nullable(_INT),
            "volatility": _nullable(
                _object(
                    {
                        "estimate": _NUM,
                        "low": _NUM,
                        "high": _NUM,
                        "samples": _INT,
                        # the short window disagrees with the regime: which way, or null
                        "alarm": _nullable({"type": "string", "enum": ["up", "down"]}),
                    }
                )
            ),
            "grid": _object(
                {
                    "band": _INT,
                    "column_ms": _INT,
                    "lock_ahead_ms": _INT,
                    "horizon_ms": _INT,
                    "rows_each_side": _INT,
                }
            ),
            "limits": _object(
                {
                    "min_bet": _INT,
                    "max_bet": _INT,
                    "wallet_cell_cap": _INT,
                    "min_multiplier": _MULT,
                    "max_multiplier": _MULT,
                }
            ),
            "pricing": _object({"house_edge_bps": _INT, "lead_ms": _INT, "max_quote_age_ms": _INT}),
        }
    ),
    "MarketList": _object(
        {"server_time_ms": _INT, "markets": {"type": "array", "items": ref("MarketSummary")}}
    ),
    "CreditResult": _object(
        {"wallet": _WALLET, "amount": _INT, "reference": _STR, "balance": _INT}
    ),
    "ArchiveResult": _object(
        {"moved": _INT, "ticks_moved": _INT, "archive": _STR, "cutoff_ms": _INT}
    ),
    "TickAck": _object({"market": _STR, "accepted": _INT, "last_seq": _INT}),
    "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
}

# The stream's server messages (docs/FRONTEND.md), one schema each; "type" tells them apart.
_SEQ = {"stream_seq": {"type": "integer", "minimum": 0}}
STREAM_MESSAGES: dict[str, dict[str, Any]] = {
    "StreamHello": _object(
        {
            "type": {"const": "hello"},
            "protocol": {"const": 2},
            "challenge": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "server_time_ms": _INT,
            "markets": {"type": "array", "items": ref("MarketSummary")},
        }
    ),
    "StreamSnapshot": _object(
        {
            "type": {"const": "snapshot"},
            "market": _STR,
            **_SEQ,
            "summary": ref("MarketSummary"),
            "grid": ref("Grid"),
        }
    ),
    "StreamTick": _object(
        {"type": {"const": "tick"}, "market": _STR, **_SEQ, "seq": _INT, "price": _INT, "ts": _INT}
    ),
    "StreamGridDelta": _object(
        {
            "type": {"const": "grid_delta"},
            "market": _STR,
            **_SEQ,
            "price": _nullable(_INT),
            "price_ts": _nullable(_INT),
            "breaker": _BREAKER_NAME,
            "added": {"type": "array", "items": ref("Cell")},
            "changed": {"type": "object", "additionalProperties": _MULT},
            "removed": {"type": "array", "items": _CELL_ID},
        }
    ),
    "StreamBreaker": _object(
        {
            "type": {"const": "breaker"},
            "market": _STR,
            **_SEQ,
            "state": {"type": "integer", "enum": [0, 1, 2]},
            "name": _BREAKER_NAME,
            "reasons": {"type": "array", "items": _STR},
        }
    ),
    "StreamUnwatched": _object(
        {"type": {"const": "unwatched"}, "markets": {"type": "array", "items": _STR}}
    ),
    "StreamSubscribed": _object({"type": {"const": "subscribed"}, "wallet": _WALLET}),
    "StreamBetResult": _object(
        {
            "type": {"const": "bet_result"},
            "bet_id": _BET_ID,
            "market": _STR,
            "cell_id": _CELL_ID,
            "status": {"enum": ["won", "lost", "void"]},
            "amount": _INT,
            "payout": _INT,
            "balance": _INT,
        }
    ),
    "StreamError": _object({"type": {"const": "error"}, "code": _STR, "message": _STR}),
}
