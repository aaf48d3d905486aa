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

from gateway.bets.admission import Admission, replayed_bet_id
from gateway.errors import Rejection, internal_rejection
from gateway.protocol import BetRequest
from gateway.server.channel import Channel, Frame
from gateway.server.link import pack_rejection

__all__ = ["TunnelOutput", "WorkerLink"]

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
        self._out = TunnelOutput(channel)

    async def run(self) -> None:
        """Serve the worker until it closes its channel."""
        async for frame in self.channel.frames():
            kind = frame[0]
            if kind == "take":
                self._take(frame)
            elif kind == "admit":
                self._admit(frame)
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

    def _admit(self, frame: Frame) -> None:
        """Admit a verified bet; the answer goes back from the receipt future's callback, so
        a bet costs no task of its own while its group is written."""
        _, ident, fields, now = frame
        try:
            admitted = self.admission.begin(BetRequest._make(fields), now)
        except Rejection as rejection:
            self._refuse(ident, rejection)
            return
        if isinstance(admitted, bytes):
            receipt = admitted
            self.channel.send("answer", ident, None, receipt, replayed_bet_id(receipt), True, {})
            return
        pending = admitted.pending

        def answer(future: asyncio.Future[bytes]) -> None:
            if future.cancelled():  # only at shutdown: the worker's request ends with it
                return
            error = future.exception()
            if isinstance(error, Rejection):
                self._refuse(ident, error)
            elif error is not None:  # a bug: logged, and the worker answers 500
                log.error("admit_failed", error=repr(error))
                self._refuse(ident, internal_rejection())
            elif pending is None:  # a replay of a bet still in flight: its fate
                receipt = future.result()
                self.channel.send(
                    "answer", ident, None, receipt, replayed_bet_id(receipt), True, {}
                )
            else:
                self.channel.send(
                    "answer", ident, None, future.result(), pending.bet_id, False,
                    {"batch_id": pending.batch_id},
                )  # fmt: skip

        admitted.future.add_done_callback(answer)

    def _refuse(self, ident: int, rejection: Rejection) -> None:
        self.channel.send("answer", ident, pack_rejection(rejection), None, 0, False, {})

    async def _serve(
        self, ident: int, scope: dict[str, Any], queue: asyncio.Queue[Message]
    ) -> None:
        """One tunnelled request on the owner's app; every ``send`` goes back to the worker."""

        async def receive() -> Message:
            return await queue.get()

        async def send(message: Message) -> None:
            self._out.send(ident, message)

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
        self._out.end(ident, fields, failure, route)


class TunnelOutput:
    """What the owner's routes send back through one worker's tunnels, one loop turn at a
    time, with a stream message written once for every connection it goes to.

    The hub offers one message text to every watcher of a market; each watcher's sender
    then sends it on its own connection. Within a turn those sends become one ``fan``
    frame naming every tunnel, so the message crosses the channel once per worker instead
    of once per connection. Each tunnel's frames keep their order: a send joins an
    earlier frame of the turn only if nothing later in the turn went to that tunnel.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._turn: list[tuple[str, list[int], tuple[Any, ...]]] = []
        self._by_text: dict[int, int] = {}  # id(text) -> its frame in this turn
        self._last: dict[int, int] = {}  # tunnel -> its last frame in this turn

    def send(self, ident: int, message: Message) -> None:
        text = message.get("text") if message["type"] == "websocket.send" else None
        if text is not None:
            at = self._by_text.get(id(text))
            if at is not None and self._last.get(ident, -1) < at:
                self._turn[at][1].append(ident)
                self._last[ident] = at
                return
            self._by_text[id(text)] = len(self._turn)
        self._add("send", ident, (message,))

    def end(self, ident: int, *fields: Any) -> None:
        self._add("end", ident, fields)

    def _add(self, kind: str, ident: int, rest: tuple[Any, ...]) -> None:
        if not self._turn:
            asyncio.get_running_loop().call_soon(self._flush)
        self._last[ident] = len(self._turn)
        self._turn.append((kind, [ident], rest))

    def _flush(self) -> None:
        turn = self._turn
        self._turn, self._by_text, self._last = [], {}, {}
        for kind, idents, rest in turn:  # the texts were alive all turn: their ids held
            if kind == "send" and len(idents) > 1:
                self.channel.send("fan", idents, *rest)
            else:
                self.channel.send(kind, idents[0], *rest)
