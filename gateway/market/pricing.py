"""Pricing: P(win) of a cell under a driftless log-normal price, and its multiplier.

docs/PRICING.md derives the formulas. In short: the log price is a Brownian motion
without drift, sampled by the feed every ``dt`` seconds. A cell [L, U) x window loses only
when every tick inside its window is below L or every one is at or above U (the
resolver's rule: a tick in the band, or two consecutive ticks on opposite sides of it,
wins). So P(win) = 1 - P(all below L) - P(all at or above U). Each side integrates, over
the first window tick's exactly normal position, the probability that the discrete walk
of the remaining ticks stays on its side: computed exactly (a recursion on a grid, once
per window length) for walks of up to ``EXACT_STEPS`` ticks, and by the reflection
principle with the Broadie-Glasserman-Kou shift beyond, where that is accurate.

The live game differs from the model in three ways, and the quote holds against each:
- ticks are integers: a rounded tick is at or above ``low`` exactly when the price is at
  or above ``low - 0.5``, so the barriers sit half a unit below the band's bounds;
- sigma is estimated: the quote is the largest P(win) over the estimator's band
  (``gateway/market/volatility.py``);
- the quote is older than the price a fast player sees: the largest P(win) over a move of
  the price within LEAD_Z standard deviations over the lead plus the largest quote age,
  from where that player stands (the move made, the time it took gone).

The grid is priced in one vectorised pass (numpy). No I/O, no clock: the table is
computed from the last tick and its timestamp.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from gateway.market.config import MarketConfig
from gateway.market.grid import band_bounds, open_columns, window
from gateway.market.volatility import SigmaBand

__all__ = [
    "BETA",
    "EXACT_STEPS",
    "HALF_UNIT",
    "LEAD_Z",
    "Quote",
    "cell_probability",
    "ticks_in",
    "multiplier",
    "price_grid",
    "win_probability",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

# -zeta(1/2) / sqrt(2*pi): the Broadie-Glasserman-Kou continuity correction.
BETA = 0.5825971579390106
# The price move a quote holds against: the 97.5th percentile, the convention of the
# sigma band too.
LEAD_Z = 1.959963984540054
# A rounded tick is at or above a bound b exactly when the price is at or above b - 0.5.
HALF_UNIT = 0.5
# Walks of up to this many steps use the exact table; longer ones the shifted reflection,
# whose error falls with the number of steps (measured against the exact walk: up to 2.2%
# relative at 19 steps with the first tick 2 s away, 0.7% at 80 steps, for P > 0.005).
EXACT_STEPS = 80

_STEP = 0.025  # grid step of the survival tables, in per-tick standard deviations
_ERF_STEP = 0.0005
_KERNEL_REACH = 8.0
_REACH = 8.5  # standard deviations of the first tick's position worth integrating
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(24)
_PANELS = 3


class Quote(NamedTuple):
    """What one cell pays after one tick, and what it was computed from."""

    multiplier: int  # hundredths
    p_win: float  # the largest P(win) over the sigma band and the lead
    seq: int  # the tick the table was computed from
    sigma_low: float
    sigma_high: float


@functools.cache
def _survival(steps: int) -> Floats:
    """g(d) on d = 0, _STEP, ...: P(a Gaussian walk of ``steps`` unit steps started ``d``
    below a barrier never reaches it), by g_k(d) = integral over y > 0 of g_{k-1}(y)
    phi(y - d) dy from g_0 = 1 (trapezoid rule; beyond the grid g is 1 to 1e-15)."""
    size = int((_KERNEL_REACH + 8.0 * math.sqrt(steps)) / _STEP) + 1
    taps = int(_KERNEL_REACH / _STEP)
    offsets = np.arange(-taps, taps + 1) * _STEP
    kernel = np.exp(-0.5 * offsets * offsets) * (_STEP / math.sqrt(2.0 * math.pi))
    g = np.ones(size)
    for _ in range(steps):
        padded = np.concatenate([g, np.ones(taps)])
        padded[0] *= 0.5  # trapezoid: the grid starts at the barrier
        # g_new(d_i) = sum_j padded(y_j) kernel(y_j - d_i); np.convolve flips the kernel,
        # which is symmetric
        g = np.convolve(padded, kernel, mode="full")[taps : taps + size]
    return np.minimum(g, 1.0)


@functools.cache
def _erf_table() -> Floats:
    """erf(u / sqrt 2) on u = 0, _ERF_STEP, ... up to 12 (where it is 1 in doubles)."""
    u = np.arange(0.0, 12.0, _ERF_STEP)
    return np.asarray([math.erf(x / math.sqrt(2.0)) for x in u])


def _on_grid(x: Floats, step: float, table: Floats) -> Floats:
    """``np.interp(x, step * arange(table.size), table, right=1.0)`` for ``x`` >= 0: the
    nodes are evenly spaced, so each ``x`` finds its interval by division, not by search
    (the search was a third of a grid's pricing time)."""
    position = np.minimum(x / step, table.size)  # past the table: 1.0 below, any size
    index = np.minimum(position.astype(np.int64), table.size - 2)
    below = table[index]
    out = below + (table[index + 1] - below) * (position - index)
    return np.where(position > table.size - 1, 1.0, out)


def _stays(d: Floats, steps: int) -> Floats:
    """P(a walk of ``steps`` unit steps, started ``d`` >= 0 below a barrier, stays below)."""
    if steps == 0:
        return np.ones_like(d)
    if steps <= EXACT_STEPS:
        return _on_grid(d, _STEP, _survival(steps))
    return _on_grid((d + BETA) / math.sqrt(steps), _ERF_STEP, _erf_table())


def _stays_by_row(d: Floats, steps: Ints) -> Floats:
    """``_stays`` of each row of ``d`` with that row's number of steps (one table per
    distinct count: a grid has two or three)."""
    out = np.empty_like(d)
    for count in np.unique(steps):
        rows = steps == count
        out[rows] = _stays(d[rows], int(count))
    return out


def _below(a: Floats, first_s: Floats, n_ticks: Ints, sigma: Floats, dt_s: float) -> Floats:
    """P(all ``n_ticks`` window ticks < a) (log-price units), the first at ``first_s``;
    every argument but ``dt_s`` per cell.

    With the first tick at x ~ N(0, s1^2) and d = (a - x) / s (s = sigma sqrt(dt)), the
    probability is the integral over d > 0 of phi((a - s d) / s1) s / s1 * stays(d),
    by Gauss-Legendre in panels over the part of d where the normal weight lives."""
    centre = a / (sigma * math.sqrt(dt_s))
    width = np.maximum(np.sqrt(first_s / dt_s), 1e-9)  # s1 / s
    high = centre + _REACH * width
    low = np.maximum(0.0, centre - _REACH * width)
    high = np.maximum(high, low)
    half = (high - low) / (2 * _PANELS)
    total = np.zeros_like(a)
    for panel in range(_PANELS):
        mid = low + (2 * panel + 1) * half
        d = mid[:, None] + half[:, None] * _NODES[None, :]
        z = (centre[:, None] - d) / width[:, None]
        values = np.exp(-0.5 * z * z) * _stays_by_row(d, n_ticks - 1)
        total += half * (values @ _WEIGHTS)
    return np.clip(total / (width * math.sqrt(2.0 * math.pi)), 0.0, 1.0)


def _win(
    price: Floats,
    low: Floats,
    high: Floats,
    first_s: Floats,
    n_ticks: Ints,
    sigma: Floats,
    dt_s: float,
) -> Floats:
    below = np.zeros_like(price)
    has_low = low > 0
    if has_low.any():
        safe_low = np.where(has_low, low, price)
        below = np.where(
            has_low, _below(np.log(safe_low / price), first_s, n_ticks, sigma, dt_s), 0.0
        )
    above = _below(-np.log(high / price), first_s, n_ticks, sigma, dt_s)
    return np.clip(1.0 - below - above, 0.0, 1.0)


def win_probability(
    price: float,
    low: float,
    high: float,
    first_s: float,
    n_ticks: int,
    sigma: float,
    dt_s: float,
) -> float:
    """P(a continuous price sampled in the window is ever in [low, high)), from ``price``.

    The window holds ``n_ticks`` ticks ``dt_s`` apart, the first ``first_s`` seconds after
    the last tick. For integer ticks pass the barriers ``HALF_UNIT`` lower (see
    ``cell_probability``).
    """
    if n_ticks <= 0:
        return 0.0
    one = np.ones(1)
    ticks = np.full(1, n_ticks)
    p = _win(price * one, low * one, high * one, first_s * one, ticks, sigma * one, dt_s)
    return float(p[0])


def _band_sigmas(band: SigmaBand) -> list[float]:
    sigmas = [band.low, band.high]
    if band.high > 1.05 * band.low:  # wide: a cell's P can peak inside the band
        sigmas.append(math.sqrt(band.low * band.high))
    return sigmas


def _worst(
    price: int,
    lows: Floats,
    highs: Floats,
    first_s: Floats,
    n_ticks: Ints,
    band: SigmaBand,
    dt_s: float,
    lead_s: float,
) -> Floats:
    """The largest P(win) of integer-tick cells [lows, highs) over the band and the lead;
    ``first_s`` and ``n_ticks`` per cell.

    A player ``lead_s`` ahead knows where the price went in that time; from there the
    window's first tick is ``first_s - lead_s`` away. P(win) grows as the price nears a
    band's middle, so the worst move is the one towards it, clamped to LEAD_Z standard
    deviations at the top of the band; every sigma of the band is tried with it."""
    barrier_low = np.where(lows > 0, lows - HALF_UNIT, 0.0)
    barrier_high = highs - HALF_UNIT
    towards = np.log((np.maximum(barrier_low, HALF_UNIT) + barrier_high) / 2.0 / price)
    reach = LEAD_Z * band.high * math.sqrt(lead_s)
    moved = price * np.exp(np.clip(towards, -reach, reach))
    remaining_s = np.maximum(first_s - lead_s, 1e-6)
    best = np.zeros_like(towards)
    for sigma in _band_sigmas(band):
        sig = np.full_like(towards, sigma)
        p = _win(moved, barrier_low, barrier_high, remaining_s, n_ticks, sig, dt_s)
        best = np.maximum(best, p)
    return best


def cell_probability(
    price: int,
    low: int,
    high: int,
    first_s: float,
    n_ticks: int,
    band: SigmaBand,
    dt_s: float,
    lead_s: float,
) -> float:
    """The P(win) one cell is priced at: what ``price_grid`` computes for it."""
    if n_ticks <= 0:
        return 0.0
    lows = np.asarray([float(low)])
    highs = np.asarray([float(high)])
    first = np.asarray([first_s])
    ticks = np.asarray([n_ticks])
    return float(_worst(price, lows, highs, first, ticks, band, dt_s, lead_s)[0])


def multiplier(p_win: float, house_edge_bps: int) -> int:
    """(1 - edge) / P(win) in hundredths, rounded down; unbounded (clamp it yourself)."""
    if p_win <= 1e-12:
        return 10**12
    return min(10**12, math.floor((10_000 - house_edge_bps) / (100.0 * p_win)))


def ticks_in(tick_ms: int, interval_ms: int, start_ms: int, end_ms: int) -> tuple[float, int]:
    """(seconds to the first expected tick in [start, end), number of expected ticks)."""
    first = -(-(start_ms - tick_ms) // interval_ms)
    last = -(-(end_ms - tick_ms) // interval_ms) - 1
    return first * interval_ms / 1000.0, last - first + 1


def price_grid(
    cfg: MarketConfig, seq: int, price: int, tick_ms: int, band: SigmaBand
) -> dict[tuple[int, int], Quote]:
    """Every cell worth offering after tick ``seq`` at ``tick_ms``: (row, col) -> Quote.

    Columns open now or within the next two tick intervals; rows within ``grid_rows`` of
    the price. A cell whose unclamped multiplier is below the minimum is left out (it is
    not offered); the others are clamped to the maximum.
    """
    out: dict[tuple[int, int], Quote] = {}
    lead_s = cfg.quote_lead_s
    centre = price // cfg.band
    rows = range(max(0, centre - cfg.grid_rows), centre + cfg.grid_rows + 1)
    bounds = [band_bounds(cfg, row) for row in rows]
    lows = np.asarray([float(lo) for lo, _ in bounds])
    highs = np.asarray([float(hi) for _, hi in bounds])
    dt_s = cfg.tick_interval_ms / 1000.0
    columns = open_columns(cfg, tick_ms)
    extend = (tick_ms + cfg.horizon_ms + 2 * cfg.tick_interval_ms) // cfg.column_ms
    cols: list[int] = []
    firsts: list[float] = []
    counts: list[int] = []
    for col in range(columns.start, max(columns.stop, extend + 1)):
        start, end = window(cfg, col)
        first_s, n_ticks = ticks_in(tick_ms, cfg.tick_interval_ms, start, end)
        if n_ticks > 0:
            cols.append(col)
            firsts.append(first_s)
            counts.append(n_ticks)
    if not cols:
        return out
    # every cell in one pass: row-major blocks of len(rows) cells per column
    size = len(bounds)
    probabilities = _worst(
        price,
        np.tile(lows, len(cols)),
        np.tile(highs, len(cols)),
        np.repeat(np.asarray(firsts), size),
        np.repeat(np.asarray(counts, dtype=np.int64), size),
        band,
        dt_s,
        lead_s,
    ).tolist()
    cells = ((row, col) for col in cols for row in rows)
    for cell, p in zip(cells, probabilities, strict=True):
        m = multiplier(p, cfg.house_edge_bps)
        if m >= cfg.min_multiplier:
            out[cell] = Quote(min(m, cfg.max_multiplier), p, seq, band.low, band.high)
    return out
