"""The bet admission pipeline, in the documented order.

validate (done by the caller) -> per-address bucket -> timestamp window -> signature
-> replay lookup -> per-wallet bucket -> market checks (breaker, pricing, open cell,
min_multiplier) -> balance, then exposure reservations -> enqueue -> await commit. Any
refusal after the reservations releases them (the writer does that for refusals at
commit time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NamedTuple

import orjson

from gateway.accounts import Accounts
from gateway.bets.pending import PendingBet
from gateway.bets.recent import RecentBets
from gateway.bets.verifier import BatchVerifier
from gateway.config import Settings
from gateway.errors import ErrorCode, Rejection
from gateway.limits import Limiter, rate_limited
from gateway.market.service import Markets
from gateway.protocol import BetRequest, check_window, format_multiplier, payout, verify
from gateway.store.writer import Writer

__all__ = ["Admission", "Admitted", "SignatureCheck", "VERIFY_ONLY_RECEIPT", "replayed_bet_id"]


VERIFY_ONLY_RECEIPT = b'{"status":"verified","bench_verify_only":true}'


class SignatureCheck:
    """The timestamp window and the signature: per-request work that needs no shared state
    (a worker process does it before it asks the owner to admit the bet)."""

    def __init__(
        self,
        settings: Settings,
        verifier: BatchVerifier | None = None,
        observe_verify: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.observe_verify = observe_verify

    async def check(self, bet: BetRequest, now: float) -> None:
        """Raise Rejection unless ``bet`` is inside the window at ``now`` and signed."""
        s = self.settings
        check_window(bet.timestamp, int(now * 1000), s.receive_window_ms, s.future_skew_ms)
        message = bet.message
        verifier = self.verifier
        if verifier is None:
            started = time.perf_counter()
            verify(bet.wallet, message, bet.signature)
            self.observe_verify(time.perf_counter() - started)
        elif not await verifier.verify(
            bytes.fromhex(bet.signature) + message, bytes.fromhex(bet.wallet)
        ):
            raise Rejection(ErrorCode.INVALID_SIGNATURE, "signature does not verify")


class Admitted(NamedTuple):
    """A bet queued for the writer (``pending``), or a replay of one still in flight (None),
    and the future its receipt will be set on."""

    future: asyncio.Future[bytes]
    pending: PendingBet | None


def replayed_bet_id(receipt: bytes) -> int:
    """The bet id a stored receipt names (a replay's answer)."""
    return int(orjson.loads(receipt)["bet_id"])


class Admission:
    """Decides each bet; owns the buckets and the in-memory rules."""

    def __init__(
        self,
        settings: Settings,
        *,
        accounts: Accounts,
        recent: RecentBets,
        writer: Writer[PendingBet],
        limits: Limiter,
        clock: Callable[[], float],
        markets: Markets,
        verifier: BatchVerifier | None = None,
        observe_verify: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self.signature = SignatureCheck(settings, verifier, observe_verify)
        self.markets = markets
        self.settings = settings
        self.accounts = accounts
        self.recent = recent
        self.writer = writer
        self.address_buckets = limits.address
        self.wallet_buckets = limits.wallet
        self.clock = clock
        self.verifier = verifier  # started and stopped by the runtime
        self._address_window = settings.address_burst / settings.address_rate
        self._wallet_window = settings.wallet_burst / settings.wallet_rate

    async def place(
        self, bet: BetRequest, client: str, now: float, log: dict[str, object] | None = None
    ) -> tuple[bytes, int, bool]:
        """Admit ``bet`` from ``client`` at wall-clock ``now`` (seconds).

        Returns (receipt, bet id, replayed) or raises Rejection. ``log`` receives the batch
        id of a newly committed bet, for the request's log line. With workers
        (gateway/server/worker.py) the same steps run split: the worker asks the owner for
        ``take_address``, checks the signature itself, then asks the owner to ``admit``.
        """
        self.take_address(client, now)
        await self.signature.check(bet, now)
        if self.settings.bench_verify_only:  # the harness's efficiency baseline; never in prod
            return VERIFY_ONLY_RECEIPT, 0, False
        return await self.admit(bet, now, log)

    def take_address(self, client: str, now: float) -> None:
        """The client address's token, before any signature work; Rejection 429 if none."""
        wait = self.address_buckets.take(client, now)
        if wait:
            s = self.settings
            raise rate_limited("address", s.address_burst, self._address_window, wait)

    async def admit(
        self, bet: BetRequest, now: float, log: dict[str, object] | None = None
    ) -> tuple[bytes, int, bool]:
        """A signed ``bet``, from the replay lookup on (the rest of ``place``)."""
        admitted = self.begin(bet, now)
        if isinstance(admitted, bytes):
            return admitted, replayed_bet_id(admitted), True
        if admitted.pending is None:  # the first request is still in flight: share its fate
            receipt = await asyncio.shield(admitted.future)
            return receipt, replayed_bet_id(receipt), True
        pending = admitted.pending
        receipt = await admitted.future
        if log is not None:
            log["batch_id"] = pending.batch_id
        return receipt, pending.bet_id, False

    def begin(self, bet: BetRequest, now: float) -> bytes | Admitted:
        """``admit`` up to the wait for the commit, without a task: the stored receipt of a
        replay, or the future the receipt will be set on (Rejection if refused now). The
        owner answers its workers from the future's callback (server/owner.py)."""
        s = self.settings
        now_ms = int(now * 1000)
        message = bet.message
        key = RecentBets.key(bet.wallet, bet.nonce)
        seen = self.recent.get(key, now_ms)
        if seen is not None:
            if seen.message != message:
                raise Rejection(ErrorCode.NONCE_REUSED, "this wallet already used this nonce")
            if seen.future is not None:  # the first request is still in flight: share its fate
                return Admitted(seen.future, None)
            return seen.receipt

        wait = self.wallet_buckets.take(bet.wallet, now)
        if wait:
            raise rate_limited("wallet", s.wallet_burst, self._wallet_window, wait)

        writer = self.writer
        if not writer.accepting:
            raise Rejection(
                ErrorCode.OVERLOADED,
                "the gateway is shutting down or its writer is not running",
                retry_after=1.0,
            )
        market = self.markets[bet.market]
        quote = market.quote(bet.row, bet.col, now_ms)
        multiplier = quote.multiplier
        minimum = bet.min_multiplier_hundredths
        if minimum is not None and minimum > multiplier:
            raise Rejection(
                ErrorCode.MULTIPLIER_BELOW_MINIMUM,
                f"the cell pays {format_multiplier(multiplier)}, "
                f"below min_multiplier {bet.min_multiplier}",
            )
        pays = payout(bet.amount, multiplier)
        book = market.book
        # the balance first: a wallet that cannot pay learns nothing of the exposure others
        # hold on the cell (the liability cap's refusal would tell it)
        self.accounts.reserve(bet.wallet, bet.amount)
        try:
            book.reserve(bet.wallet, bet.row, bet.col, bet.amount, pays)
        except Rejection:
            self.accounts.release(bet.wallet, bet.amount)
            raise
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        pending = PendingBet(
            bet,
            quote=quote,
            accepted_at=now_ms,
            key=key,
            future=future,
        )
        if not writer.submit(pending, self.clock()):
            self.accounts.release(bet.wallet, bet.amount)
            book.release(bet.wallet, bet.row, bet.col, bet.amount, pays)
            raise Rejection(ErrorCode.OVERLOADED, "the bet queue is full", retry_after=1.0)
        self.recent.begin(key, message, future)
        return Admitted(future, pending)
