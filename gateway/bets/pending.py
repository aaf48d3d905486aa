"""An admitted bet on its way to the database, and what each commit outcome does to it.

The store's writer persists groups and reports per bet (store/writer.py, ``GroupOutcomes``);
this layer renders the receipts that are stored with the bets and applies each outcome to
the balances, the replay map, the market's order book and the request waiting for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.accounts import Accounts
from gateway.bets.recent import RecentBets
from gateway.errors import ErrorCode, Rejection
from gateway.market.book import OpenBet
from gateway.market.market import Market
from gateway.market.pricing import Quote
from gateway.protocol import BetRequest, format_multiplier, payout
from gateway.store.writer import Refusal, Writer, write_credit

__all__ = ["CommitOutcomes", "PendingBet", "credit"]


class PendingBet:
    """An admitted bet waiting for its group to commit."""

    __slots__ = (
        "accepted_at",
        "batch_id",
        "bet_id",
        "enqueued_at",
        "future",
        "key",
        "multiplier",
        "payout",
        "quote",
        "request",
    )

    def __init__(
        self,
        request: BetRequest,
        *,
        quote: Quote,
        accepted_at: int,
        key: str,
        future: asyncio.Future[bytes],
    ) -> None:
        self.request = request
        self.quote = quote
        self.multiplier = quote.multiplier
        self.payout = payout(request.amount, quote.multiplier)
        self.accepted_at = accepted_at
        self.key = key
        self.future = future
        self.bet_id = 0
        self.batch_id = 0
        self.enqueued_at = 0.0

    def row(self, receipt: bytes) -> tuple[Any, ...]:
        """The values of its ``bets`` row, in the writer's insert order (batch id aside)."""
        bet = self.request
        quote = self.quote
        return (
            self.bet_id,
            bet.wallet,
            bet.nonce,
            bet.market,
            bet.cell_id,
            bet.amount,
            self.multiplier,
            self.payout,
            bet.min_multiplier,
            bet.timestamp,
            bet.signature,
            self.accepted_at,
            receipt.decode(),
            quote.seq,
            quote.sigma_low,
            quote.sigma_high,
            quote.p_win,
        )

    def receipt(self, balance: int) -> bytes:
        """The 202 body, stored with the bet so a retry gets it byte for byte."""
        bet = self.request
        return orjson.dumps(
            {
                "bet_id": str(self.bet_id),
                "wallet": bet.wallet,
                "market": bet.market,
                "cell_id": bet.cell_id,
                "amount": bet.amount,
                "nonce": bet.nonce,
                "timestamp": bet.timestamp,
                "multiplier": format_multiplier(self.multiplier),
                "potential_payout": self.payout,
                "balance": balance,
                "status": "accepted",
                "accepted_at": self.accepted_at,
            }
        )


def rejection(refusal: Refusal) -> Rejection:
    """What the client hears for a refusal at commit time (a new exception per request)."""
    if refusal is Refusal.NONCE_REUSED:
        return Rejection(ErrorCode.NONCE_REUSED, refusal.value)
    return Rejection(ErrorCode.OVERLOADED, refusal.value, retry_after=1.0)


def _answer(future: asyncio.Future[bytes], result: bytes | BaseException) -> None:
    if future.done():  # the request that awaited it was cancelled
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class CommitOutcomes:
    """Applies the writer's per-bet outcomes (store.writer.GroupOutcomes)."""

    def __init__(
        self, accounts: Accounts, recent: RecentBets, markets: Mapping[str, Market]
    ) -> None:
        self.accounts = accounts
        self.recent = recent
        self.markets = markets

    def receipts(self, group: Sequence[PendingBet], skipped: set[int]) -> list[bytes]:
        """Each bet's receipt, with the wallet's committed balance right after its debit."""
        running: dict[str, int] = {}
        out = []
        for bet in group:
            if bet.bet_id in skipped:
                out.append(b"")
                continue
            wallet = bet.request.wallet
            balance = running.get(wallet)
            if balance is None:
                balance = self.accounts.balance(wallet)
            balance -= bet.request.amount
            running[wallet] = balance
            out.append(bet.receipt(balance))
        return out

    def committed(self, bets: Sequence[PendingBet], receipts: Sequence[bytes]) -> None:
        for bet, receipt in zip(bets, receipts, strict=True):
            r = bet.request
            self.accounts.settle_debit(r.wallet, r.amount)
            self.recent.committed(bet.key, receipt, r.timestamp)
            self.markets[r.market].book.add_open(
                OpenBet(bet.bet_id, r.wallet, r.row, r.col, r.amount, bet.payout)
            )
            _answer(bet.future, receipt)

    def refused(self, bet: PendingBet, refusal: Refusal) -> None:
        r = bet.request
        self.accounts.release(r.wallet, r.amount)
        self.markets[r.market].book.release(r.wallet, r.row, r.col, r.amount, bet.payout)
        self.recent.forget(bet.key)
        _answer(bet.future, rejection(refusal))

    def unknown(self, bets: Sequence[PendingBet]) -> None:
        for bet in bets:
            _answer(bet.future, rejection(Refusal.WRITER_FAILED))


async def credit(
    writer: Writer[PendingBet],
    accounts: Accounts,
    wallet: str,
    amount: int,
    reference: str,
    now_ms: int,
) -> tuple[int, bool]:
    """Credit a deposit once per reference; return (balance, replayed)."""

    def apply(replayed: bool | None) -> tuple[int, bool]:
        if replayed is None:
            raise Rejection(
                ErrorCode.REFERENCE_CONFLICT,
                "this reference was already used for another wallet or amount",
            )
        if replayed:
            return accounts.balance(wallet), True
        return accounts.credit(wallet, amount), False

    return await writer.run_then(write_credit, (wallet, amount, reference, now_ms), apply)
