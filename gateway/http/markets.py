"""Market routes: public market and grid reads, oracle tick ingestion, operator halts."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import ErrorCode, Rejection
from gateway.http.auth import require_admin, require_admin_address
from gateway.http.context import client_key
from gateway.http.responses import JSON, json_body
from gateway.market.feed import Tick
from gateway.market.market import Market
from gateway.protocol import tick_message, verify
from gateway.runtime import Runtime
from gateway.wire import HALT, TICKS

__all__ = ["routes"]

_MAX_TICK_BODY = 64 * 1024
_MAX_HALT_BODY = 1024


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _market(rt: Runtime, request: Request) -> Market:
    symbol = request.path_params["market"]
    if symbol not in rt.markets.markets:
        raise Rejection(ErrorCode.NOT_FOUND, "no such market")
    return rt.markets[symbol]


async def list_markets(request: Request) -> Response:
    rt = _runtime(request)
    rt.limits.reads.by_address(client_key(request.scope), time.time())
    now_ms = int(time.time() * 1000)
    return JSON({"server_time_ms": now_ms, "markets": [m.summary(now_ms) for m in rt.markets]})


async def market_grid(request: Request) -> Response:
    rt = _runtime(request)
    rt.limits.reads.by_address(client_key(request.scope), time.time())
    market = _market(rt, request)
    now_ms = int(time.time() * 1000)
    return JSON({"server_time_ms": now_ms, **market.grid(now_ms)})


def _ticks(market: Market, data: dict[str, Any]) -> tuple[str, list[tuple[Tick, str | None]]]:
    """Parse and verify a batch of oracle ticks (any bad tick refuses the batch); return the
    oracle key that signed them and the ticks."""
    items = TICKS.parse(data)["ticks"]
    oracle = market.cfg.oracle_key
    if market.cfg.feed != "external" or oracle is None:
        raise Rejection(ErrorCode.TICK_REJECTED, f"{market.symbol} uses the simulated feed")
    out: list[tuple[Tick, str | None]] = []
    for item in items:
        seq, price, ts, signature = item["seq"], item["price"], item["ts"], item["signature"]
        verify(oracle, tick_message(market.symbol, seq, price, ts), signature)
        out.append((Tick(seq, price, ts), signature))
    return oracle, out


async def post_ticks(request: Request) -> Response:
    """Oracle ticks: admin address allowlist, then each tick's oracle signature."""
    rt = _runtime(request)
    require_admin_address(request, rt.settings.admin_allow, rt.limits.feed)
    market = _market(rt, request)
    oracle, ticks = _ticks(market, await json_body(request, _MAX_TICK_BODY))
    rt.limits.feed.by_wallet(oracle, time.time())  # second tier: per oracle key, once verified
    accepted = await rt.markets.ingest(market.symbol, ticks, "oracle")
    return JSON({"market": market.symbol, "accepted": len(accepted), "last_seq": accepted[-1].seq})


async def halt_market(request: Request) -> Response:
    rt = _runtime(request)
    s = rt.settings
    require_admin(request, s.admin_allow, s.admin_token, rt.limits.admin)
    market = _market(rt, request)
    reason = HALT.parse(await json_body(request, _MAX_HALT_BODY))["reason"]
    await rt.markets.halt(market.symbol, reason)
    return JSON(market.summary(int(time.time() * 1000)))


async def resume_market(request: Request) -> Response:
    rt = _runtime(request)
    s = rt.settings
    require_admin(request, s.admin_allow, s.admin_token, rt.limits.admin)
    market = _market(rt, request)
    await rt.markets.halt(market.symbol, None)
    return JSON(market.summary(int(time.time() * 1000)))


routes = [
    Route("/api/markets", list_markets, methods=["GET"]),
    Route("/api/markets/{market}/grid", market_grid, methods=["GET"]),
    Route("/admin/markets/{market}/ticks", post_ticks, methods=["POST"]),
    Route("/admin/markets/{market}/halt", halt_market, methods=["POST"]),
    Route("/admin/markets/{market}/resume", resume_market, methods=["POST"]),
]
