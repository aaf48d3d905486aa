"""The running gateway's parts, opened and closed together by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import structlog

import fastpath
from fastpath import BatchQueue
from gateway.accounts import Accounts
from gateway.bets.admission import Admission
from gateway.bets.pending import CommitOutcomes, PendingBet
from gateway.bets.recent import RecentBets
from gateway.bets.verifier import BatchVerifier
from gateway.config import Settings
from gateway.limits import Limiter, Limits
from gateway.market.book import OpenBet
from gateway.market.hub import Hub
from gateway.market.market import Market
from gateway.market.service import Markets, market_from_history
from gateway.metrics import Metrics
from gateway.ops.runs import last_runs
from gateway.protocol import parse_cell
from gateway.store.database import open_checkpointer, open_reader, prepare
from gateway.store.reader import Reader
from gateway.store.writer import Writer

__all__ = ["Runtime", "open_runtime"]

log = structlog.get_logger("tapgate.runtime")


def _check_modes(settings: Settings) -> None:
    """Refuse a pure-Python start when the compiled fastpath is required; warn of modes that
    are not production."""
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


def _watch(
    metrics: Metrics, writer: Writer[PendingBet], hub: Hub, limits: Limits, wal: Path
) -> None:
    """Gauges read at scrape time: queue, stream, WAL, buckets, and which fastpath runs."""
    metrics.queue_depth.set_function(writer.queue.__len__)
    metrics.stream_connections.set_function(hub.__len__)
    metrics.wal_bytes.set_function(lambda: _size(wal))
    metrics.fastpath.labels(fastpath.IMPLEMENTATION).set(1)
    buckets = {
        (lim.name, kind): getattr(lim, kind) for lim in limits for kind in ("address", "wallet")
    }
    metrics.watch_rate_limits(buckets)


def _limits(s: Settings) -> Limits:
    """Each route family's buckets: per address, and per wallet (or oracle key)."""
    keys = s.bucket_max_keys
    return Limits(
        bets=Limiter.of(
            "bets", s.address_rate, s.address_burst, s.wallet_rate, s.wallet_burst, keys
        ),
        reads=Limiter.of("reads", s.read_rate, s.read_burst, s.read_rate, s.read_burst, keys),
        admin=Limiter.of("admin", s.admin_rate, s.admin_burst, s.admin_rate, s.admin_burst, keys),
        feed=Limiter.of("feed", s.feed_rate, s.feed_burst, s.feed_rate, s.feed_burst, keys),
        stream=Limiter.of(
            "stream", s.stream_rate, s.stream_burst, s.stream_rate, s.stream_burst, keys
        ),
    )


@dataclass
class Runtime:
    settings: Settings
    accounts: Accounts
    recent: RecentBets
    writer: Writer[PendingBet]
    reader: Reader
    admission: Admission
    limits: Limits
    connections: tuple[aiosqlite.Connection, ...]
    metrics: Metrics
    markets: Markets
    hub: Hub
    housekeeping: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.admission.verifier is not None:
            self.admission.verifier.start()
        self.writer.start()
        self.markets.start()
        self.housekeeping = asyncio.get_running_loop().create_task(
            self._housekeep(), name="tapgate-housekeeping"
        )

    async def _refresh_ops(self) -> None:
        try:
            results = await asyncio.to_thread(_ops_results, self.settings.db_path)
        except sqlite3.Error as exc:
            log.warning("ops_results_unreadable", error=str(exc))
            return
        for job, (success_ms, ok) in results.items():
            if success_ms is not None:
                self.metrics.ops_last_success.labels(job).set(success_ms / 1000)
            if ok is not None:
                self.metrics.ops_last_ok.labels(job).set(ok)

    async def close(self) -> None:
        """Stop feeds and resolver, refuse new bets, commit the queued ones, close the database."""
        await self.markets.stop()
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
        """Drop idle buckets and expired replay entries; checkpoint the WAL off the commit
        path; measure the event loop's lag; refresh the ops jobs' results every 10 s."""
        checkpointer = self.connections[-1]
        interval = self.settings.checkpoint_interval_s
        loop = asyncio.get_running_loop()
        ops_due = 0.0
        while True:
            due = loop.time() + interval
            await asyncio.sleep(interval)
            self.metrics.loop_lag.observe(max(0.0, loop.time() - due))
            if loop.time() >= ops_due:
                ops_due = loop.time() + 10.0
                await self._refresh_ops()
            now = time.time()
            for limiter in self.limits:
                limiter.address.prune(now)
                limiter.wallet.prune(now)
            self.recent.prune(int(now * 1000))
            try:
                await checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except aiosqlite.Error as exc:
                log.warning("checkpoint_failed", error=str(exc))
            self.writer.request_checkpoint()
            if self.settings.gc_freeze:
                # Open bets, ticks and buckets are long-lived: after a young collection,
                # move everything alive out of the cyclic collector's way, so its full
                # passes stay short (ADR 3 has the measurement).
                gc.collect(1)
                gc.freeze()


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # no WAL right now
        return 0


