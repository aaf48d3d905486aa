"""What a player who sees the price before the gateway can win (docs/PRICING.md, "Lead").

    .venv/bin/python bench/lead.py

The player knows the price ``seen_ms`` after the gateway's last tick (a feed ``LEAD_MS``
behind the exchange, betting on a quote up to ``MAX_QUOTE_AGE_MS`` old). For each move of
the price in that time (41 quantiles of its normal distribution) the player's best
strategy is to stake one unit on every offered cell whose return given the move,
multiplier x P(win | move), exceeds 1 (P by the model from where the price went, which
tests/market validates against the live rules). Printed per configuration: how often any
cell is worth more than its stake, the player's expected profit per tick, and the return
of the best cell averaged over the moves (a player who must bet every tick).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.market.config import MarketConfig
from gateway.market.grid import band_bounds, column_open, window
from gateway.market.pricing import HALF_UNIT, price_grid, ticks_in, win_probability
from gateway.market.volatility import SigmaBand

SIGMA = 1.0 / math.sqrt(365.25 * 24 * 3600)
PRICE = 100_000
TICK_MS = 1_800_000_000_130
QUANTILES = [(i + 0.5) / 41 for i in range(41)]


def measure(cfg: MarketConfig, seen_ms: int) -> tuple[float, float, float]:
    band = SigmaBand(SIGMA, SIGMA, SIGMA, 0, None)  # the estimate exactly right
    grid = price_grid(cfg, 1, PRICE, TICK_MS, band)
    bet_ms = TICK_MS + seen_ms
    offered = {cell: q for cell, q in grid.items() if column_open(cfg, cell[1], bet_ms)}
    dt_s = cfg.tick_interval_ms / 1000
    any_cell = profit = best = 0.0
    for q in QUANTILES:
        moved = PRICE * math.exp(NormalDist().inv_cdf(q) * SIGMA * math.sqrt(seen_ms / 1000))
        returns = []
        for (row, col), quote in offered.items():
            low, high = band_bounds(cfg, row)
            # from the known price on (bet_ms sits on the tick grid)
            first_s, n = ticks_in(bet_ms, cfg.tick_interval_ms, *window(cfg, col))
            p = win_probability(
                moved, max(0.0, low - HALF_UNIT), high - HALF_UNIT, first_s, n, SIGMA, dt_s
            )
            returns.append(quote.multiplier / 100 * p)
        good = [r - 1 for r in returns if r > 1]
        any_cell += bool(good) / len(QUANTILES)
        profit += sum(good) / len(QUANTILES)
        best += max(returns) / len(QUANTILES)
    return any_cell, profit, best


def main() -> None:
    external = MarketConfig("EXT-USD", feed="external", oracle_key="0" * 64)
    rows = [
        ("no margin (LEAD_MS=0), player 250 ms ahead", replace(external, lead_ms=0), 250),
        ("shipped (LEAD_MS=250), player 250 ms ahead, fresh quote", external, 250),
        ("shipped, player 250 ms ahead on a 500 ms old quote", external, 750),
    ]
    print(f"{'configuration':<58} {'P(any cell > 1)':>16} {'profit/tick':>12} {'best cell':>10}")
    for name, cfg, seen in rows:
        any_cell, profit, best = measure(cfg, seen)
        print(f"{name:<58} {any_cell:>16.1%} {profit:>12.3f} {best:>10.3f}")


if __name__ == "__main__":
    main()
