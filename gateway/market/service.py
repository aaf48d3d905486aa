"""The markets of a running gateway: tick ingestion, the simulated feeds, the resolver.

``Markets`` owns every ``Market`` and the tasks that move them:
- ``ingest``: validate ticks, commit them through the writer, then apply them (price,
  volatility, multiplier table) and publish them to the stream;
- one simulated-feed task per market whose feed is ``sim``;
- the resolver task: every ``resolve_interval_ms`` it re-evaluates each breaker and
  settles the open bets whose cells are decided, at most ``settle_batch`` bets per
  transaction.
Admission calls ``reserve`` and the writer calls ``committed`` / ``refused``, so the book
always matches the queued and committed bets.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from gateway.accounts import Accounts
from gateway.errors import ErrorCode, Rejection
from gateway.market.book import OpenBet
from gateway.market.config import MarketConfig
from gateway.market.feed import SimulatedFeed, Tick, TickRules
from gateway.market.grid import band_bounds, window
from gateway.market.hub import Hub
from gateway.market.market import Market
from gateway.market.pricing import price_grid
from gateway.market.resolution import cell_outcome
from gateway.metrics import Metrics
from gateway.protocol import cell_id
from gateway.store.markets import Settlement, TickRow, insert_ticks, set_halt, settle
from gateway.store.writer import Writer

__all__ = ["Markets"]

log = structlog.get_logger("tapgate.markets")


def _now_ms() -> int:
    return int(time.time() * 1000)


class Markets:
    def __init__(
        self,
        markets: Iterable[Market],
        writer: Writer[Any],
        accounts: Accounts,
        hub: Hub,
        metrics: Metrics,
        *,
        resolve_interval_ms: int,
        settle_batch: int,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.markets = {m.symbol: m for m in markets}
        self.writer = writer
        self.accounts = accounts
        self.hub = hub
        self.metrics = metrics
        self.resolve_interval = resolve_interval_ms / 1000.0
        self.settle_batch = settle_batch
        self.clock = clock
        self._locks = {symbol: asyncio.Lock() for symbol in self.markets}
        self._tasks: list[asyncio.Task[None]] = []

    def __getitem__(self, symbol: str) -> Market:
        return self.markets[symbol]

    def __iter__(self) -> Any:
        return iter(self.markets.values())

    # -- ticks ----------------------------------------------------------------------

    async def ingest(
        self, symbol: str, ticks: list[tuple[Tick, str | None]], source: str
    ) -> list[Tick]:
        """Validate, commit and apply ticks (with their oracle signatures); all or none."""
        market = self.markets[symbol]
        async with self._locks[symbol]:
            now_ms = self.clock()
            rules = TickRules(market.cfg, market.rules.last)
            try:
                for tick, _ in ticks:
                    rules.check(tick, now_ms)
                    rules.accepted(tick)
            except Rejection:
                self.metrics.ticks.labels(symbol, "rejected").inc(len(ticks))
                raise
            rows = [TickRow(t.seq, t.price, t.ts, now_ms, source, sig) for t, sig in ticks]
            try:
                await self.writer.transaction(insert_ticks, symbol, rows)
            except sqlite3.Error as exc:  # disk full, I/O error: nothing was stored
                log.error("ticks_not_stored", market=symbol, error=str(exc))
                raise Rejection(
                    ErrorCode.OVERLOADED, "the database refused the ticks", retry_after=1.0
                ) from exc
            for tick, _ in ticks:
                market.apply(tick, now_ms)
            self.metrics.ticks.labels(symbol, "accepted").inc(len(ticks))
            inputs = market.pricing_inputs()
            if inputs is not None:
                # ~4 ms of CPU for the default 21 x 12 grid (bench/RESULTS.md): on a worker
                # thread the event loop keeps its turn every GIL switch interval
                table = await asyncio.to_thread(price_grid, market.cfg, *inputs)
                market.install(inputs[0], table)
        last = ticks[-1][0]
        self.hub.publish(
            symbol,
            {"type": "tick", "market": symbol, "seq": last.seq, "price": last.price, "ts": last.ts},
        )
        if self.hub.watching(symbol):
            self.hub.publish_grid(symbol, market.grid(self.clock()))
        self._update_breaker(market, self.clock())
        return [t for t, _ in ticks]

    async def _simulate(self, market: Market) -> None:
        feed = SimulatedFeed(market.cfg, market.last)
        interval = market.cfg.tick_interval_ms / 1000.0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            tick = feed.next(self.clock())
            try:
                await self.ingest(market.symbol, [(tick, None)], "sim")
            except Rejection as exc:  # e.g. the wall clock stepped back
                log.warning("sim_tick_rejected", market=market.symbol, reason=exc.message)
                feed = SimulatedFeed(market.cfg, market.last)
            except Exception as exc:  # the database refused: try again next tick
                log.error("sim_tick_failed", market=market.symbol, error=str(exc))
                feed = SimulatedFeed(market.cfg, market.last)
            if loop.time() - next_at > interval:  # fell behind (loop stalled): skip, don't burst
                next_at = loop.time()

    # -- operator halt ----------------------------------------------------------------

    async def halt(self, symbol: str, reason: str | None) -> Market:
        market = self.markets[symbol]
        await self.writer.transaction(set_halt, symbol, reason, self.clock())
        market.breaker.halted = reason
        log.warning("market_halt" if reason else "market_resume", market=symbol, reason=reason)
        self._update_breaker(market, self.clock())
        return market

    # -- breaker and resolution ---------------------------------------------------

    def _update_breaker(self, market: Market, now_ms: int) -> None:
        change = market.update_breaker(now_ms)
        m = self.metrics
        m.breaker_state.labels(market.symbol).set(market.breaker.state)
        m.house_edge.labels(market.symbol).set(market.cfg.house_edge_bps / 10_000)
        band = market.sigma
        if band is not None:
            for bound, value in (
                ("low", band.low),
                ("estimate", band.estimate),
                ("high", band.high),
            ):
                m.quote_sigma.labels(market.symbol, bound).set(value)
        age = market.feed_age_ms(now_ms)
        m.feed_age.labels(market.symbol).set(float("inf") if age is None else age / 1000.0)
        m.liability.labels(market.symbol).set(market.book.liability)
        if change is None:
            return
        log.warning(
            "breaker_transition",
            market=change.market,
            old=change.old.label,
            new=change.new.label,
            reasons=list(change.reasons),
        )
        self.hub.publish(
            change.market,
            {
                "type": "breaker",
                "market": change.market,
                "state": change.new,
                "name": change.new.label,
                "reasons": list(change.reasons),
            },
        )
        if self.hub.watching(market.symbol):  # a critical breaker empties the grid at once
            self.hub.publish_grid(market.symbol, market.grid(now_ms))

    def decided(self, market: Market, now_ms: int, limit: int) -> list[tuple[OpenBet, Settlement]]:
        """Up to ``limit`` open bets whose cells the committed ticks decide at ``now_ms``.

        Each call costs in proportion to what it returns (plus one outcome per open cell
        of a column that may be decided), so a column of many bets settles in chunks
        without holding the event loop for the whole column."""
        cfg = market.cfg
        last_ts = -1 if market.last is None else market.last.ts
        out: list[tuple[OpenBet, Settlement]] = []
        for col in market.book.open_columns():
            start, end = window(cfg, col)
            if start > last_ts and now_ms < end + cfg.grace_ms:
                continue  # no tick in the window yet, and not over
            ticks = market.ticks_between(start, end)
            pairs = [(t.ts, t.price) for t in ticks]
            for row, bets in market.book.open_cells(col).items():
                low, high = band_bounds(cfg, row)
                found = cell_outcome(
                    pairs,
                    low,
                    high,
                    start,
                    end,
                    now_ms=now_ms,
                    grace_ms=cfg.grace_ms,
                    gap_limit_ms=cfg.gap_limit_ms,
                )
                if found is None:
                    continue
                outcome, index = found
                seq = None if index is None else ticks[index].seq
                for bet in bets.values():
                    payout = (
                        bet.payout if outcome == "won" else bet.amount if outcome == "void" else 0
                    )
                    out.append((bet, Settlement(bet.bet_id, bet.wallet, outcome, payout, seq)))
                    if len(out) == limit:
                        return out
        return out

    async def resolve(self, market: Market, now_ms: int) -> int:
        """Settle every decided bet of ``market``, ``settle_batch`` bets per transaction;
        return how many were settled."""
        total = 0
        while chunk := self.decided(market, now_ms, self.settle_batch):
            settled = set(await self.writer.run(settle, [item for _, item in chunk], now_ms))
            done = [bet for bet, _ in chunk if bet.bet_id in settled]
            won_by_cell: dict[tuple[int, int], int] = {}
            totals = SettledTotals()
            for bet, settlement in chunk:
                if bet.bet_id not in settled:
                    continue
                wallet, outcome, payout = settlement.wallet, settlement.outcome, settlement.payout
                balance = self.accounts.credit(wallet, payout) if payout else None
                totals.add(outcome, bet.amount, payout)
                if outcome == "won":
                    cell = (bet.row, bet.col)
                    won_by_cell[cell] = won_by_cell.get(cell, 0) + payout
                if self.hub.follows(wallet):
                    self.hub.publish_to(
                        wallet,
                        {
                            "type": "bet_result",
                            "bet_id": str(bet.bet_id),
                            "market": market.symbol,
                            "cell_id": cell_id(bet.row, bet.col),
                            "status": outcome,
                            "amount": bet.amount,
                            "payout": payout,
                            "balance": balance
                            if balance is not None
                            else self.accounts.balance(wallet),
                        },
                    )
            totals.count(self.metrics, market.symbol)
            # one draw per cell: its bets share one outcome (the realised edge's noise)
            squares = sum(total * total for total in won_by_cell.values())
            self.metrics.settled_payout_squares.labels(market.symbol).inc(squares)
            # bets refused as not open were settled before (e.g. by a run that crashed
            # after committing): they leave the book too, so every round makes progress
            market.book.settled([bet for bet, _ in chunk])
            total += len(done)
        return total

    async def _resolve_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resolve_interval)
            now_ms = self.clock()
            for market in self.markets.values():
                self._update_breaker(market, now_ms)
                try:
                    await self.resolve(market, now_ms)
                except Exception:  # a failed settlement transaction: retried next round
                    log.exception("resolve_failed", market=market.symbol)
                market.prune(now_ms)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for market in self.markets.values():
            if market.cfg.feed == "sim":
                self._tasks.append(
                    loop.create_task(self._simulate(market), name=f"tapgate-sim-{market.symbol}")
                )
        self._tasks.append(loop.create_task(self._resolve_forever(), name="tapgate-resolver"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


class SettledTotals:
    """One chunk's settlements, counted into the metrics once per chunk (a labelled child
    lookup per settled bet was a visible share of the event loop in a settlement wave)."""

    def __init__(self) -> None:
        self.by_outcome: dict[str, int] = {}
        self.payout = 0
        self.stakes = 0  # void bets are out of the realised edge
        self.payouts = 0
        self.decided = 0

    def add(self, outcome: str, amount: int, payout: int) -> None:
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
        self.payout += payout
        if outcome != "void":
            self.decided += 1
            self.stakes += amount
            self.payouts += payout

    def count(self, m: Metrics, symbol: str) -> None:
        for outcome, n in self.by_outcome.items():
            m.bets_resolved.labels(outcome).inc(n)
        m.payout.inc(self.payout)
        if self.decided:
            m.settled_stakes.labels(symbol).inc(self.stakes)
            m.settled_payouts.labels(symbol).inc(self.payouts)


def market_from_history(cfg: MarketConfig, ticks: Iterable[tuple[int, int, int]]) -> Market:
    return Market(cfg, (Tick(seq, price, ts) for seq, price, ts in ticks))
