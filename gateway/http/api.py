"""Routes other than the hot one: health, signed reads, admin funding."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.bets.pending import credit
from gateway.errors import ErrorCode, Rejection
from gateway.http.auth import require_admin, require_admin_address, signed_wallet
from gateway.http.openapi import openapi
from gateway.http.responses import JSON, json_body
from gateway.metrics import merge_expositions
from gateway.ops.archive import ARCHIVE_NAME, archive_cutoff, archive_step
from gateway.ops.tick_retention import tick_bounds, tick_step
from gateway.protocol import ascii_digits
from gateway.runtime import Runtime
from gateway.wire import ARCHIVE, BET_ID, BET_STATUSES, CREDIT, LIST_LIMIT, NONCE, WALLET, invalid

__all__ = ["routes"]

_STATUSES = frozenset(BET_STATUSES)
_LIST_PARAMS = frozenset(("status", "nonce", "limit", "before"))
_MAX_ADMIN_BODY = 1024


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _reader_wallet(request: Request) -> tuple[Runtime, str]:
    rt = _runtime(request)
    s = rt.settings
    return rt, signed_wallet(request, rt.limits.reads, s.receive_window_ms, s.future_skew_ms)


def _not_found() -> Rejection:
    return Rejection(ErrorCode.NOT_FOUND, "no such resource")


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 while bets can be taken: the writer runs, its last write succeeded, and at least
    one market is open (priced, a fresh quote, breaker not critical); else 503. The body
    names each market's state and its breaker's reasons."""
    rt = _runtime(request)
    now_ms = int(time.time() * 1000)
    markets = {
        m.symbol: {"state": m.state(now_ms), "reasons": list(m.breaker.reasons)} for m in rt.markets
    }
    open_markets = [symbol for symbol, m in markets.items() if m["state"] == "open"]
    checks = {
        "writer": "ok" if rt.writer.alive else "not running",
        "database": "ok" if rt.writer.last_error is None else "last write failed (see logs)",
        "markets": "ok" if open_markets else "no market is taking bets",
    }
    ready = all(value == "ok" for value in checks.values())
    return JSON(
        {"status": "ready" if ready else "not_ready", "checks": checks, "markets": markets},
        status_code=200 if ready else 503,
    )


async def metrics(request: Request) -> Response:
    rt = _runtime(request)
    require_admin_address(request, rt.settings.admin_allow, rt.limits.admin)
    text = generate_latest(rt.metrics.registry)
    workers = getattr(request.app.state, "worker_metrics", None)
    if workers is not None:  # the owner of worker processes: their counts too (ADR 12)
        text = merge_expositions([text, *await workers()])
    return Response(text, media_type=CONTENT_TYPE_LATEST)


async def get_bet(request: Request) -> Response:
    rt, wallet = _reader_wallet(request)
    raw = request.path_params["bet_id"]
    if not BET_ID.regex.fullmatch(raw):
        raise _not_found()
    bet = await rt.reader.bet(int(raw))
    if bet is None or bet["wallet"] != wallet:
        raise _not_found()
    return JSON(bet)


async def get_wallet(request: Request) -> Response:
    rt, wallet = _reader_wallet(request)
    if request.path_params["wallet"] != wallet:
        raise _not_found()
    count, stake, payout = await rt.reader.wallet_open(wallet)
    return JSON(
        {
            "wallet": wallet,
            "balance": rt.accounts.balance(wallet),
            "reserved": rt.accounts.reserved(wallet),
            "open_bets": count,
            "open_stake": stake,
            "open_exposure": payout,
        }
    )


async def list_bets(request: Request) -> Response:
    rt, wallet = _reader_wallet(request)
    if request.path_params["wallet"] != wallet:
        raise _not_found()
    params = request.query_params
    for key in params:
        if key not in _LIST_PARAMS:
            raise invalid(key[:64], "unknown query parameter")
    status = params.get("status")
    if status is not None and status not in _STATUSES:
        raise invalid("status", "must be accepted, won, lost or void")
    nonce = params.get("nonce")
    if nonce is not None:
        NONCE.check("nonce", nonce)
    limit_raw = params.get("limit", "50")
    if not ascii_digits(limit_raw, 3):
        raise invalid("limit", f"must be an integer from {LIST_LIMIT.low} to {LIST_LIMIT.high}")
    LIST_LIMIT.check("limit", int(limit_raw))
    limit = int(limit_raw)
    before_raw = params.get("before")
    if before_raw is not None and not BET_ID.regex.fullmatch(before_raw):
        raise invalid("before", "must be a bet_id")
    before = int(before_raw) if before_raw is not None else 2**63 - 1
    bets = await rt.reader.wallet_bets(
        wallet, status=status, nonce=nonce, limit=limit, before=before
    )
    more = nonce is None and len(bets) == limit
    return JSON({"bets": bets, "next_before": bets[-1]["bet_id"] if more else None})


async def credit_wallet(request: Request) -> Response:
    rt = _runtime(request)
    s = rt.settings
    require_admin(request, s.admin_allow, s.admin_token, rt.limits.admin)
    wallet = request.path_params["wallet"]
    WALLET.check("wallet", wallet)
    data = CREDIT.parse(await json_body(request, _MAX_ADMIN_BODY))
    amount, reference = data["amount"], data["reference"]
    now_ms = int(time.time() * 1000)
    balance, replayed = await credit(rt.writer, rt.accounts, wallet, amount, reference, now_ms)
    headers = {"idempotent-replayed": "true"} if replayed else None
    return JSON(
        {"wallet": wallet, "amount": amount, "reference": reference, "balance": balance},
        headers=headers,
    )


async def archive(request: Request) -> Response:
    """Archive settled bets, then the ticks nothing needs, through the writer: one step
    (<= 1,000 bets or 1,000 ticks) per transaction pair."""
    rt = _runtime(request)
    s = rt.settings
    require_admin(request, s.admin_allow, s.admin_token, rt.limits.admin)
    age = ARCHIVE.parse(await json_body(request, _MAX_ADMIN_BODY))["older_than_s"]
    now_ms = int(time.time() * 1000)
    cutoff = archive_cutoff(now_ms, age, s)
    path = s.data_dir / ARCHIVE_NAME
    moved = after = 0
    while True:
        step, after = await rt.writer.run(archive_step, path, cutoff, after)
        if not step:
            break
        moved += step
    keep = {m.symbol: m.vol_window for m in s.markets}
    ticks = 0
    for market, below in (await rt.writer.run(tick_bounds, cutoff, keep)).items():
        while step := await rt.writer.run(tick_step, path, market, below, now_ms):
            ticks += step
    return JSON({"moved": moved, "ticks_moved": ticks, "archive": str(path), "cutoff_ms": cutoff})


async def openapi_json(request: Request) -> Response:
    s = _runtime(request).settings
    return JSON(openapi(s.symbols, web_client=s.web_client, api_docs=s.api_docs))


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/api/bets/{bet_id}", get_bet, methods=["GET"]),
    Route("/api/wallets/{wallet}", get_wallet, methods=["GET"]),
    Route("/api/wallets/{wallet}/bets", list_bets, methods=["GET"]),
    Route("/admin/wallets/{wallet}/credit", credit_wallet, methods=["POST"]),
    Route("/admin/archive", archive, methods=["POST"]),
]