def _ops_results(db_path: Path) -> dict[str, tuple[int | None, int | None]]:
    conn = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return last_runs(conn)
    finally:
        conn.close()


async def _load_markets(settings: Settings, reader: Reader) -> list[Market]:
    """Each market as the database left it: recent ticks, open bets, operator halts."""
    halts = await reader.halts()
    out = []
    for cfg in settings.markets:
        open_bets = await reader.open_bets(cfg.symbol)
        parsed = []
        for bet_id, wallet, cell, amount, payout in open_bets:
            row, col = parse_cell(str(cell))
            parsed.append(OpenBet(int(bet_id), str(wallet), row, col, amount, payout))
        oldest = min((b.col for b in parsed), default=None)
        since = 2**62 if oldest is None else oldest * cfg.column_ms
        history = await reader.market_history(cfg.symbol, since, cfg.vol_window)
        market = market_from_history(cfg, history)
        for bet in parsed:
            market.book.load_open(bet)
        market.breaker.halted = halts.get(cfg.symbol)
        out.append(market)
        log.info(
            "market_loaded",
            market=cfg.symbol,
            feed=cfg.feed,
            ticks=len(market.ticks),
            open_bets=len(parsed),
            halted=market.breaker.halted,
        )
    return out


async def open_runtime(settings: Settings, metrics: Metrics | None = None) -> Runtime:
    """Open the database, rebuild the in-memory state from it, and wire the parts.

    If the rebuild fails (a damaged file, a history it cannot read back), the connections
    opened so far are closed before the error goes on: each holds a thread that would keep
    the process from exiting."""
    _check_modes(settings)
    metrics = metrics if metrics is not None else Metrics(process=False)
    path = settings.db_path
    await asyncio.to_thread(prepare, path, settings.synchronous)
    async with contextlib.AsyncExitStack() as opened:
        reader_conn = await open_reader(path)
        opened.push_async_callback(reader_conn.close)
        checkpoint_conn = await open_checkpointer(path, settings.synchronous)
        opened.push_async_callback(checkpoint_conn.close)
        runtime = await _wire(settings, metrics, reader_conn, checkpoint_conn)
        opened.pop_all()  # the runtime closes them now
    return runtime


async def _wire(
    settings: Settings,
    metrics: Metrics,
    reader_conn: aiosqlite.Connection,
    checkpoint_conn: aiosqlite.Connection,
) -> Runtime:
    path = settings.db_path
    reader = Reader(reader_conn)
    now_ms = int(time.time() * 1000)
    state = await reader.start_state(now_ms - settings.receive_window_ms - settings.future_skew_ms)
    accounts = Accounts(state.balances)
    recent = RecentBets(settings.receive_window_ms)
    for wallet, nonce, message, receipt, ts in state.recent:
        recent.remember(RecentBets.key(wallet, nonce), message, receipt, ts)
    loop = asyncio.get_running_loop()
    writer: Writer[PendingBet] = Writer(
        path,
        settings.synchronous,
        BatchQueue(settings.queue_capacity),
        batch_max=settings.batch_max,
        batch_wait_ms=settings.batch_wait_ms,
        next_bet_id=state.next_bet_id,
        next_batch_id=state.next_batch_id,
        metrics=metrics,
    )
    hub = Hub(settings.stream_buffer)
    markets = Markets(
        await _load_markets(settings, reader),
        writer,
        accounts,
        hub,
        metrics,
        resolve_interval_ms=settings.resolve_interval_ms,
        settle_batch=settings.settle_batch,
    )
    writer.outcomes = CommitOutcomes(accounts, recent, markets.markets)
    limits = _limits(settings)
    _watch(metrics, writer, hub, limits, Path(f"{path}-wal"))
    verifier = BatchVerifier(fastpath.verify_batch, loop) if settings.verify_thread else None
    admission = Admission(
        settings,
        accounts=accounts,
        recent=recent,
        writer=writer,
        limits=limits.bets,
        clock=loop.time,
        markets=markets,
        verifier=verifier,
        observe_verify=metrics.verify_seconds.observe,
    )
    runtime = Runtime(
        settings=settings,
        accounts=accounts,
        recent=recent,
        writer=writer,
        reader=reader,
        admission=admission,
        limits=limits,
        connections=(reader_conn, checkpoint_conn),
        metrics=metrics,
        markets=markets,
        hub=hub,
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
