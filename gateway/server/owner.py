"""The owner's side of each worker's channel (ADR 12).

The owner holds what must have one holder (the runtime: balances, the replay map, the
buckets, the markets, the writer, the hub) and answers its workers: ``take`` and
``admit`` for bets, and the routes the workers tunnel to it, run on its own app.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message

from gateway.bets.admission import Admission
from gateway.errors import Rejection
from gateway.protocol import BetRequest
from gateway.server.channel import Channel, Frame
from gateway.server.link import pack_rejection

__all__ = ["WorkerLink"]

log = structlog.get_logger("tapgate.owner")
METRICS_TIMEOUT_S = 5.0


class WorkerLink:
    """One worker, seen from the owner: its requests answered, its tunnels served."""

    def __init__(
        self, channel: Channel, admission: Admission, app: ASGIApp, clock: Callable[[], float]
    ) -> None:
        self.channel = channel
        self.admission = admission
        self.app = app
        self.clock = clock
        self.ready = asyncio.Event()
        self._tunnels: dict[int, tuple[str, asyncio.Queue[Message]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._queries = itertools.count(1)
        self._metrics: dict[int, asyncio.Future[bytes]] = {}

    async def run(self) -> None:
        """Serve the worker until it closes its channel."""
        async for frame in self.channel.frames():
            kind = frame[0]
            if kind == "take":
                self._take(frame)
            elif kind == "admit":
                self._spawn(self._admit(frame))
            elif kind == "open":
                queue: asyncio.Queue[Message] = asyncio.Queue()
                self._tunnels[frame[1]] = (frame[2]["type"], queue)
                self._spawn(self._serve(frame[1], frame[2], queue))
            elif kind == "recv":
                tunnel = self._tunnels.get(frame[1])
                if tunnel is not None:
                    tunnel[1].put_nowait(frame[2])
            elif kind == "metrics":
                future = self._metrics.pop(frame[1], None)
                if future is not None and not future.done():
                    future.set_result(frame[2])
            elif kind == "ready":
                self.ready.set()
        for kind, queue in self._tunnels.values():  # the worker is gone: so are its clients
            queue.put_nowait({"type": f"{kind}.disconnect", "code": 1006})

    async def metrics(self) -> bytes:
        """The worker's own metrics exposition; empty if it does not answer in time (a
        scrape then shows the others rather than hanging)."""
        ident = next(self._queries)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._metrics[ident] = future
        self.channel.send("metrics?", ident)
        try:
            return await asyncio.wait_for(future, METRICS_TIMEOUT_S)
        except TimeoutError:
            self._metrics.pop(ident, None)
            log.warning("worker_metrics_timeout")
            return b""

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take(self, frame: Frame) -> None:
        _, ident, client, now = frame
        try:
            self.admission.take_address(client, now)
        except Rejection as rejection:
            self.channel.send("answer", ident, pack_rejection(rejection))
            return
        self.channel.send("answer", ident, None)

    async def _admit(self, frame: Frame) -> None:
        _, ident, fields, now = frame
        log_fields: dict[str, object] = {}
        try:
            receipt, bet_id, replayed = await self.admission.admit(
                BetRequest(*fields), now, log_fields
            )
        except Rejection as rejection:
            self.channel.send("answer", ident, pack_rejection(rejection), None, 0, False, {})
            return
        self.channel.send("answer", ident, None, receipt, bet_id, replayed, log_fields)

    async def _serve(
        self, ident: int, scope: dict[str, Any], queue: asyncio.Queue[Message]
    ) -> None:
        """One tunnelled request on the owner's app; every ``send`` goes back to the worker."""

        async def receive() -> Message:
            return await queue.get()

        async def send(message: Message) -> None:
            self.channel.send("send", ident, message)

        failure = None
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # the worker's RequestContext answers 500 and logs it
            log.exception("tunnelled_request_failed", request_id=scope.get("tapgate.request_id"))
            failure = type(exc).__name__
        finally:
            self._tunnels.pop(ident, None)
        fields = {k: str(v) if isinstance(v, str) else v for k, v in scope["tapgate.log"].items()}
        route = getattr(scope.get("endpoint"), "__name__", "unmatched")
        # str(): an ErrorCode is a str subclass, which the channel does not carry
        self.channel.send("end", ident, fields, failure, route)
