"""Routes other than the hot one: health, signed reads, admin funding."""

from __future__ import annotations

import re
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
from gateway.ops.archive import ARCHIVE_NAME, archive_cutoff, archive_step
from gateway.ops.tick_retention import tick_bounds, tick_step
from gateway.protocol import ascii_digits
from gateway.runtime import Runtime

__all__ = ["routes"]

_WALLET = re.compile(r"[0-9a-f]{64}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_REFERENCE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_BET_ID = re.compile(r"[1-9][0-9]{0,18}")
_STATUSES = frozenset(("accepted", "won", "lost", "void"))
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
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def get_bet(request: Request) -> Response:
    rt, wallet = _reader_wallet(request)
    raw = request.path_params["bet_id"]
    if not _BET_ID.fullmatch(raw):
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


def _invalid(field: str, message: str) -> Rejection:
    return Rejection(ErrorCode.INVALID_FIELD, f"{field}: {message}", field=field)


async def list_bets(request: Request) -> Response:
    rt, wallet = _reader_wallet(request)
    if request.path_params["wallet"] != wallet:
        raise _not_found()
    params = request.query_params
    for key in params:
        if key not in _LIST_PARAMS:
            raise _invalid(key[:64], "unknown query parameter")
    status = params.get("status")
    if status is not None and status not in _STATUSES:
        raise _invalid("status", "must be accepted, won, lost or void")
    nonce = params.get("nonce")
    if nonce is not None and not _NONCE.fullmatch(nonce):
        raise _invalid("nonce", "must be 1-64 characters of A-Z a-z 0-9 _ -")
    limit_raw = params.get("limit", "50")
    if not ascii_digits(limit_raw, 3) or not 1 <= int(limit_raw) <= 200:
        raise _invalid("limit", "must be an integer from 1 to 200")
    limit = int(limit_raw)
    before_raw = params.get("before")
    if before_raw is not None and not _BET_ID.fullmatch(before_raw):
        raise _invalid("before", "must be a bet_id")
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
    if not _WALLET.fullmatch(wallet):
        raise _invalid("wallet", "must be 64 lowercase hex digits")
    data = await json_body(request, _MAX_ADMIN_BODY)
    for key in data:
        if key not in ("amount", "reference"):
            raise _invalid(str(key)[:64], "unknown field")
    amount = data.get("amount")
    if type(amount) is not int or not 1 <= amount <= 10**15:
        raise _invalid("amount", "must be a JSON integer from 1 to 10^15")
    reference = data.get("reference")
    if type(reference) is not str or not _REFERENCE.fullmatch(reference):
        raise _invalid("reference", "must be 1-128 characters of A-Z a-z 0-9 . _ : -")
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
    data = await json_body(request, _MAX_ADMIN_BODY)
    for key in data:
        if key != "older_than_s":
            raise _invalid(str(key)[:64], "unknown field")
    age = data.get("older_than_s")
    if type(age) is not int or not 0 <= age <= 10 * 365 * 86400:
        raise _invalid("older_than_s", "must be a JSON integer of seconds, up to ten years")
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
    return JSON(openapi(_runtime(request).settings.symbols))


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
