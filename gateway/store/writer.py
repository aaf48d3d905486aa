"""The single writer: group commit of bets, and every other write, on one connection.

Admitted bets wait in a bounded ``BatchQueue``. The flusher drains it when it holds
``batch_max`` bets or the oldest has waited ``batch_wait_ms``, and writes the group as
one INSERT statement, which SQLite commits as its own transaction (one fsync): the bets
and, through the schema's triggers, their stake postings and the balances. Each bet's
future resolves only after that statement returned. A failed statement is rolled back
whole and every bet in it is refused.

The connection lives on one dedicated thread and each write runs there as one call, so a
group costs one hand-off between the event loop and the thread (ADR 3), and one statement
means the thread takes the GIL back once per group, not once per BEGIN, INSERT and COMMIT
(ADR 14 has the measurement).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import structlog

from gateway.metrics import Metrics
from gateway.store.inserts import Insert, transaction
from gateway.store.schema import connect_pragmas

__all__ = [
    "GroupOutcomes",
    "GroupQueue",
    "GroupStored",
    "Queued",
    "Refusal",
    "Writer",
    "write_credit",
]

T = TypeVar("T")
R = TypeVar("R")

log = structlog.get_logger("tapgate.writer")

# One statement inserts the whole group (gateway/store/inserts.py). The batch id comes last
# so that a row is the bet's values followed by it.
_BETS = Insert(
    "bets",
    (
        "id", "wallet", "nonce", "market", "cell_id", "amount", "multiplier", "potential_payout",
        "min_multiplier", "ts", "signature", "accepted_at", "receipt", "quote_seq",
        "quote_sigma_low", "quote_sigma_high", "quote_p", "batch_id",
    ),
    "ON CONFLICT (wallet, nonce) DO NOTHING",
)  # fmt: skip


def group_values(rows: Iterable[Sequence[Any]], batch_id: int) -> list[Any]:
    """A group's bound values: each bet's row (``Queued.row``) followed by the batch id."""
    values: list[Any] = []
    for row in rows:
        values += row
        values.append(batch_id)
    return values


_BATCH_IDS = "SELECT id FROM bets WHERE id BETWEEN ? AND ? AND batch_id = ?"


class Refusal(enum.Enum):
    """Why a queued bet was not stored; the layer above turns it into the client's answer."""

    DATABASE_REFUSED = "the database refused the write"  # rolled back: nothing stored
    NONCE_REUSED = "this wallet already used this nonce"  # an old row holds the nonce
    WRITER_FAILED = "the writer failed"  # never written: the flusher stopped on a bug


class GroupStored(Exception):
    """A group's INSERT committed, but reading back which of its bets a reused nonce
    skipped failed: the bets may not be refused (their stakes are taken), and which are
    stored is known only to the database. The flusher stops; a restart reads them back."""


class Queued(Protocol):
    """What the writer needs of a queued bet: its ids, its wait, and its ``bets`` row."""

    bet_id: int
    batch_id: int
    enqueued_at: float

    def row(self, receipt: bytes) -> tuple[Any, ...]:
        """The values of its ``bets`` row, in _BET_COLUMNS order but the batch id (last)."""
        ...


Q = TypeVar("Q", bound=Queued)
Q_contra = TypeVar("Q_contra", bound=Queued, contravariant=True)


class GroupQueue(Protocol):
    """The bounded FIFO the writer drains in groups (fastpath.BatchQueue)."""

    def __len__(self) -> int: ...

    def push(self, item: Any) -> int:
        """Append; the new length, or 0 when full."""
        ...

    def head(self) -> Any: ...

    def drain(self, n: int) -> list[Any]: ...


