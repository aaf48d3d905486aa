"""Volatility: a point estimate of sigma and the band of sigmas a quote must hold for.

Each committed tick adds one variance sample, ``log(p_i / p_{i-1})^2`` over ``t_i - t_{i-1}``
seconds. The estimator keeps two views of them, and two change tests:

- the **regime**: every sample since the last detected change, up to ``window`` samples.
  Its maximum-likelihood estimate ``sqrt(sum r^2 / sum dt)`` has a chi-square sampling
  distribution with ``n`` degrees of freedom, so the band ``[sigma_hat sqrt(n/q_hi),
  sigma_hat sqrt(n/q_lo)]`` (``q`` the 97.5% and 2.5% chi-square quantiles) contains the
  true sigma whenever the estimate lies between its own 2.5th and 97.5th percentiles;
- the **short window**: the last ``short`` samples. When their variance is outside the
  central 95% of what the regime predicts (an *alarm*), the short window's own band joins
  the regime's (a sudden rise raises the top, a fall lowers the bottom) for as long as the
  alarm lasts. When the variance of the last ``4 * short`` samples (an abrupt change) or of
  the last ``DRIFT_WINDOWS * short`` (a slow drift) is beyond what the rest of the regime
  allows at ``RESTART_ALPHA``, the regime restarts from the most likely change point among
  them: the old level no longer describes the market. While the regime is
  young (fewer than ``YOUNG * short`` samples: after a restart, and at start-up) the short
  window's band always joins it, so that old samples mixed into a new regime cannot hold
  the band back.

Pricing takes the largest P(win) over the band (docs/PRICING.md), which protects cells
that gain from a higher sigma (far from the price) and those that gain from a lower one
(the price's own band). No I/O, no clock.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["RESTART_ALPHA", "SigmaBand", "VolEstimator", "chi2_quantile"]

# Per side, per tick: how unlikely a restart must be without a change (~1 per 3 days of
# ticks at 4 per second), so that a steady market keeps its long, narrow regime.
RESTART_ALPHA = 1e-6
# Per side: the band's coverage, and the alarm level (the same 95% convention).
BAND_ALPHA = 0.025
# Per side: the short window's own band, a little wider. Right after a change, the first
# short window is all the estimator knows of the new level, and a band that covered it only
# exactly at the 97.5th percentile would leave no room for the rounding of integer ticks.
SHORT_BAND_ALPHA = 0.01
# A regime younger than this many short windows is joined by the short window's band.
YOUNG = 8
# The slow-drift test's window, in short windows (360 x 20 ticks: 30 minutes at 250 ms):
# over so many samples a 4% change of sigma is beyond RESTART_ALPHA.
DRIFT_WINDOWS = 360
# A flat feed would make every probability 0 or 1; below this floor the estimate is noise.
MIN_SIGMA = 1e-7


@functools.lru_cache(maxsize=1024)  # the regime's size changes every tick while it grows
def chi2_quantile(df: int, p: float) -> float:
    """The p-quantile of chi-square with ``df`` degrees of freedom (Wilson-Hilferty).

    Within 1% of the exact quantile for df >= 10 at p in [1e-6, 1 - 1e-6]
    (tests/market/test_volatility.py compares it with scipy's)."""
    z = NormalDist().inv_cdf(p)
    h = 2.0 / (9.0 * df)
    return df * max(1e-9, 1.0 - h + z * math.sqrt(h)) ** 3


@dataclass(frozen=True, slots=True)
class SigmaBand:
    """The estimate, the band a quote holds for, and what shaped it."""

    estimate: float
    low: float
    high: float
    samples: int  # variance samples in the regime
    alarm: str | None  # "up" or "down" while the short window disagrees with the regime


class _Window:
    """Running sums of the newest ``size`` (r^2, dt) samples."""

    __slots__ = ("dt", "items", "since", "size", "sq")

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[tuple[float, float]] = deque()
        self.sq = 0.0
        self.dt = 0.0
        self.since = 0  # samples added since the sums were last computed from scratch

    def add(self, sq: float, dt: float) -> None:
        self.items.append((sq, dt))
        self.sq += sq
        self.dt += dt
        if len(self.items) > self.size:
            old_sq, old_dt = self.items.popleft()
            self.sq -= old_sq
            self.dt -= old_dt
        self.since += 1
        if self.since >= self.size:  # from scratch now and then: rounding never accumulates
            self._resum()

    def _resum(self) -> None:
        self.since = 0
        self.sq = math.fsum(s for s, _ in self.items)
        self.dt = math.fsum(d for _, d in self.items)

    def keep_last(self, n: int) -> None:
        while len(self.items) > n:
            self.items.popleft()
        self._resum()

    def change_point(self, low: int, high: int) -> int:
        """How many of the newest samples most likely follow a change of variance: the k
        in [low, high] that maximises the likelihood ratio of two variances against one."""
        items = list(self.items)
        n = len(items)
        total_sq, total_dt = self.sq, self.dt
        best, best_k = -math.inf, low
        tail_sq = tail_dt = 0.0
        for k in range(1, min(high, n - 1) + 1):
            sq, dt = items[n - k]
            tail_sq += sq
            tail_dt += dt
            if k < low:
                continue
            head_sq, head_dt = total_sq - tail_sq, total_dt - tail_dt
            if min(tail_sq, head_sq, tail_dt, head_dt) <= 0.0:
                continue
            # the count-weighted log-likelihood of the split (constants cancel)
            score = -k * math.log(tail_sq / tail_dt) - (n - k) * math.log(head_sq / head_dt)
            if score > best:
                best, best_k = score, k
        return best_k

    def variance(self) -> float | None:
        # a running sum of squares can end a hair below zero once the samples left are all
        # 0 (a price that stopped moving): sqrt of it would fail the market (math domain)
        return max(self.sq, 0.0) / self.dt if self.dt > 0.0 and self.items else None

    def __len__(self) -> int:
        return len(self.items)


class VolEstimator:
    """sigma per sqrt(second) of the log price, with its band, updated tick by tick."""

    def __init__(self, window: int, short: int, min_samples: int) -> None:
        self.short = short
        self.min_samples = min_samples
        self._regime = _Window(window)
        self._short = _Window(short)
        # change tests, shortest first; one longer than half the regime could never run
        self._tests = [_Window(4 * short)]
        if 2 * DRIFT_WINDOWS * short <= window:
            self._tests.append(_Window(DRIFT_WINDOWS * short))
        self._last: tuple[int, int] | None = None
        self.restarts = 0

    def add(self, ts_ms: int, price: int) -> None:
        """One committed tick, in order."""
        last = self._last
        self._last = (ts_ms, price)
        if last is None or ts_ms <= last[0]:
            return
        step = math.log(price / last[1])
        sample = (step * step, (ts_ms - last[0]) / 1000.0)
        for w in (self._regime, self._short, *self._tests):
            w.add(*sample)
        for recent in self._tests:
            if self._changed(recent):
                self._regime.keep_last(self._regime.change_point(self.short, len(recent)))
                self.restarts += 1
                break

    def _changed(self, recent: _Window) -> bool:
        """Is the variance of ``recent`` beyond what the regime before it allows?"""
        n = len(recent)
        if n < recent.size or len(self._regime) < 2 * n:
            return False
        before = (self._regime.sq - recent.sq) / (self._regime.dt - recent.dt)
        ratio = (recent.variance() or 0.0) / before if before > 0 else math.inf
        return ratio > chi2_quantile(n, 1 - RESTART_ALPHA) / n or ratio < (
            chi2_quantile(n, RESTART_ALPHA) / n
        )

    def band(self) -> SigmaBand | None:
        """The band to price with, or None until ``min_samples`` samples are in."""
        regime = self._regime
        n = len(regime)
        variance = regime.variance()
        if n < self.min_samples or variance is None:
            return None
        sigma = max(MIN_SIGMA, math.sqrt(variance))
        low = sigma * math.sqrt(n / chi2_quantile(n, 1 - BAND_ALPHA))
        high = sigma * math.sqrt(n / chi2_quantile(n, BAND_ALPHA))
        alarm = None
        m = len(self._short)
        short = self._short.variance()
        if short is not None and m == self.short and n > m:
            ratio = short / variance
            s = max(MIN_SIGMA, math.sqrt(short))
            young = n < YOUNG * m
            if young or ratio > chi2_quantile(m, 1 - BAND_ALPHA) / m:
                high = max(high, s * math.sqrt(m / chi2_quantile(m, SHORT_BAND_ALPHA)))
                alarm = None if young else "up"
            if young or ratio < chi2_quantile(m, BAND_ALPHA) / m:
                low = min(low, s * math.sqrt(m / chi2_quantile(m, 1 - SHORT_BAND_ALPHA)))
                alarm = None if young else "down"
        return SigmaBand(sigma, low, high, n, alarm)
