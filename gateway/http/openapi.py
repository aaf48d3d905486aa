"""The OpenAPI 3.1 description served at ``/openapi.json``.

Written by hand next to the routes (docs/API.md is the prose); tests/test_openapi.py keeps
its paths and methods equal to the application's routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway import __version__
from gateway.http.schemas import RESPONSES, STREAM_MESSAGES, ref
from gateway.wire import (
    ARCHIVE,
    BET,
    BET_ID,
    BET_STATUSES,
    CREDIT,
    DEV_FUNDING,
    HALT,
    LIST_LIMIT,
    NONCE,
    READ_TIMESTAMP_DIGITS,
    SIGNATURE,
    SUBSCRIBE,
    TICKS,
    WALLET,
    WATCH,
)

__all__ = ["OPERATION_IDS", "openapi"]

_ERROR = ref("Error")


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: int, ok_schema: str, *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {str(ok): {"description": "success", **_json(ref(ok_schema))}}
    for status in errors:
        out[str(status)] = {"description": "error (docs/API.md lists the codes)", **_json(_ERROR)}
    return out


def _body(name: str) -> dict[str, Any]:
    return {"required": True, **_json(ref(name))}


_SIGNED_READ = [
    {"name": "X-Tapgate-Wallet", "in": "header", "required": True, "schema": WALLET.schema()},
    {
        "name": "X-Tapgate-Timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": f"^[0-9]{{1,{READ_TIMESTAMP_DIGITS}}}$"},
    },
    {"name": "X-Tapgate-Signature", "in": "header", "required": True, "schema": SIGNATURE.schema()},
]
_ADMIN: list[dict[str, list[str]]] = [{"bearer": []}]
_HTML = {"200": {"description": "an HTML page", "content": {"text/html": {}}}}


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


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
    ("/dev/fund", "post"): "devFund",
    ("/", "get"): "clientPage",
    ("/docs", "get"): "apiExplorer",
}


def openapi(
    markets: Sequence[str] = ("BTC-USD", "ETH-USD"),
    *,
    web_client: bool = True,
    api_docs: bool = True,
) -> dict[str, Any]:
    """The document for a gateway serving ``markets`` (and the pages its settings switch
    on), built on each call (it is small)."""
    document = _document(markets)
    paths = document["paths"]
    if web_client:
        paths["/"] = {"get": {"description": "the reference client (docs/FRONTEND.md)",
                              "responses": _HTML}}  # fmt: skip
    if api_docs:
        paths["/docs"] = {"get": {"description": "this explorer", "responses": _HTML}}
    for path, operations in paths.items():
        for method, operation in operations.items():
            operation["operationId"] = OPERATION_IDS[(path, method)]
    return document


def _document(markets: Sequence[str]) -> dict[str, Any]:
    bet_id = _path("bet_id", BET_ID.schema())
    wallet = _path("wallet", WALLET.schema())
    market = _path("market", {"type": "string", "enum": list(markets)})
    bodies = (BET, CREDIT, ARCHIVE, HALT, TICKS, DEV_FUNDING, SUBSCRIBE, WATCH)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tapgate",
            "version": __version__,
            "description": "docs/API.md. The WebSocket GET /api/stream is not an OpenAPI "
            "operation: its protocol is in docs/FRONTEND.md (a plain GET gets 426); its "
            "messages are the Stream* schemas here (Subscribe and Watch from the client).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **{body.title: body.schema(markets) for body in bodies},
                **RESPONSES,
                **STREAM_MESSAGES,
            },
        },
        "paths": {
            "/healthz": {"get": {"responses": _responses(200, "Health")}},
            "/readyz": {
                "get": {
                    "responses": {
                        **_responses(200, "Readiness"),
                        "503": {"description": "not ready", **_json(ref("Readiness"))},
                    }
                }
            },
            "/metrics": {
                "get": {
                    "description": "Prometheus text; admin allowlist only",
                    "responses": {
                        "200": {"description": "text/plain metrics"},
                        "403": {"description": "forbidden", **_json(_ERROR)},
                        "429": {"description": "rate limited", **_json(_ERROR)},
                    },
                }
            },
            "/openapi.json": {"get": {"responses": _responses(200, "OpenAPI")}},
            "/api/bets": {
                "post": {
                    "requestBody": _body("Bet"),
                    "responses": _responses(202, "Receipt", 400, 401, 409, 413, 415, 422, 429, 503),
                }
            },
            "/api/bets/{bet_id}": {
                "get": {
                    "parameters": [bet_id, *_SIGNED_READ],
                    "responses": _responses(200, "BetView", 401, 404, 429),
                }
            },
            "/api/wallets/{wallet}": {
                "get": {
                    "parameters": [wallet, *_SIGNED_READ],
                    "responses": _responses(200, "WalletView", 401, 404, 429),
                }
            },
            "/api/wallets/{wallet}/bets": {
                "get": {
                    "parameters": [
                        wallet,
                        *_SIGNED_READ,
                        _query("status", {"type": "string", "enum": list(BET_STATUSES)}),
                        _query("nonce", NONCE.schema()),
                        _query("limit", LIST_LIMIT.schema()),
                        _query("before", BET_ID.schema()),
                    ],
                    "responses": _responses(200, "BetList", 401, 404, 422, 429),
                }
            },
            "/api/markets": {"get": {"responses": _responses(200, "MarketList", 429)}},
            "/api/markets/{market}/grid": {
                "get": {"parameters": [market], "responses": _responses(200, "Grid", 404, 429)}
            },
            "/admin/wallets/{wallet}/credit": {
                "post": {
                    "security": _ADMIN,
                    "parameters": [wallet],
                    "requestBody": _body("Credit"),
                    "responses": _responses(
                        200, "CreditResult", 400, 401, 403, 409, 413, 415, 422, 429
                    ),
                }
            },
            "/admin/archive": {
                "post": {
                    "security": _ADMIN,
                    "requestBody": _body("Archive"),
                    "responses": _responses(
                        200, "ArchiveResult", 400, 401, 403, 413, 415, 422, 429
                    ),
                }
            },
            "/admin/markets/{market}/ticks": {
                "post": {
                    "description": "oracle-signed ticks; admin allowlist, no token",
                    "parameters": [market],
                    "requestBody": _body("Ticks"),
                    "responses": _responses(
                        200, "TickAck", 400, 401, 403, 404, 409, 413, 415, 422, 429
                    ),
                }
            },
            "/admin/markets/{market}/halt": {
                "post": {
                    "security": _ADMIN,
                    "parameters": [market],
                    "requestBody": _body("Halt"),
                    "responses": _responses(
                        200, "MarketSummary", 400, 401, 403, 404, 413, 415, 422, 429
                    ),
                }
            },
            "/admin/markets/{market}/resume": {
                "post": {
                    "security": _ADMIN,
                    "parameters": [market],
                    "responses": _responses(200, "MarketSummary", 401, 403, 404, 429),
                }
            },
            "/dev/fund": {
                "post": {
                    "description": "development only: 404 unless TAPGATE_DEV_FUNDING is on, "
                    "and then only from loopback, up to TAPGATE_DEV_FUNDING_CAP",
                    "requestBody": _body("DevFunding"),
                    "responses": _responses(200, "CreditResult", 400, 404, 413, 415, 422),
                }
            },
        },
    }
