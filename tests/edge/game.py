"""A long simulated game, in process, with the gateway's own parts.

Every tick of a log-normal price (integer ticks every ``tick_interval_ms``) goes through
``Market.apply`` (the gateway's estimator), the grid is priced by ``price_grid``, one stake
goes on every offered cell, and each bet is settled by ``cell_outcome`` (the resolver's
rule) with the gateway's payout rounding (``amount * multiplier // 100``). Used by
``tests/edge/test_house_edge.py`` (the attractiveness check) and ``bench/edge.py`` (the
long run with its plot).

Two figures per class of cell. The **realised** edge counts what the settled bets paid;
its interval is wide, because every bet on one cell shares one outcome and far cells pay up
to 100x (a game of an hour has a few thousand independent cells). The **expected** edge
replaces each outcome by the bet's probability of winning under the true price process
(the model at the true sigma, without band or lead: the pricing check validates it against
the live rules), which removes the outcome noise; the realised edge must agree with it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from gateway.market.config import MarketConfig
from gateway.market.feed import Tick
from gateway.market.grid import band_bounds, column_open, window
from gateway.market.market import Market
from gateway.market.pricing import price_grid
from gateway.market.resolution import cell_outcome
from gateway.market.volatility import SigmaBand

__all__ = ["CLASSES", "Game", "Tally", "play", "price_path"]

CLASSES = ("near", "far", "clamped")
START_MS = 1_800_000_000_000
BLOCK_COLUMNS = 20  # batch-means blocks: columns this far apart are nearly independent


@dataclass
class Tally:
    """Stakes and payouts, with per-block sums for the interval."""

    stakes: int = 0
    payouts: int = 0
    expected: float = 0.0  # sum of payout x P(win) under the true process
    bets: int = 0
    blocks: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, block: int, stake: int, payout: int, expected: float) -> None:
        self.stakes += stake
        self.payouts += payout
        self.expected += expected
        self.bets += 1
        sums = self.blocks[block]
        sums[0] += stake
        sums[1] += payout

    def edge(self) -> float:
        return 1.0 - self.payouts / self.stakes if self.stakes else math.nan

    def expected_edge(self) -> float:
        return 1.0 - self.expected / self.stakes if self.stakes else math.nan

    def interval(self) -> tuple[float, float]:
        """95% interval of the realised edge by batch means over blocks of columns."""
        if len(self.blocks) < 2:
            return math.nan, math.nan
        ratio = self.payouts / self.stakes
        var = sum((p - ratio * s) ** 2 for s, p in self.blocks.values())
        half = 1.96 * math.sqrt(var) / self.stakes
        return self.edge() - half, self.edge() + half


@dataclass
class Game:
    cfg: MarketConfig
    classes: dict[str, Tally]
    unclamped: Tally
    # (row - price row at the bet, column - first open column) -> [stake, payout, expected]
    by_offset: dict[tuple[int, int], list[float]]
    ticks: int  # of play, after the warm-up


def price_path(rng: np.random.Generator, n: int, sigma: float, dt_ms: int, start: int) -> list[int]:
    """``n`` integer ticks of a driftless log-normal price from ``start``."""
    logs = np.cumsum(rng.standard_normal(n) * (sigma * math.sqrt(dt_ms / 1000.0)))
    return [int(p) for p in np.maximum(1, np.rint(start * np.exp(logs)))]


def play(
    cfg: MarketConfig,
    sigma: float,
    ticks: int,
    *,
    warmup: int,
    seed: int,
    stake: int = 100,
    start_price: int = 100_000,
) -> Game:
    """Warm the estimator up for ``warmup`` ticks, then play ``ticks`` ticks staking
    ``stake`` on every offered cell after each tick, and settle every bet."""
    rng = np.random.default_rng(seed)
    dt = cfg.tick_interval_ms
    prices = price_path(rng, warmup + ticks, sigma, dt, start_price)
    path = [Tick(i + 1, p, START_MS + 7 + dt * i) for i, p in enumerate(prices)]
    market = Market(cfg)
    # the truth: the model at the true sigma, nothing held back, every cell it can price
    truth_cfg = replace(cfg, lead_ms=0, min_multiplier=101, max_multiplier=10**12)
    exact = SigmaBand(sigma, sigma, sigma, 0, None)
    placed: dict[tuple[int, int], list[tuple[int, str, int, int, float]]] = defaultdict(list)
    for i, tick in enumerate(path):
        market.apply(tick, received_ms=tick.ts)
        if i < warmup:
            continue
        inputs = market.pricing_inputs()
        if inputs is None:
            continue
        first_open = -(-(tick.ts + cfg.lock_ahead_ms) // cfg.column_ms)
        centre = tick.price // cfg.band
        truth = price_grid(truth_cfg, tick.seq, tick.price, tick.ts, exact)
        for (row, col), quote in price_grid(cfg, *inputs).items():
            if not column_open(cfg, col, tick.ts):
                continue
            kind = (
                "clamped"
                if quote.multiplier == cfg.max_multiplier
                else "near"
                if quote.p_win >= 0.2
                else "far"
            )
            true_p = truth[(row, col)].p_win if (row, col) in truth else 1.0
            placed[(row, col)].append(
                (quote.multiplier, kind, row - centre, col - first_open, true_p)
            )
    return _settle(cfg, path, placed, stake, ticks)


def _settle(
    cfg: MarketConfig,
    path: list[Tick],
    placed: dict[tuple[int, int], list[tuple[int, str, int, int, float]]],
    stake: int,
    played: int,
) -> Game:
    times = [t.ts for t in path]
    classes = {kind: Tally() for kind in CLASSES}
    unclamped = Tally()
    by_offset: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    last_ts = times[-1]
    for (row, col), bets in placed.items():
        start, end = window(cfg, col)
        if end > last_ts:
            continue  # the path ends inside the window: not decided
        lo = int(np.searchsorted(times, start))
        hi = int(np.searchsorted(times, end))
        low, high = band_bounds(cfg, row)
        found = cell_outcome(
            [(t.ts, t.price) for t in path[lo:hi]],
            low,
            high,
            start,
            end,
            now_ms=end + cfg.grace_ms,
            grace_ms=cfg.grace_ms,
            gap_limit_ms=cfg.gap_limit_ms,
        )
        assert found is not None and found[0] != "void"
        won = found[0] == "won"
        block = col // BLOCK_COLUMNS
        for multiplier, kind, drow, dcol, true_p in bets:
            paid = stake * multiplier // 100
            payout = paid if won else 0
            classes[kind].add(block, stake, payout, paid * true_p)
            if kind != "clamped":
                unclamped.add(block, stake, payout, paid * true_p)
            sums = by_offset[(drow, dcol)]
            sums[0] += stake
            sums[1] += payout
            sums[2] += paid * true_p
    return Game(cfg, classes, unclamped, dict(by_offset), played)
