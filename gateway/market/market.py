"""One market's live state: ticks, volatility, the multiplier table, breaker and book.

Only committed ticks reach ``apply``, which updates the price and the volatility band; the
multiplier table is then recomputed from ``pricing_inputs`` (off the event loop, by the
service) and installed with ``install``, once per tick, never per request. ``quote`` is a
dictionary look-up plus the quote-age and open checks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from gateway.errors import ErrorCode, Rejection
from gateway.market.book import Book
from gateway.market.breaker import Breaker, State, Transition
from gateway.market.config import MarketConfig
from gateway.market.feed import Tick, TickRules
from gateway.market.grid import column_open, open_columns, window
from gateway.market.pricing import Quote, price_grid
from gateway.market.volatility import SigmaBand, VolEstimator
from gateway.protocol import cell_id, format_multiplier

__all__ = ["Market"]


class Market:
    def __init__(self, cfg: MarketConfig, history: Iterable[Tick] = ()) -> None:
        self.cfg = cfg
        self.book = Book(cfg)
        self.breaker = Breaker(cfg)
        self.ticks: deque[Tick] = deque()  # committed, in order: resolution and volatility
        self.last: Tick | None = None
        self.last_received_ms: int | None = None
        self.volatility = VolEstimator(cfg.vol_window, cfg.vol_short_window, cfg.min_ticks - 1)
        self.sigma: SigmaBand | None = None
        self.table: dict[tuple[int, int], Quote] = {}
        self.table_seq = 0  # the tick the table was computed from
        for tick in history:
            self.ticks.append(tick)
            self.volatility.add(tick.ts, tick.price)
            self.last = tick
        self.rules = TickRules(cfg, self.last)
        self.sigma = self.volatility.band()
        inputs = self.pricing_inputs()
        if inputs is not None:
            self.install(inputs[0], price_grid(cfg, *inputs))

    @property
    def symbol(self) -> str:
        return self.cfg.symbol

    def pricing_inputs(self) -> tuple[int, int, int, SigmaBand] | None:
        """(seq, price, ts, sigma band) of the last tick, or None while pricing is unavailable."""
        if self.sigma is None or self.last is None:
            return None
        return self.last.seq, self.last.price, self.last.ts, self.sigma

    def install(self, seq: int, table: dict[tuple[int, int], Quote]) -> None:
        """Use the table computed from tick ``seq``, unless a newer one is in place."""
        if seq >= self.table_seq:
            self.table = table
            self.table_seq = seq

    def apply(self, tick: Tick, received_ms: int) -> None:
        """A committed tick: new price and volatility (the service re-prices the grid)."""
        self.rules.accepted(tick)
        self.ticks.append(tick)
        self.last = tick
        self.last_received_ms = received_ms
        self.volatility.add(tick.ts, tick.price)
        self.sigma = self.volatility.band()

    def feed_age_ms(self, now_ms: int) -> int | None:
        return None if self.last_received_ms is None else max(0, now_ms - self.last_received_ms)

    def quote_age_ms(self, now_ms: int) -> int | None:
        """How old the newest committed tick is by its source timestamp, on our clock."""
        return None if self.last is None else max(0, now_ms - self.last.ts)

    def state(self, now_ms: int) -> str:
        """``open`` while bets can be taken; else why not: ``halted`` (breaker critical),
        ``stale`` (the quote is too old), ``unpriced`` (too few ticks, or no cell worth
        offering)."""
        if self.breaker.state == State.CRITICAL:
            return "halted"
        if self._stale(now_ms):
            return "stale"
        if not self.table:
            return "unpriced"
        return "open"

    def _stale(self, now_ms: int) -> bool:
        return self.last is not None and now_ms - self.last.ts > self.cfg.max_quote_age_ms

    def update_breaker(self, now_ms: int) -> Transition | None:
        return self.breaker.update(
            now_ms, self.feed_age_ms(now_ms), self.book.liability, self.quote_age_ms(now_ms)
        )

    def quote(self, row: int, col: int, now_ms: int) -> Quote:
        """What this cell pays now and what that was priced on, or the rejection that applies."""
        if self.breaker.state == State.CRITICAL:
            raise Rejection(
                ErrorCode.MARKET_HALTED,
                f"{self.symbol} is not taking bets: {'; '.join(self.breaker.reasons)}",
                retry_after=1.0,
            )
        last = self.last
        if last is not None and self._stale(now_ms):
            raise Rejection(
                ErrorCode.QUOTE_STALE,
                f"{self.symbol}'s newest price is {now_ms - last.ts} ms old "
                f"(the limit is {self.cfg.max_quote_age_ms} ms)",
                retry_after=self.cfg.tick_interval_ms / 1000.0,
            )
        if not self.table:
            raise Rejection(
                ErrorCode.PRICING_UNAVAILABLE,
                f"{self.symbol} has too few ticks to estimate volatility "
                f"({min(len(self.ticks), self.cfg.min_ticks)} of {self.cfg.min_ticks})"
                if self.sigma is None
                else f"{self.symbol} offers no cell at this price and volatility",
            )
        if not column_open(self.cfg, col, now_ms):
            raise Rejection(
                ErrorCode.CELL_CLOSED,
                f"column {col} is not open: it must start between "
                f"{self.cfg.lock_ahead_ms} and {self.cfg.horizon_ms} ms from now",
            )
        priced = self.table.get((row, col))
        if priced is None:
            raise Rejection(ErrorCode.CELL_CLOSED, f"{cell_id(row, col)} is not offered")
        return priced

    def prune(self, now_ms: int) -> None:
        """Forget ticks no open bet and no open column can need any more."""
        cfg = self.cfg
        keep_from = now_ms - cfg.column_ms - cfg.grace_ms - cfg.horizon_ms
        columns = self.book.open_columns()
        if columns:
            keep_from = min(keep_from, window(cfg, columns[0])[0])
        while len(self.ticks) > 1 and self.ticks[0].ts < keep_from:
            self.ticks.popleft()

    def ticks_between(self, start: int, end: int) -> list[Tick]:
        return [t for t in self.ticks if start <= t.ts < end]

    def summary(self, now_ms: int) -> dict[str, Any]:
        cfg = self.cfg
        last = self.last
        return {
            "market": cfg.symbol,
            "price": None if last is None else last.price,
            "price_ts": None if last is None else last.ts,
            "seq": None if last is None else last.seq,
            "feed_age_ms": self.feed_age_ms(now_ms),
            "breaker": {
                "state": self.breaker.state,
                "name": self.breaker.state.label,
                "reasons": list(self.breaker.reasons),
            },
            "priced": bool(self.table),
            "quote_age_ms": self.quote_age_ms(now_ms),
            "volatility": None
            if self.sigma is None
            else {
                "estimate": self.sigma.estimate,
                "low": self.sigma.low,
                "high": self.sigma.high,
                "samples": self.sigma.samples,
                "alarm": self.sigma.alarm,
            },
            "grid": {
                "band": cfg.band,
                "column_ms": cfg.column_ms,
                "lock_ahead_ms": cfg.lock_ahead_ms,
                "horizon_ms": cfg.horizon_ms,
                "rows_each_side": cfg.grid_rows,
            },
            "limits": {
                "min_bet": cfg.min_bet,
                "max_bet": cfg.max_bet,
                "wallet_cell_cap": cfg.wallet_cell_cap,
                "min_multiplier": format_multiplier(cfg.min_multiplier),
                "max_multiplier": format_multiplier(cfg.max_multiplier),
            },
            "pricing": {
                "house_edge_bps": cfg.house_edge_bps,
                "lead_ms": cfg.lead,
                "max_quote_age_ms": cfg.max_quote_age_ms,
            },
        }

    def grid(self, now_ms: int) -> dict[str, Any]:
        """The cells open for betting now, with their multipliers."""
        columns = open_columns(self.cfg, now_ms)
        cells = [
            {
                "cell_id": cell_id(row, col),
                "row": row,
                "col": col,
                "low": row * self.cfg.band,
                "high": (row + 1) * self.cfg.band,
                "start_ms": col * self.cfg.column_ms,
                "end_ms": (col + 1) * self.cfg.column_ms,
                "multiplier": format_multiplier(q.multiplier),
            }
            for (row, col), q in sorted(self.table.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            if col in columns
        ]
        last = self.last
        return {
            "market": self.symbol,
            "price": None if last is None else last.price,
            "price_ts": None if last is None else last.ts,
            "breaker": self.breaker.state.label,
            "cells": cells
            if self.breaker.state != State.CRITICAL and not self._stale(now_ms)
            else [],
        }
