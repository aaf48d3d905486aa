"""The worker's side of the channel: asking the owner, and tunnelling requests to it.

A worker (ADR 12) answers ``POST /api/bets`` itself up to the signature and asks the owner
for the rest: ``take`` (the client address's token, before any signature work) and
``admit`` (replay, wallet limit, market checks, balance, group commit). Every other
request, WebSocket streams included, is tunnelled: the worker forwards the ASGI scope and
each ``receive`` event, the owner runs the route and sends back each ``send`` event.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from gateway.bets.admission import VERIFY_ONLY_RECEIPT, SignatureCheck
from gateway.errors import ErrorCode, Rejection
from gateway.http.stream import SLOW_CONSUMER
from gateway.protocol import BetRequest
from gateway.server.channel import Channel

__all__ = [
    "OwnerGone",
    "OwnerLink",
    "RemotePlacement",
    "pack_rejection",
    "pack_scope",
    "unpack_rejection",
]

# what a tunnelled route may read of the scope (plain values only: the channel's rule)
_SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "scheme",
    "method",
    "root_path",
    "path",
    "raw_path",
    "query_string",
    "headers",
    "client",
    "server",
    "subprotocols",
    "extensions",
    "tapgate.request_id",
    "tapgate.address",
    "tapgate.client",
    "tapgate.log",
)
_DISCONNECT = {"http": "http.disconnect", "websocket": "websocket.disconnect"}


class OwnerGone(Exception):
    """The owner process closed the channel: this worker can only stop."""


def pack_scope(scope: Scope) -> dict[str, Any]:
    return {key: scope[key] for key in _SCOPE_KEYS if key in scope}


def pack_rejection(rejection: Rejection) -> tuple[Any, ...]:
    return (
        str(rejection.code),
        rejection.message,
        rejection.field,
        rejection.retry_after,
        rejection.headers,
    )


def unpack_rejection(packed: tuple[Any, ...]) -> Rejection:
    code, message, field, retry_after, headers = packed
    return Rejection(
        ErrorCode(code), message, field=field, retry_after=retry_after, headers=tuple(headers)
    )


class OwnerLink:
    """Requests to the owner over one channel, answered by id."""

    def __init__(self, channel: Channel, buffer: int) -> None:
        self.channel = channel
        self.buffer = buffer  # a tunnel's undelivered messages before its client is dropped
        self.metrics: Callable[[], bytes] = lambda: b""
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self._tunnels: dict[int, asyncio.Queue[tuple[Any, ...]]] = {}
        self.gone = asyncio.Event()

    async def run(self) -> None:
        """Deliver the owner's answers until it closes the channel (``gone`` is set then,
        however the reading ended, except when this worker's own shutdown cancels it)."""
        cancelled = False
        try:
            async for frame in self.channel.frames():
                kind = frame[0]
                if kind == "answer":
                    future = self._waiting.pop(frame[1], None)
                    if future is not None and not future.done():
                        future.set_result(frame[2:])
                elif kind in ("send", "end"):
                    queue = self._tunnels.get(frame[1])
                    if queue is not None:
                        queue.put_nowait(frame)
                elif kind == "fan":  # one stream message for several tunnels (owner.py)
                    for ident in frame[1]:
                        queue = self._tunnels.get(ident)
                        if queue is not None:
                            queue.put_nowait(("send", ident, frame[2]))
                elif kind == "metrics?":
                    self.channel.send("metrics", frame[1], self.metrics())
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if not cancelled:
                self.gone.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(OwnerGone())
            for queue in self._tunnels.values():
                queue.put_nowait(("end", 0, {}, "the owner process stopped", "unmatched"))

    async def ask(self, *frame: Any) -> tuple[Any, ...]:
        """Send ``frame`` with a fresh id after its kind; the owner's answer."""
        if self.gone.is_set():
            raise OwnerGone()
        ident = next(self._ids)
        future: asyncio.Future[tuple[Any, ...]] = self.channel.loop.create_future()
        self._waiting[ident] = future
        self.channel.send(frame[0], ident, *frame[1:])
        return await future

    async def tunnel(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run this request's route in the owner; its answer goes out through ``send``."""
        ident = next(self._ids)
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._tunnels[ident] = queue
        self.channel.send("open", ident, pack_scope(scope))
        pump = asyncio.create_task(self._pump(ident, receive))
        ended = False
        try:
            while True:
                frame = await queue.get()
                if queue.qsize() > self.buffer and scope["type"] == "websocket":
                    # the client reads slower than the owner sends: the stream's own rule
                    await send({"type": "websocket.close", "code": SLOW_CONSUMER})
                    return
                if frame[0] == "send":
                    try:
                        await send(frame[2])
                    except Exception:
                        if scope["type"] != "websocket":
                            raise
                        return  # closed by the client or by this worker's shutdown: done
                    continue
                ended = True
                scope["tapgate.log"].update(frame[2])
                scope["tapgate.route"] = frame[4]
                if frame[3] is not None:
                    raise RuntimeError(f"the owner failed this request: {frame[3]}")
                return
        finally:
            pump.cancel()
            del self._tunnels[ident]
            if not ended:  # the client went away or failed: the owner's route stops too
                disconnect: Message = {"type": _DISCONNECT[scope["type"]], "code": 1006}
                self.channel.send("recv", ident, disconnect)

    async def _pump(self, ident: int, receive: Receive) -> None:
        while True:
            message = await receive()
            self.channel.send("recv", ident, message)
            if message["type"] in ("http.disconnect", "websocket.disconnect"):
                return


class RemotePlacement:
    """``Admission.place`` split across the worker and the owner, in the same order."""

    def __init__(self, link: OwnerLink, signature: SignatureCheck) -> None:
        self.link = link
        self.signature = signature
        self.verify_only = signature.settings.bench_verify_only

    async def place(
        self, bet: BetRequest, client: str, now: float, log: dict[str, object] | None = None
    ) -> tuple[bytes, int, bool]:
        (refused,) = await self.link.ask("take", client, now)
        if refused is not None:
            raise unpack_rejection(refused)
        await self.signature.check(bet, now)
        if self.verify_only:  # the harness's efficiency baseline; never in production
            return VERIFY_ONLY_RECEIPT, 0, False
        # tuple(bet): the channel (marshal) carries plain tuples, not a NamedTuple
        refused, receipt, bet_id, replayed, fields = await self.link.ask("admit", tuple(bet), now)
        if refused is not None:
            raise unpack_rejection(refused)
        if log is not None:
            log.update(fields)
        return receipt, bet_id, replayed
