"""The pricing check: analytic P(win) against a Monte-Carlo of the resolver's own rule."""

from __future__ import annotations

import math

import numpy as np

from gateway.market.config import MarketConfig
from gateway.market.grid import band_bounds, window
from gateway.market.pricing import price_grid, win_probability
from gateway.market.resolution import first_win

PATHS = 200_000
SEED = 20261122
SIGMA = 0.002  # per sqrt(second) of the log price
CFG = MarketConfig(
    "TEST-USD",
    band=100,
    column_ms=250,
    lock_ahead_ms=100,
    horizon_ms=2_500,
    tick_interval_ms=50,
    house_edge_bps=300,
    min_multiplier=101,
    max_multiplier=100_000,
)
PRICE = 100_037
NOW_MS = 1_800_000_000_037  # the last tick; deliberately not on a column edge
ROWS = (-6, -3, -1, 0, 1, 2, 3, 6)
COLUMNS = (1, 3, 9)


def _paths(ticks: int) -> np.ndarray:
    """Integer tick prices of PATHS driftless log-normal paths, one tick every dt."""
    rng = np.random.default_rng(SEED)
    sd = SIGMA * math.sqrt(CFG.tick_interval_ms / 1000)
    logs = np.cumsum(rng.normal(0.0, sd, size=(PATHS, ticks)), axis=1)
    return np.rint(PRICE * np.exp(logs)).astype(np.int64)


def test_analytic_win_probability_matches_simulation_of_the_resolver_rule() -> None:
    """On 24 cells near and far, analytic and simulated P(win) agree within 0.01."""
    dt = CFG.tick_interval_ms
    first_col = -(-NOW_MS // CFG.column_ms)
    horizon_ticks = (window(CFG, first_col + max(COLUMNS))[1] - NOW_MS) // dt + 1
    prices = _paths(horizon_ticks)
    tick_ms = NOW_MS + dt * np.arange(1, horizon_ticks + 1)
    centre = PRICE // CFG.band
    compared = []
    for dcol in COLUMNS:
        col = first_col + dcol
        start, end = window(CFG, col)
        inside = np.nonzero((tick_ms >= start) & (tick_ms < end))[0]
        sample = prices[:, inside[0] : inside[-1] + 1].tolist()
        first_s = (int(tick_ms[inside[0]]) - NOW_MS) / 1000
        for drow in ROWS:
            low, high = band_bounds(CFG, centre + drow)
            simulated = sum(first_win(p, low, high) is not None for p in sample) / PATHS
            analytic = win_probability(PRICE, low, high, first_s, len(inside), SIGMA, dt / 1000)
            compared.append((drow, dcol, analytic, simulated))
    assert len(compared) >= 20
    worst = max(compared, key=lambda c: abs(c[2] - c[3]))
    assert abs(worst[2] - worst[3]) < 0.01, worst
    # the check is not vacuous: it spans unlikely and likely cells
    assert min(c[3] for c in compared) < 0.05 < 0.3 < max(c[3] for c in compared)


def test_grid_multipliers_keep_the_house_edge() -> None:
    """Every offered multiplier pays at most (1 - edge) / P(win) and at least the minimum."""
    grid = price_grid(CFG, PRICE, NOW_MS, SIGMA)
    assert grid
    for (row, col), (m, p) in grid.items():
        assert CFG.min_multiplier <= m <= CFG.max_multiplier
        assert m / 100 * p <= 1 - CFG.house_edge_bps / 10_000 + 1e-12, (row, col, m, p)
