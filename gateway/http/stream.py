"""``/api/stream``: the WebSocket that pushes ticks, grids, breaker changes and bet results.

Protocol (docs/FRONTEND.md), version 2: after the handshake the server sends ``hello``
with a random ``challenge`` and the markets. ``{"op": "watch", "markets": [...]}`` puts
the connection on those markets' channels: a ``snapshot`` of each, then its ticks, grid
changes and breaker transitions, each numbered per market (``stream_seq``; watching
again after a gap sends a new snapshot); ``unwatch`` leaves them. A client that sends
``{"op": "subscribe", "wallet", "timestamp", "signature"}`` signed over
``tapgate:subscribe:v2\\n<challenge>\\n<wallet>\\n<timestamp>`` also gets that wallet's bet
results: the signature is good on this connection only, so a captured subscribe is
worthless elsewhere. The handshake is refused with the API's JSON errors: 403
``forbidden`` for an ``Origin`` outside the CORS allowlist, 429 ``rate_limited`` (with
``Retry-After`` and the ``RateLimit`` headers) over the per-address handshake rate, 503
``overloaded`` beyond the connection cap or the per-address one. Each subscribe takes the
address's bucket before any signature work, a connection gets at most
``TAPGATE_STREAM_SUBSCRIBES_PER_CONNECTION`` of them, and one over the per-wallet rate
gets an ``error`` message. A client that falls ``TAPGATE_STREAM_BUFFER`` messages behind
is closed with code 1013.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any

import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.errors import ErrorCode, Rejection
from gateway.http.context import client_key
from gateway.http.responses import rejection_response
from gateway.market.hub import Subscriber
from gateway.protocol import check_window, refuse_repeated_keys, verify
from gateway.runtime import Runtime
from gateway.wire import SUBSCRIBE, WATCH

__all__ = ["stream", "stream_without_upgrade", "subscribe_message"]

log = structlog.get_logger("tapgate.stream")

SLOW_CONSUMER = 1013
_OPERATIONS = frozenset(("watch", "unwatch", "subscribe"))


PROTOCOL = 2  # named in hello; docs/API.md says how a version is retired


def subscribe_message(challenge: str, wallet: str, timestamp: int) -> bytes:
    """What a subscribe signs: this connection's challenge, the wallet and the time."""
    return f"tapgate:subscribe:v2\n{challenge}\n{wallet}\n{timestamp}".encode()


def _error(code: str, message: str) -> str:
    return orjson.dumps({"type": "error", "code": code, "message": message}).decode()


def _same_origin(websocket: WebSocket, origin: str) -> bool:
    """The page came from this gateway (the reference client): its origin names the host
    the browser connected to. A page elsewhere cannot forge its Origin header."""
    host = websocket.headers.get("host")
    return host is not None and origin.partition("://")[2] == host


def _handshake_refusal(rt: Runtime, websocket: WebSocket) -> Rejection | None:
    s = rt.settings
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in s.cors_origins and not _same_origin(websocket, origin):
        return Rejection(ErrorCode.FORBIDDEN, "the stream is not open to this origin")
    if len(rt.hub) >= s.stream_max_connections:
        return Rejection(ErrorCode.OVERLOADED, "too many stream connections", retry_after=1.0)
    if rt.hub.connections_from(client_key(websocket.scope)) >= s.stream_max_per_address:
        return Rejection(
            ErrorCode.OVERLOADED, "too many stream connections from this address", retry_after=1.0
        )
    try:
        rt.limits.stream.by_address(client_key(websocket.scope), time.time())
    except Rejection as exc:
        return exc
    return None


def _subscribe(rt: Runtime, sub: Subscriber, data: dict[str, Any]) -> str:
    """Check a subscribe message; return the wallet or raise Rejection."""
    fields = SUBSCRIBE.parse(data)
    wallet: str = fields["wallet"]
    timestamp: int = fields["timestamp"]
    s = rt.settings
    now = time.time()
    check_window(timestamp, int(now * 1000), s.receive_window_ms, s.future_skew_ms)
    verify(wallet, subscribe_message(sub.challenge, wallet, timestamp), fields["signature"])
    rt.limits.stream.by_wallet(wallet, now)
    rt.hub.follow(sub, wallet)
    return wallet


