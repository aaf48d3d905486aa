"""The single writer: group commit of bets, and every other write, on one connection.

Admitted bets wait in a bounded ``BatchQueue``. The flusher drains it when it holds
``batch_max`` bets or the oldest has waited ``batch_wait_ms``, and writes the group in
one transaction (one fsync): the bets, their double-entry ledger rows and, through
the ledger trigger, the balances. Each bet's future resolves only after COMMIT
returned. A failed transaction is rolled back whole and every bet in it is refused.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiosqlite
import orjson
import structlog

from gateway.accounts import Accounts
from gateway.errors import Rejection
from gateway.metrics import Metrics
from gateway.recent import RecentBets

__all__ = ["PendingBet", "Writer", "format_multiplier"]

log = structlog.get_logger("tapgate.writer")

_INSERT_BET = """
INSERT INTO bets (id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout,
                  min_multiplier, ts, signature, accepted_at, batch_id, receipt)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (wallet, nonce) DO NOTHING
"""
_STAKE_LEDGER = """
INSERT INTO ledger (txn, account, amount, kind, bet_id, created_at)
SELECT 'stake:' || id, wallet, -amount, 'stake', id, accepted_at
  FROM bets WHERE id BETWEEN ?1 AND ?2 AND batch_id = ?3
UNION ALL
SELECT 'stake:' || id, 'house', amount, 'stake', id, accepted_at
  FROM bets WHERE id BETWEEN ?1 AND ?2 AND batch_id = ?3
