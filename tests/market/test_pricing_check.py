"""The pricing check: the model's P(win) against a Monte-Carlo of the live rules.

Integer ticks every dt (rounded from a log-normal path), the resolver's win rule
(tests/market/montecarlo.py, differential-tested against ``first_win``), cells near and
far in near and far columns. Each cell's model P must be within 3 standard errors or 2%
relative of the simulated P, whichever is larger.
"""

from __future__ import annotations

import math

import numpy as np

from gateway.market.config import MarketConfig
from gateway.market.grid import band_bounds, window
from gateway.market.pricing import (
    HALF_UNIT,
    cell_probability,
    multiplier,
    price_grid,
    ticks_in,
    win_probability,
)
from gateway.market.volatility import SigmaBand
from tests.market.montecarlo import Cell, cell_wins, tick_paths

PATHS = 200_000
SEED = 20261129
SIGMA = 1.0 / math.sqrt(365.25 * 24 * 3600)  # the default simulated market
CFG = MarketConfig("TEST-USD", min_multiplier=101, max_multiplier=100_000)
PRICE = 100_007
NOW_MS = 1_800_000_000_130  # the last tick; deliberately not on a column edge
ROWS = (-7, -4, -2, -1, 0, 1, 2, 4, 7)
COLUMNS = (0, 1, 3, 11)
EXACT = SigmaBand(SIGMA, SIGMA, SIGMA, 10**6, None)


def _model(row: int, col: int) -> float:
    low, high = band_bounds(CFG, row)
    first_s, n = ticks_in(NOW_MS, CFG.tick_interval_ms, *window(CFG, col))
    dt_s = CFG.tick_interval_ms / 1000
    return win_probability(PRICE, low - HALF_UNIT, high - HALF_UNIT, first_s, n, SIGMA, dt_s)


def test_model_win_probability_matches_simulation_of_the_live_rules() -> None:
    """On 36 cells near and far, model and simulated P(win) agree within 3 SE or 2%."""
    first_col = -(-(NOW_MS + CFG.lock_ahead_ms) // CFG.column_ms)
    cells = [Cell(PRICE // CFG.band + dr, first_col + dc) for dr in ROWS for dc in COLUMNS]
    end = window(CFG, first_col + max(COLUMNS))[1]
    ticks = (end - NOW_MS) // CFG.tick_interval_ms + 1
    normals = np.random.default_rng(SEED).standard_normal((PATHS, ticks))
    paths = tick_paths(normals, PRICE, SIGMA, CFG.tick_interval_ms, NOW_MS)
    compared = []
    for cell, wins in cell_wins(CFG, paths, cells):
        simulated = wins / PATHS
        se = math.sqrt(max(simulated * (1 - simulated), 1e-12) / PATHS)
        model = _model(cell.row, cell.col)
        allowed = max(3 * se, 0.02 * simulated)
        compared.append((abs(model - simulated) / allowed, cell, model, simulated))
    worst = max(compared, key=lambda c: c[0])
    assert worst[0] <= 1.0, worst
    # the check is not vacuous: it spans unlikely and likely cells
    probabilities = [c[3] for c in compared]
    assert min(probabilities) < 0.02 and max(probabilities) > 0.4


def test_grid_multipliers_keep_the_house_edge_on_their_own_probability() -> None:
    """Every offered multiplier times the P it was priced on is at most 1 - edge."""
    grid = price_grid(CFG, 9, PRICE, NOW_MS, EXACT)
    assert len(grid) > 100
    for cell, quote in grid.items():
        assert CFG.min_multiplier <= quote.multiplier <= CFG.max_multiplier
        assert quote.multiplier / 100 * quote.p_win <= 1 - CFG.house_edge_bps / 10_000, cell
        assert quote.multiplier == min(
            CFG.max_multiplier, multiplier(quote.p_win, CFG.house_edge_bps)
        )
        assert (quote.seq, quote.sigma_low, quote.sigma_high) == (9, SIGMA, SIGMA)


def test_grid_prices_every_cell_as_the_one_cell_quote_does() -> None:
    """The grid's one vectorised pass gives each cell the P that ``cell_probability``
    computes for that cell alone (same row, column, band and lead)."""
    wide = SigmaBand(SIGMA, 0.8 * SIGMA, 1.3 * SIGMA, 10**6, None)
    dt_s = CFG.tick_interval_ms / 1000
    for now_ms in (NOW_MS, NOW_MS + 2_870):  # the first column whole, then nearly over
        grid = price_grid(CFG, 3, PRICE, now_ms, wide)
        assert len({col for _, col in grid}) > 5 and len({row for row, _ in grid}) > 5
        for (row, col), quote in grid.items():
            low, high = band_bounds(CFG, row)
            first_s, n = ticks_in(now_ms, CFG.tick_interval_ms, *window(CFG, col))
            alone = cell_probability(PRICE, low, high, first_s, n, wide, dt_s, CFG.quote_lead_s)
            assert math.isclose(quote.p_win, alone, rel_tol=1e-12), (row, col)