def _markets(rt: Runtime, data: dict[str, Any]) -> list[str]:
    """The markets a watch or unwatch names (each once), or Rejection."""
    return list(dict.fromkeys(WATCH.parse(data, rt.markets.markets)["markets"]))


async def _receive(rt: Runtime, websocket: WebSocket, sub: Subscriber) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        # a text frame, or a binary one holding the same UTF-8 JSON (what orjson.dumps and
        # many clients send); either way a bad one gets an error message, not a dropped link
        text = message.get("text")
        raw = text.encode() if text is not None else message.get("bytes") or b""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            sub.offer(_error("malformed_json", "messages must be JSON objects"))
            continue
        op = data.get("op") if type(data) is dict else None
        if op not in _OPERATIONS:
            sub.offer(_error("invalid_field", 'op: one of "watch", "unwatch", "subscribe"'))
            continue
        if op == "subscribe":
            sub.subscribes += 1
            if sub.subscribes > rt.settings.stream_subscribes_per_connection:
                sub.offer(_error("rate_limited", "too many subscribes on this connection"))
                continue
        try:  # the address's bucket before any signature or grid work
            rt.limits.stream.by_address(sub.address, time.time())
            refuse_repeated_keys(raw)  # messages are small and rare: the exact check always
            if op == "subscribe":
                wallet = _subscribe(rt, sub, data)
                sub.offer(orjson.dumps({"type": "subscribed", "wallet": wallet}).decode())
            elif op == "watch":
                now_ms = int(time.time() * 1000)
                for symbol in _markets(rt, data):
                    market = rt.markets[symbol]
                    grid_now = functools.partial(market.grid, now_ms)
                    rt.hub.watch(sub, symbol, market.summary(now_ms), grid_now)
            else:
                left = _markets(rt, data)
                for symbol in left:
                    rt.hub.unwatch(sub, symbol)
                sub.offer(orjson.dumps({"type": "unwatched", "markets": left}).decode())
        except Rejection as exc:
            sub.offer(_error(exc.code, exc.message))


async def _send(websocket: WebSocket, sub: Subscriber) -> None:
    while True:
        await websocket.send_text(await sub.queue.get())


async def stream_without_upgrade(request: Request) -> Response:
    """A plain GET of the stream's path: 426, the client must upgrade to a WebSocket."""
    raise Rejection(
        ErrorCode.UPGRADE_REQUIRED,
        "GET /api/stream is a WebSocket: send Connection: Upgrade, Upgrade: websocket",
        headers=((b"upgrade", b"websocket"),),
    )


async def stream(websocket: WebSocket) -> None:
    rt: Runtime = websocket.app.state.runtime
    refusal = _handshake_refusal(rt, websocket)
    if refusal is not None:
        log.info("stream_refused", code=refusal.code, reason=refusal.message)
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(rejection_response(websocket, refusal))
        else:  # a server without the denial-response extension: a bare HTTP 403
            await websocket.close(code=1008, reason=refusal.message)
        return
    await websocket.accept()
    sub = rt.hub.join(client_key(websocket.scope))
    now_ms = int(time.time() * 1000)
    sub.offer(
        orjson.dumps(
            {
                "type": "hello",
                "protocol": PROTOCOL,
                "challenge": sub.challenge,
                "server_time_ms": now_ms,
                "markets": [m.summary(now_ms) for m in rt.markets],
            }
        ).decode()
    )
    tasks = [
        asyncio.create_task(_receive(rt, websocket, sub)),
        asyncio.create_task(_send(websocket, sub)),
        asyncio.create_task(sub.done.wait()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
        rt.hub.leave(sub)
        if sub.overflowed:
            rt.metrics.stream_dropped.inc()
            log.info("stream_slow_consumer", wallet=sub.wallet)
            with contextlib.suppress(Exception):
                await websocket.close(code=SLOW_CONSUMER, reason="slow consumer")