"""
_BATCH_IDS = "SELECT id FROM bets WHERE id BETWEEN ? AND ? AND batch_id = ?"


def format_multiplier(hundredths: int) -> str:
    """190 -> "1.90"."""
    return f"{hundredths // 100}.{hundredths % 100:02d}"


class PendingBet:
    """An admitted bet waiting for its group to commit."""

    __slots__ = (
        "accepted_at",
        "amount",
        "bet_id",
        "cell_id",
        "enqueued_at",
        "future",
        "key",
        "market",
        "min_multiplier",
        "multiplier",
        "nonce",
        "payout",
        "signature",
        "timestamp",
        "wallet",
    )

    def __init__(
        self,
        *,
        wallet: str,
        market: str,
        cell_id: str,
        amount: int,
        nonce: str,
        timestamp: int,
        min_multiplier: str | None,
        signature: str,
        multiplier: int,
        accepted_at: int,
        key: str,
        future: asyncio.Future[bytes],
    ) -> None:
        self.wallet = wallet
        self.market = market
        self.cell_id = cell_id
        self.amount = amount
        self.nonce = nonce
        self.timestamp = timestamp
        self.min_multiplier = min_multiplier
        self.signature = signature
        self.multiplier = multiplier
        self.payout = amount * multiplier // 100
        self.accepted_at = accepted_at
        self.key = key
        self.future = future
        self.bet_id = 0
        self.enqueued_at = 0.0

    def receipt(self, balance: int) -> bytes:
        """The 202 body, stored with the bet so a retry gets it byte for byte."""
        return orjson.dumps(
            {
                "bet_id": str(self.bet_id),
                "wallet": self.wallet,
                "market": self.market,
                "cell_id": self.cell_id,
                "amount": self.amount,
                "nonce": self.nonce,
                "timestamp": self.timestamp,
                "multiplier": format_multiplier(self.multiplier),
                "potential_payout": self.payout,
                "balance": balance,
                "status": "accepted",
                "accepted_at": self.accepted_at,
            }
        )


def _resolve(future: asyncio.Future[bytes], result: bytes | BaseException) -> None:
    if future.done():  # the request that awaited it was cancelled
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


async def _rollback(conn: aiosqlite.Connection) -> None:
    """Roll back unless SQLite already did (it does on SQLITE_FULL, IOERR, NOMEM)."""
    if conn.in_transaction:
        await conn.execute("ROLLBACK")


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Writer:
    """Owns the writer connection; all writes go through it, one transaction at a time."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        queue: Any,
        accounts: Accounts,
        recent: RecentBets,
        *,
        batch_max: int,
        batch_wait_ms: float,
        next_bet_id: int,
        next_batch_id: int,
        metrics: Metrics,
    ) -> None:
        self.conn = conn
        self.queue = queue
        self.accounts = accounts
        self.recent = recent
        self.batch_max = batch_max
        self.batch_wait = batch_wait_ms / 1000.0
        self.next_bet_id = next_bet_id
        self.next_batch_id = next_batch_id
        self.metrics = metrics
        self.lock = asyncio.Lock()
        self.last_error: str | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # -- admission side -------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        return not self._stopping and self.alive

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def submit(self, bet: PendingBet, now: float) -> bool:
        """Queue ``bet`` for the next group; False when the queue is full."""
        bet.bet_id = self.next_bet_id
        bet.enqueued_at = now
        depth = self.queue.push(bet)
        if depth == 0:
            return False
        self.next_bet_id += 1
        wakeup = self._wakeup
        if wakeup is not None and (depth == 1 or depth >= self.batch_max) and not wakeup.done():
            wakeup.set_result(None)
        return True

    # -- flusher ------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tapgate-flusher")

    async def stop(self) -> None:
        """Stop taking bets, commit what is queued, and stop the flusher."""
        self._stopping = True
        if self._wakeup is not None:
            _wake(self._wakeup)
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self.queue
        while True:
            if not len(queue):
                if self._stopping:
                    return
                self._wakeup = loop.create_future()
                await self._wakeup
                continue
            if len(queue) < self.batch_max and not self._stopping:
                delay = queue.head().enqueued_at + self.batch_wait - loop.time()
                if delay > 0:
                    self._wakeup = wakeup = loop.create_future()
                    timer = loop.call_later(delay, _wake, wakeup)
                    await wakeup
                    timer.cancel()
                    continue
            batch = queue.drain(self.batch_max)
            now = loop.time()
            observe_wait = self.metrics.queue_wait_seconds.observe
            for bet in batch:
                observe_wait(now - bet.enqueued_at)
            async with self.lock:
                await self._commit_bets(batch)

    async def _commit_bets(self, batch: list[PendingBet]) -> None:
        batch_id = self.next_batch_id
        self.next_batch_id += 1
        started = time.perf_counter()
        receipts = self._receipts(batch, skipped=set())
        first, last = batch[0].bet_id, batch[-1].bet_id
        conn = self.conn
        try:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = await conn.executemany(
                    _INSERT_BET,
                    [
                        (
                            b.bet_id,
                            b.wallet,
                            b.nonce,
                            b.market,
                            b.cell_id,
                            b.amount,
                            b.multiplier,
                            b.payout,
                            b.min_multiplier,
                            b.timestamp,
                            b.signature,
                            b.accepted_at,
                            batch_id,
                            receipt,
                        )
                        for b, receipt in zip(batch, receipts, strict=True)
                    ],
                )
                skipped: set[int] = set()
                if cursor.rowcount != len(batch):  # ON CONFLICT skipped a reused nonce
                    rows = await conn.execute_fetchall(_BATCH_IDS, (first, last, batch_id))
                    inserted = {row[0] for row in rows}
                    skipped = {b.bet_id for b in batch} - inserted
                if skipped:
                    receipts = self._receipts(batch, skipped)
                    await conn.executemany(
                        "UPDATE bets SET receipt = ? WHERE id = ?",
                        [
                            (r, b.bet_id)
                            for b, r in zip(batch, receipts, strict=True)
                            if b.bet_id not in skipped
                        ],
                    )
                await conn.execute(_STAKE_LEDGER, (first, last, batch_id))
                await conn.execute("COMMIT")
            except BaseException:
                await _rollback(conn)
                raise
        except Exception as exc:  # the database refused the write: nothing of it is stored
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.metrics.commit_failures.inc()
            log.error("batch_failed", batch_id=batch_id, size=len(batch), error=self.last_error)
            for bet in batch:
                self._refuse(
                    bet,
                    Rejection("overloaded", "the database refused the write", retry_after=1.0),
                )
            return
        self.last_error = None
        for bet, receipt in zip(batch, receipts, strict=True):
            if bet.bet_id in skipped:
                self._refuse(bet, Rejection("nonce_reused", "this wallet already used this nonce"))
                continue
            self.accounts.settle_debit(bet.wallet, bet.amount)
            self.recent.committed(bet.key, receipt, bet.timestamp)
            _resolve(bet.future, receipt)
        self.metrics.batch_size.observe(len(batch))
        self.metrics.flush_seconds.observe(time.perf_counter() - started)

    def _receipts(self, batch: list[PendingBet], skipped: set[int]) -> list[bytes]:
        """Each bet's receipt, with the wallet's committed balance right after its debit."""
        running: dict[str, int] = {}
        out = []
        for bet in batch:
            if bet.bet_id in skipped:
                out.append(b"")
                continue
            balance = running.get(bet.wallet)
            if balance is None:
                balance = self.accounts.balance(bet.wallet)
            balance -= bet.amount
            running[bet.wallet] = balance
            out.append(bet.receipt(balance))
        return out

    def _refuse(self, bet: PendingBet, rejection: Rejection) -> None:
        self.accounts.release(bet.wallet, bet.amount)
        self.recent.forget(bet.key)
        _resolve(bet.future, rejection)

    # -- other writes -------------------------------------------------------------

    async def credit(
        self, wallet: str, amount: int, reference: str, now_ms: int
    ) -> tuple[int, bool]:
        """Credit a deposit once per reference; return (balance, replayed)."""
        async with self.lock:
            conn = self.conn
            rows = await conn.execute_fetchall(
                "SELECT wallet, amount FROM deposits WHERE reference = ?", (reference,)
            )
            if rows:
                (found_wallet, found_amount) = next(iter(rows))
                if (found_wallet, found_amount) != (wallet, amount):
                    raise Rejection(
                        "reference_conflict",
                        "this reference was already used for another wallet or amount",
                    )
                return self.accounts.balance(wallet), True
            txn = f"deposit:{reference}"
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await conn.execute(
                    "INSERT INTO accounts (id, kind) VALUES (?, 'wallet') ON CONFLICT DO NOTHING",
                    (wallet,),
                )
                await conn.execute(
                    "INSERT INTO deposits (reference, wallet, amount, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (reference, wallet, amount, now_ms),
                )
                await conn.executemany(
                    "INSERT INTO ledger (txn, account, amount, kind, created_at) "
                    "VALUES (?, ?, ?, 'deposit', ?)",
                    [(txn, "deposits", -amount, now_ms), (txn, wallet, amount, now_ms)],
                )
                await conn.execute("COMMIT")
            except BaseException:
                await _rollback(conn)
                raise
            return self.accounts.credit(wallet, amount), False
