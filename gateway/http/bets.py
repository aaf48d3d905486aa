"""``POST /api/bets``: the hot route, as a lean raw-ASGI endpoint."""

from __future__ import annotations

import time
from typing import Protocol

import structlog
from starlette.types import Receive, Scope, Send

from gateway.errors import Rejection
from gateway.http.body import ClientGone, check_json_content_type, read_body
from gateway.http.context import client_key, request_id
from gateway.http.errors import send_json, send_rejection
from gateway.metrics import Metrics
from gateway.protocol import MAX_BODY, BetRequest, parse_bet

__all__ = ["PlaceBet", "Places"]

log = structlog.get_logger("tapgate.bets")


class Places(Protocol):
    """Admission in one process (``Admission``) or split with the owner (``RemotePlacement``)."""

    async def place(
        self, bet: BetRequest, client: str, now: float, log: dict[str, object] | None = None
    ) -> tuple[bytes, int, bool]: ...


class PlaceBet:
    """Validates, admits and acknowledges one bet; 202 only after its group committed."""

    def __init__(self, admission: Places, markets: frozenset[str], metrics: Metrics) -> None:
        self.admission = admission
        self.markets = markets
        self._placed = metrics.bets_placed
        self._replayed = metrics.bets_replayed
        self._rejected = metrics.bets_rejected
        self._stake = metrics.stake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = content_length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value
        try:
            check_json_content_type(content_type)
            body = await read_body(receive, content_length, MAX_BODY)
            bet = parse_bet(body, self.markets)
            fields = scope["tapgate.log"]
            fields["wallet"] = bet.wallet
            receipt, bet_id, replayed = await self.admission.place(
                bet, client_key(scope), time.time(), fields
            )
            fields["bet_id"] = str(bet_id)
        except Rejection as rejection:
            scope["tapgate.log"]["error"] = rejection.code
            self._rejected.labels(rejection.code).inc()
            await send_rejection(send, rejection, request_id(scope))
            return
        except ClientGone:
            return
        headers = [(b"location", b"/api/bets/%d" % bet_id)]
        if replayed:
            headers.append((b"idempotent-replayed", b"true"))
            self._replayed.inc()
        else:
            self._placed.inc()
            self._stake.inc(bet.amount)
        await send_json(send, 202, receipt, headers)
