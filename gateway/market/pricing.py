"""Pricing: P(win) of a cell under a driftless log-normal price, and its multiplier.

docs/PRICING.md derives the formulas. In short: the log price is a Brownian motion
without drift, sampled by the feed every ``dt`` seconds. A cell [L, U) x window loses only
when every tick inside its window is below L or every one is at or above U (the
resolver's rule: a tick in the band, or two consecutive ticks on opposite sides of it,
wins). So P(win) = 1 - P(all below L) - P(all at or above U). Each side is the reflection
principle applied after the window's first tick, with the Broadie-Glasserman-Kou shift
of the barrier by beta*sigma*sqrt(dt) for the discrete ticks that follow it, integrated
over the first tick's exactly normal position with Gauss-Legendre quadrature.

No I/O, no clock: the table is computed from the last tick and its timestamp.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

from gateway.market.config import MarketConfig
from gateway.market.grid import band_bounds, open_columns, window

__all__ = [
    "BETA",
    "MIN_SIGMA",
    "estimate_volatility",
    "multiplier",
    "price_grid",
    "win_probability",
]

# -zeta(1/2) / sqrt(2*pi): the Broadie-Glasserman-Kou continuity correction.
BETA = 0.5825971579390106
# A flat feed would make every probability 0 or 1; below this floor the estimate is noise.
MIN_SIGMA = 1e-7

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_PANELS = 4
_NODES = 16
_REACH = 8.5  # standard deviations of the first tick's position worth integrating


@functools.cache
def _legendre(n: int) -> tuple[tuple[float, float], ...]:
    """Gauss-Legendre nodes and weights on [-1, 1] (Newton's method on P_n)."""
    out = []
    for i in range(1, n + 1):
        x = math.cos(math.pi * (i - 0.25) / (n + 0.5))
        dp = 1.0
        for _ in range(100):
            p0, p1 = 1.0, x
            for k in range(2, n + 1):
                p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
            dp = n * (x * p1 - p0) / (x * x - 1.0)
            step = p1 / dp
            x -= step
            if abs(step) < 1e-15:
                break
        out.append((x, 2.0 / ((1.0 - x * x) * dp * dp)))
    return tuple(out)


def _stays_below(a: float, s1: float, s2: float, shift: float) -> float:
    """P(X1 < a and the walk after X1 stays below a), X1 ~ N(0, s1^2).

    After the first tick the walk's maximum over variance s2^2 stays below a + shift with
    probability erf((a + shift - x1) / (s2 * sqrt 2)) (reflection principle).
    Substituting x1 = s1 * (A - v) gives the integral of phi(A - v) * erf(r (v + C) / sqrt 2)
    over v > 0, with A = a / s1, r = s1 / s2, C = shift / s1.
    """
    big_a = a / s1
    high = big_a + _REACH
    if high <= 0.0:
        return 0.0
    low = max(0.0, big_a - _REACH)
    k = s1 / s2 / _SQRT2
    c = shift / s1
    half = (high - low) / _PANELS / 2.0
    total = 0.0
    nodes = _legendre(_NODES)
    for panel in range(_PANELS):
        mid = low + (2 * panel + 1) * half
        for x, w in nodes:
            v = mid + half * x
            d = big_a - v
            total += w * math.exp(-0.5 * d * d) * math.erf(k * (v + c))
    return total * half * _INV_SQRT_2PI


def _side(a: float, first_s: float, n_ticks: int, sigma: float, dt_s: float) -> float:
    """P(all ``n_ticks`` window ticks < a) in log-price units, the first at ``first_s``."""
    s1 = sigma * math.sqrt(first_s)
    if n_ticks == 1:
        return 0.5 * (1.0 + math.erf(a / s1 / _SQRT2))
    s2 = sigma * math.sqrt((n_ticks - 1) * dt_s)
    return _stays_below(a, s1, s2, BETA * sigma * math.sqrt(dt_s))


def win_probability(
    price: int, low: int, high: int, first_s: float, n_ticks: int, sigma: float, dt_s: float
) -> float:
    """P(the cell [low, high) wins) given the last tick ``price``.

    The window holds ``n_ticks`` ticks ``dt_s`` apart, the first ``first_s`` seconds after
    the last tick.
    """
    if n_ticks <= 0:
        return 0.0
    below = 0.0 if low <= 0 else _side(math.log(low / price), first_s, n_ticks, sigma, dt_s)
    above = _side(-math.log(high / price), first_s, n_ticks, sigma, dt_s)
    return min(1.0, max(0.0, 1.0 - below - above))


def multiplier(p_win: float, house_edge_bps: int) -> int:
    """(1 - edge) / P(win) in hundredths, rounded down; unbounded (clamp it yourself)."""
    if p_win <= 1e-12:
        return 10**12
    return min(10**12, math.floor((10_000 - house_edge_bps) / (100.0 * p_win)))


def estimate_volatility(ticks: Iterable[tuple[int, int]]) -> float | None:
    """sigma per sqrt(second) of the log price, from (ts_ms, price) ticks; None if < 2."""
    total_sq = 0.0
    total_s = 0.0
    previous: tuple[int, int] | None = None
    for ts, price in ticks:
        if previous is not None and ts > previous[0]:
            step = math.log(price / previous[1])
            total_sq += step * step
            total_s += (ts - previous[0]) / 1000.0
        previous = (ts, price)
    if total_s <= 0.0:
        return None
    return max(MIN_SIGMA, math.sqrt(total_sq / total_s))


def _ticks_in(tick_ms: int, interval_ms: int, start_ms: int, end_ms: int) -> tuple[float, int]:
    """(seconds to the first expected tick in [start, end), number of expected ticks)."""
    first = -(-(start_ms - tick_ms) // interval_ms)
    last = -(-(end_ms - tick_ms) // interval_ms) - 1
    return first * interval_ms / 1000.0, last - first + 1


def price_grid(
    cfg: MarketConfig, price: int, tick_ms: int, sigma: float
) -> dict[tuple[int, int], tuple[int, float]]:
    """Every cell worth offering after a tick at ``tick_ms``: (row, col) -> (multiplier, P).

    Columns open now or within the next two tick intervals; rows within ``grid_rows`` of
    the price. A cell whose unclamped multiplier is below the minimum is left out (it is
    not offered); the others are clamped to the maximum.
    """
    out: dict[tuple[int, int], tuple[int, float]] = {}
    centre = price // cfg.band
    rows = range(max(0, centre - cfg.grid_rows), centre + cfg.grid_rows + 1)
    dt_s = cfg.tick_interval_ms / 1000.0
    columns = open_columns(cfg, tick_ms)
    extend = (tick_ms + cfg.horizon_ms + 2 * cfg.tick_interval_ms) // cfg.column_ms
    for col in range(columns.start, max(columns.stop, extend + 1)):
        start, end = window(cfg, col)
        first_s, n_ticks = _ticks_in(tick_ms, cfg.tick_interval_ms, start, end)
        for row in rows:
            low, high = band_bounds(cfg, row)
            p = win_probability(price, low, high, first_s, n_ticks, sigma, dt_s)
            m = multiplier(p, cfg.house_edge_bps)
            if m >= cfg.min_multiplier:
                out[(row, col)] = (min(m, cfg.max_multiplier), p)
    return out
