"""Price ticks: the oracle's signed format, validation, and the simulated feed.

A feed is anything that produces ticks ``(seq, price, ts_ms)`` for a market:
- the built-in ``SimulatedFeed`` (seeded geometric Brownian motion without drift in the
  log price, the default so that ``make run`` shows a live market);
- an external feeder process that follows a real exchange and posts ticks signed with the
  oracle key to ``POST /admin/markets/<market>/ticks`` (docs/API.md, "Writing a feeder").

Every tick, from either source, passes ``TickRules.check`` and is committed through the
writer before the market uses it.
"""

from __future__ import annotations

import math
import random
import secrets
from dataclasses import dataclass

from gateway.errors import ErrorCode, Rejection
from gateway.market.config import MarketConfig

__all__ = ["SimulatedFeed", "Tick", "TickRules"]


@dataclass(frozen=True, slots=True)
class Tick:
    seq: int
    price: int
    ts: int


def _refuse(message: str) -> Rejection:
    return Rejection(ErrorCode.TICK_REJECTED, message)


class TickRules:
    """Validates a market's ticks against the last accepted one."""

    def __init__(self, cfg: MarketConfig, last: Tick | None) -> None:
        self.cfg = cfg
        self.last = last

    def check(self, tick: Tick, now_ms: int) -> None:
        """Raise ``tick_rejected`` unless the tick may follow the last accepted tick."""
        if tick.price <= 0:
            raise _refuse(f"seq {tick.seq}: price must be a positive integer")
        if tick.ts > now_ms + self.cfg.tick_future_ms:
            raise _refuse(f"seq {tick.seq}: timestamp {tick.ts} is in the future ({now_ms})")
        last = self.last
        if last is None:
            return
        if tick.seq <= last.seq:
            raise _refuse(f"seq {tick.seq}: must be above the last accepted seq {last.seq}")
        if tick.ts <= last.ts:
            raise _refuse(f"seq {tick.seq}: timestamp must be above the last one ({last.ts})")
        if abs(tick.price - last.price) > self.cfg.outlier_fraction * last.price:
            raise _refuse(
                f"seq {tick.seq}: price {tick.price} jumps more than "
                f"{self.cfg.outlier_fraction:.2%} from {last.price} (outlier)"
            )

    def accepted(self, tick: Tick) -> None:
        self.last = tick


class SimulatedFeed:
    """Seeded GBM ticks: log price steps N(0, sigma^2 dt), sigma from annual volatility."""

    SECONDS_PER_YEAR = 365.25 * 24 * 3600

    def __init__(self, cfg: MarketConfig, last: Tick | None) -> None:
        self.cfg = cfg
        self.seq = 0 if last is None else last.seq
        self.price = cfg.sim_start_price if last is None else last.price
        # A path known in advance is a path players can bet on: the seed is fresh at every
        # start unless TAPGATE_MARKET_SIM_SEED fixes it (tests, reproducible demos), and
        # then the same seed continues the same path after a restart from the last tick.
        root = secrets.randbits(64) if cfg.sim_seed is None else cfg.sim_seed
        seed = f"{root}:{cfg.symbol}:{self.seq}"
        # the seed is the secret; the generator only spreads it into Gaussian steps
        self._rng = random.Random(seed)  # noqa: S311 # nosec B311
        dt = cfg.tick_interval_ms / 1000.0
        self._step = cfg.sim_volatility / math.sqrt(self.SECONDS_PER_YEAR) * math.sqrt(dt)

    def next(self, now_ms: int) -> Tick:
        self.seq += 1
        step = self._rng.gauss(0.0, self._step)
        self.price = max(1, round(self.price * math.exp(step)))
        return Tick(self.seq, self.price, now_ms)