class GroupOutcomes(Protocol[Q_contra]):
    """The layer above: renders receipts before a group is written and applies each
    bet's outcome (to balances, the replay map, the order book and the waiting request)."""

    def receipts(self, group: Sequence[Q_contra], skipped: set[int]) -> list[bytes]:
        """Each bet's stored receipt (empty for the ``skipped`` ids), in group order."""
        ...

    def committed(self, bets: Sequence[Q_contra], receipts: Sequence[bytes]) -> None:
        """These bets are durable, with these receipts."""
        ...

    def refused(self, bet: Q_contra, refusal: Refusal) -> None:
        """This bet was not stored."""
        ...

    def unknown(self, bets: Sequence[Q_contra]) -> None:
        """The writer stopped during this group's write: the requests get an answer, the
        reservations stay (the rows may be durable; the next start reads them back)."""
        ...


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Writer(Generic[Q]):
    """Owns the writer connection; all writes go through it, one transaction at a time."""

    def __init__(
        self,
        path: Path,
        synchronous: str,
        queue: GroupQueue,
        *,
        batch_max: int,
        batch_wait_ms: float,
        next_bet_id: int,
        next_batch_id: int,
        metrics: Metrics,
    ) -> None:
        self.outcomes: GroupOutcomes[Q] | None = None  # set once by the layer above
        self.path = path
        self.synchronous = synchronous
        self.queue = queue
        self.batch_max = batch_max
        self.batch_wait = batch_wait_ms / 1000.0
        self.next_bet_id = next_bet_id
        self.next_batch_id = next_batch_id
        self.metrics = metrics
        self.lock = asyncio.Lock()
        self.last_error: str | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tapgate-writer")
        self._conn: sqlite3.Connection | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._checkpoint_due = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def _outcomes(self) -> GroupOutcomes[Q]:
        if self.outcomes is None:
            raise RuntimeError("Writer.outcomes is not set: nothing would answer the bets")
        return self.outcomes

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._with_conn, fn, args)

    def _with_conn(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.executescript(connect_pragmas(self.synchronous) + "PRAGMA wal_autocheckpoint=0;")
            self._conn = conn
        return fn(self._conn, *args)

    # -- admission side -------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        return not self._stopping and self.alive

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def submit(self, bet: Q, now: float) -> bool:
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

    def request_checkpoint(self) -> None:
        """Ask for a PASSIVE checkpoint on the writer connection before the next group.

        The housekeeping task's own checkpoint copies the bulk of the WAL off the commit
        path, but under continuous writes it never catches up with the end of the WAL, so
        SQLite can never restart it and the WAL grows without bound. Right after that
        checkpoint, the writer copies the few frames written meanwhile; the next write
        transaction then restarts the WAL from the beginning.
        """
        self._checkpoint_due = True

    # -- flusher ------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tapgate-flusher")

    async def stop(self) -> None:
        """Stop taking bets, commit what is queued, stop the flusher, close the connection."""
        if self._stopping:
            return
        self._stopping = True
        if self._wakeup is not None:
            _wake(self._wakeup)
        if self._task is not None:
            with contextlib.suppress(Exception):  # a failed flusher was logged when it failed
                await self._task
        await self.call(lambda conn: conn.close())
        self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        try:
            await self._flush_forever()
        except Exception:
            # A bug, not a database refusal (those are handled per group). Never leave a
            # request waiting: refuse everything queued, then stop; /healthz stays up, new
            # bets get 503 ("the writer is not running") until an operator restarts.
            log.exception("flusher_failed")
            for bet in self.queue.drain(len(self.queue)):
                self._outcomes.refused(bet, Refusal.WRITER_FAILED)
            raise

    async def _flush_forever(self) -> None:
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
            if self._checkpoint_due:
                self._checkpoint_due = False
                async with self.lock:
                    await self.call(_checkpoint)
            batch = queue.drain(self.batch_max)
            now = loop.time()
            observe_wait = self.metrics.queue_wait_seconds.observe
            for bet in batch:
                observe_wait(now - bet.enqueued_at)
            async with self.lock:
                try:
                    await self._commit_bets(batch)
                except BaseException:
                    self._outcomes.unknown(batch)  # whatever happened, nobody waits for ever
                    raise

    async def _commit_bets(self, batch: list[Q]) -> None:
        outcomes = self._outcomes
        batch_id = self.next_batch_id
        self.next_batch_id += 1
        started = time.perf_counter()
        receipts = outcomes.receipts(batch, set())
        rows = group_values([b.row(r) for b, r in zip(batch, receipts, strict=True)], batch_id)
        ids = (batch[0].bet_id, batch[-1].bet_id, len(batch))
        try:
            skipped = await self.call(_write_bets, rows, ids, batch_id, self._fixed_receipts(batch))
        except GroupStored:
            raise  # never refused: the flusher stops with the group's outcome unknown
        except Exception as exc:  # the database refused the write: nothing of it is stored
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.metrics.commit_failures.inc()
            log.error("batch_failed", batch_id=batch_id, size=len(batch), error=self.last_error)
            for bet in batch:
                outcomes.refused(bet, Refusal.DATABASE_REFUSED)
            return
        self.last_error = None
        if skipped:
            receipts = outcomes.receipts(batch, skipped)
        committed, kept = [], []
        for bet, receipt in zip(batch, receipts, strict=True):
            if bet.bet_id in skipped:
                outcomes.refused(bet, Refusal.NONCE_REUSED)
                continue
            bet.batch_id = batch_id
            committed.append(bet)
            kept.append(receipt)
        outcomes.committed(committed, kept)
        self.metrics.batch_size.observe(len(batch))
        self.metrics.flush_seconds.observe(time.perf_counter() - started)

    def _fixed_receipts(self, batch: list[Q]) -> Callable[[set[int]], list[tuple[str, int]]]:
        """For the writer thread: receipts without the skipped bets' debits (a rare path;
        committed balances do not move while the writer's call is in progress)."""
        outcomes = self._outcomes

        def rebuild(skipped: set[int]) -> list[tuple[str, int]]:
            receipts = outcomes.receipts(batch, skipped)
            return [(r.decode(), b.bet_id) for b, r in zip(batch, receipts, strict=True) if r]

        return rebuild

    # -- other writes -------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` on the writer thread, between groups."""
        async with self.lock:
            return await self.call(fn, *args)

    async def run_then(
        self, fn: Callable[..., T], args: tuple[Any, ...], then: Callable[[T], R]
    ) -> R:
        """``fn(connection, *args)`` between groups, and ``then(result)`` on the event loop
        before the next group: no group sees the database changed and the memory not yet."""
        async with self.lock:
            return then(await self.call(fn, *args))

    async def transaction(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(connection, *args)`` inside one write transaction, after any group."""
        async with self.lock:
            return await self.call(_in_transaction, work, args)

    async def execute(self, sql: str, *params: Any) -> list[Any]:
        """One statement on the writer connection (operator tools, tests)."""
        async with self.lock:
            return await self.call(lambda conn: conn.execute(sql, params).fetchall())


def _write_bets(
    conn: sqlite3.Connection,
    values: list[Any],
    ids: tuple[int, int, int],
    batch_id: int,
    rebuild: Callable[[set[int]], list[tuple[str, int]]],
) -> set[int]:
    """Insert one group (``group_values``), its stakes posted by the ``bets_stake``
    trigger, in one statement that commits by itself; return the ids skipped for a reused
    nonce. A group with more values than SQLite binds in one statement (TAPGATE_BATCH_MAX
    far above its default) is written in several, in one transaction."""
    first, last, count = ids
    if conn.in_transaction:  # a bug elsewhere; committing it with the group would be worse
        raise sqlite3.OperationalError("a transaction was left open on the writer connection")
    inserted = _BETS.run(conn, values)
    if inserted == count:
        return set()
    # ON CONFLICT skipped a nonce used long ago (rare): the wallet's later bets in the group
    # carry receipts whose balance counted the skipped stake. They are corrected before any
    # bet of the group is answered; a crash in between leaves only that field off (no money
    # moves: balances are the ledger's), and a retry is answered with the stored receipt.
    try:
        kept = {r[0] for r in conn.execute(_BATCH_IDS, (first, last, batch_id))}
        skipped = set(values[:: _BETS.width]) - kept
        transaction(
            conn,
            lambda: conn.executemany("UPDATE bets SET receipt = ? WHERE id = ?", rebuild(skipped)),
        )
    except Exception as exc:  # the database's or a bug in the receipts: stored either way
        raise GroupStored(f"group {batch_id} is stored; reading it back failed: {exc}") from exc
    return skipped


def _in_transaction(conn: sqlite3.Connection, work: Callable[..., T], args: tuple[Any, ...]) -> T:
    return transaction(conn, lambda: work(conn, *args))


def _checkpoint(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:  # a checkpoint that cannot run now will run next time
        log.warning("writer_checkpoint_failed", error=str(exc))


def write_credit(
    conn: sqlite3.Connection, wallet: str, amount: int, reference: str, now_ms: int
) -> bool | None:
    """Credit a deposit; True when the reference was already credited identically, None
    when it was used for another wallet or amount (nothing written)."""
    found = conn.execute(
        "SELECT wallet, amount FROM deposits WHERE reference = ?", (reference,)
    ).fetchone()
    if found is not None:
        return True if tuple(found) == (wallet, amount) else None
    txn = f"deposit:{reference}"

    def work() -> None:
        conn.execute(
            "INSERT INTO accounts (id, kind) VALUES (?, 'wallet') ON CONFLICT DO NOTHING",
            (wallet,),
        )
        conn.execute(
            "INSERT INTO deposits (reference, wallet, amount, created_at) VALUES (?, ?, ?, ?)",
            (reference, wallet, amount, now_ms),
        )
        conn.execute(
            "INSERT INTO postings (txn, debit, credit, amount, kind, created_at) "
            "VALUES (?, 'deposits', ?, ?, 'deposit', ?)",
            (txn, wallet, amount, now_ms),
        )

    transaction(conn, work)
    return False
