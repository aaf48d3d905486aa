"""The OpenAPI 3.1 description served at ``/openapi.json``.

Written by hand next to the routes (docs/API.md is the prose); tests/test_openapi.py keeps
its paths and methods equal to the application's routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway import __version__
from gateway.protocol import CELL_PATTERN, MAX_AMOUNT, MAX_TIMESTAMP

__all__ = ["openapi"]

_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: int, ok_schema: dict[str, Any], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {str(ok): {"description": "success", **_json(ok_schema)}}
    for status in errors:
        out[str(status)] = {"description": "error (docs/API.md lists the codes)", **_json(_ERROR)}
    return out


_OBJECT: dict[str, Any] = {"type": "object"}
_SIGNED_READ = [
    {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
    for h in ("X-Tapgate-Wallet", "X-Tapgate-Timestamp", "X-Tapgate-Signature")
]
_ADMIN: list[dict[str, list[str]]] = [{"bearer": []}]


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_BET: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["wallet", "market", "cell_id", "amount", "nonce", "timestamp", "signature"],
    "properties": {
        "wallet": _HEX64,
        "market": {"type": "string"},
        "cell_id": {
            "type": "string",
            "pattern": f"^{CELL_PATTERN}$",
        },
        "amount": {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT},
        "nonce": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "timestamp": {"type": "integer", "minimum": 0, "maximum": MAX_TIMESTAMP},
        "min_multiplier": {"type": "string", "pattern": "^(0|[1-9][0-9]{0,5})\\.[0-9]{2}$"},
        "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
    },
}


_TICKS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ticks"],
    "properties": {
        "ticks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["seq", "price", "ts", "signature"],
                "properties": {
                    "seq": {"type": "integer", "minimum": 1, "maximum": 2**62},
                    "price": {"type": "integer", "minimum": 1, "maximum": 10**15},
                    "ts": {"type": "integer", "minimum": 0, "maximum": 10**15},
                    "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
                },
            },
        }
    },
}
_CREDIT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["amount", "reference"],
    "properties": {
        "amount": {"type": "integer", "minimum": 1, "maximum": 10**15},
        "reference": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    },
}
_HALT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 200}},
}
_ARCHIVE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["older_than_s"],
    "properties": {"older_than_s": {"type": "integer", "minimum": 0, "maximum": 10 * 365 * 86400}},
}


# One name per operation, for generated clients (openapi-typescript, orval).
OPERATION_IDS = {
    ("/healthz", "get"): "health",
    ("/readyz", "get"): "readiness",
    ("/metrics", "get"): "metrics",
    ("/openapi.json", "get"): "openapi",
    ("/api/bets", "post"): "placeBet",
    ("/api/bets/{bet_id}", "get"): "getBet",
    ("/api/wallets/{wallet}", "get"): "getWallet",
    ("/api/wallets/{wallet}/bets", "get"): "listWalletBets",
    ("/api/markets", "get"): "listMarkets",
    ("/api/markets/{market}/grid", "get"): "getGrid",
    ("/admin/wallets/{wallet}/credit", "post"): "creditWallet",
    ("/admin/archive", "post"): "archive",
    ("/admin/markets/{market}/ticks", "post"): "postTicks",
    ("/admin/markets/{market}/halt", "post"): "haltMarket",
    ("/admin/markets/{market}/resume", "post"): "resumeMarket",
}


def openapi(markets: Sequence[str] = ("BTC-USD", "ETH-USD")) -> dict[str, Any]:
    """The document for a gateway serving ``markets``, built on each call (it is small)."""
    document = _document(markets)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            operation["operationId"] = OPERATION_IDS[(path, method)]
    return document


def _document(markets: Sequence[str]) -> dict[str, Any]:
    bet_id = _path("bet_id", {"type": "string", "pattern": "^[1-9][0-9]{0,18}$"})
    wallet = _path("wallet", _HEX64)
    market = _path("market", {"type": "string", "enum": list(markets)})
    bet = {**_BET, "properties": {**_BET["properties"], "market": {"enum": list(markets)}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tapgate",
            "version": __version__,
            "description": "docs/API.md. The WebSocket GET /api/stream is not an OpenAPI "
            "operation: its protocol is in docs/FRONTEND.md (a plain GET gets 426).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message", "request_id"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "request_id": {"type": "string"},
                                "field": {"type": "string"},
                            },
                        }
                    },
                },
                "Bet": bet,
            },
        },
        "paths": {
            "/healthz": {"get": {"responses": _responses(200, _OBJECT)}},
            "/readyz": {"get": {"responses": _responses(200, _OBJECT, 503)}},
            "/metrics": {
                "get": {
                    "description": "Prometheus text; admin allowlist only",
                    "responses": {
                        "200": {"description": "text/plain metrics"},
                        "403": {"description": "forbidden"},
                    },
                }
            },
            "/openapi.json": {"get": {"responses": _responses(200, _OBJECT)}},
            "/api/bets": {
                "post": {
                    "requestBody": {
                        "required": True,
                        **_json({"$ref": "#/components/schemas/Bet"}),
                    },
                    "responses": _responses(202, _OBJECT, 400, 401, 409, 413, 415, 422, 429, 503),
                }
            },
            "/api/bets/{bet_id}": {
                "get": {
                    "parameters": [bet_id, *_SIGNED_READ],
                    "responses": _responses(200, _OBJECT, 401, 404, 429),
                }
            },
            "/api/wallets/{wallet}": {
                "get": {
                    "parameters": [wallet, *_SIGNED_READ],
                    "responses": _responses(200, _OBJECT, 401, 404, 429),
                }
            },
            "/api/wallets/{wallet}/bets": {
                "get": {
                    "parameters": [wallet, *_SIGNED_READ],
                    "responses": _responses(200, _OBJECT, 401, 404, 422, 429),
                }
            },
            "/api/markets": {"get": {"responses": _responses(200, _OBJECT, 429)}},
            "/api/markets/{market}/grid": {
                "get": {"parameters": [market], "responses": _responses(200, _OBJECT, 404, 429)}
            },
            "/admin/wallets/{wallet}/credit": {
                "post": {
                    "security": _ADMIN,
                    "parameters": [wallet],
                    "requestBody": {"required": True, **_json(_CREDIT)},
                    "responses": _responses(200, _OBJECT, 400, 401, 403, 409, 413, 415, 422, 429),
                }
            },
            "/admin/archive": {
                "post": {
                    "security": _ADMIN,
                    "requestBody": {"required": True, **_json(_ARCHIVE)},
                    "responses": _responses(200, _OBJECT, 400, 401, 403, 413, 415, 422, 429),
                }
            },
            "/admin/markets/{market}/ticks": {
                "post": {
                    "description": "oracle-signed ticks; admin allowlist, no token",
                    "parameters": [market],
                    "requestBody": {"required": True, **_json(_TICKS)},
                    "responses": _responses(
                        200, _OBJECT, 400, 401, 403, 404, 409, 413, 415, 422, 429
                    ),
                }
            },
            "/admin/markets/{market}/halt": {
                "post": {
                    "security": _ADMIN,
                    "parameters": [market],
                    "requestBody": {"required": True, **_json(_HALT)},
                    "responses": _responses(200, _OBJECT, 400, 401, 403, 404, 413, 415, 422, 429),
                }
            },
            "/admin/markets/{market}/resume": {
                "post": {
                    "security": _ADMIN,
                    "parameters": [market],
                    "responses": _responses(200, _OBJECT, 401, 403, 404, 429),
                }
            },
        },
    }
