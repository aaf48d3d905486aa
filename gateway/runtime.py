"""The running gateway's parts, opened and closed together by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import aiosqlite
import structlog

import fastpath
from fastpath import BatchQueue, TokenBuckets
from gateway.accounts import Accounts
from gateway.admission import Admission
from gateway.config import Settings
from gateway.http.auth import Limiter
from gateway.metrics import Metrics
from gateway.recent import RecentBets
from gateway.store.database import open_checkpointer, open_reader, prepare
from gateway.store.reader import Reader
from gateway.store.writer import Writer
from gateway.verifier import BatchVerifier

__all__ = ["Runtime", "open_runtime"]

log = structlog.get_logger("tapgate.runtime")


def _limiter(
    name: str, rate: float, burst: float, wallet_rate: float, wallet_burst: float, max_keys: int
) -> Limiter:
    return Limiter(
        name,
        TokenBuckets(rate, burst, max_keys),
        TokenBuckets(wallet_rate, wallet_burst, max_keys),
    )


@dataclass
class Runtime:
    settings: Settings
    accounts: Accounts
    recent: RecentBets
    writer: Writer
    reader: Reader
    admission: Admission
    bet_limits: Limiter
    read_limits: Limiter
    admin_limits: Limiter
    connections: tuple[aiosqlite.Connection, ...]
    metrics: Metrics
    housekeeping: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.admission.verifier is not None:
            self.admission.verifier.start()
        self.writer.start()
        self.housekeeping = asyncio.get_running_loop().create_task(
            self._housekeep(), name="tapgate-housekeeping"
        )

    async def close(self) -> None:
        """Refuse new bets, commit the queued ones, then close the database."""
        await self.writer.stop()
        if self.admission.verifier is not None:
            self.admission.verifier.stop()
        if self.housekeeping is not None:
            self.housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.housekeeping
        for conn in self.connections:
            await conn.close()
        log.info("stopped", queued=len(self.writer.queue))

    async def _housekeep(self) -> None:
        """Drop idle buckets and expired replay entries; checkpoint the WAL off the commit path."""
        checkpointer = self.connections[-1]
        interval = self.settings.checkpoint_interval_s
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for limiter in (self.bet_limits, self.read_limits, self.admin_limits):
                limiter.address.prune(now)
                limiter.wallet.prune(now)
            self.recent.prune(int(now * 1000))
            try:
                await checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except aiosqlite.Error as exc:
                log.warning("checkpoint_failed", error=str(exc))
            self.writer.request_checkpoint()


async def open_runtime(settings: Settings, metrics: Metrics | None = None) -> Runtime:
    """Open the database, rebuild the in-memory state from it, and wire the parts."""
    if settings.require_extensions and fastpath.IMPLEMENTATION != "c":
        raise RuntimeError(
            "TAPGATE_REQUIRE_EXTENSIONS=1 but the compiled fastpath did not load "
            f"({fastpath.IMPORT_ERROR or 'TAPGATE_NO_EXTENSIONS is set'}); "
            "run `make install` with a C compiler and Python headers present"
        )
    if settings.bench_verify_only:
        log.warning(
            "bench_verify_only",
            detail="TAPGATE_BENCH_VERIFY_ONLY=1: bets are verified and answered, never stored",
        )
    if fastpath.IMPORT_ERROR:
        log.warning("fastpath_pure_python", reason=fastpath.IMPORT_ERROR)
    metrics = metrics if metrics is not None else Metrics(process=False)
    path = settings.db_path
    await asyncio.to_thread(prepare, path, settings.synchronous)
    reader_conn = await open_reader(path)
    checkpoint_conn = await open_checkpointer(path, settings.synchronous)
    reader = Reader(reader_conn)
    now_ms = int(time.time() * 1000)
    state = await reader.start_state(now_ms - settings.receive_window_ms - settings.future_skew_ms)
    accounts = Accounts(state.balances)
    recent = RecentBets(settings.receive_window_ms)
    for wallet, nonce, message, receipt, ts in state.recent:
        recent.remember(RecentBets.key(wallet, nonce), message, receipt, ts)
    loop = asyncio.get_running_loop()
    writer = Writer(
        path,
        settings.synchronous,
        BatchQueue(settings.queue_capacity),
        accounts,
        recent,
        batch_max=settings.batch_max,
        batch_wait_ms=settings.batch_wait_ms,
        next_bet_id=state.next_bet_id,
        next_batch_id=state.next_batch_id,
        metrics=metrics,
    )
    metrics.queue_depth.set_function(writer.queue.__len__)
    metrics.fastpath.labels(fastpath.IMPLEMENTATION).set(1)
    s = settings
    bet_limits = _limiter(
        "bets", s.address_rate, s.address_burst, s.wallet_rate, s.wallet_burst, s.bucket_max_keys
    )
    verifier = BatchVerifier(fastpath.verify_batch, loop) if settings.verify_thread else None
    admission = Admission(
        settings,
        accounts,
        recent,
        writer,
        bet_limits.address,
        bet_limits.wallet,
        loop.time,
        verifier,
    )
    runtime = Runtime(
        settings=settings,
        accounts=accounts,
        recent=recent,
        writer=writer,
        reader=reader,
        admission=admission,
        bet_limits=bet_limits,
        read_limits=_limiter(
            "reads", s.read_rate, s.read_burst, s.read_rate, s.read_burst, s.bucket_max_keys
        ),
        admin_limits=_limiter(
            "admin", s.admin_rate, s.admin_burst, s.admin_rate, s.admin_burst, s.bucket_max_keys
        ),
        connections=(reader_conn, checkpoint_conn),
        metrics=metrics,
    )
    log.info(
        "started",
        fastpath=fastpath.IMPLEMENTATION,
        wallets=len(accounts),
        recent_bets=len(recent),
        next_bet_id=state.next_bet_id,
        synchronous=settings.synchronous,
    )
    return runtime
