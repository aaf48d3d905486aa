"""Each market's configuration, read from ``TAPGATE_MARKET_*`` and validated at start-up.

A setting is looked up first as ``TAPGATE_MARKET_<SYMBOL>_<NAME>`` (the symbol with ``-``
as ``_``, e.g. ``TAPGATE_MARKET_BTC_USD_BAND``), then as ``TAPGATE_MARKET_<NAME>`` (every
market), then falls back to the default below. A bad value raises ConfigError naming the
variable that was read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from gateway.errors import ConfigError
from gateway.protocol import parse_multiplier
from gateway.wire import WALLET

__all__ = ["MarketConfig", "market_configs"]

T = TypeVar("T")
N = TypeVar("N", int, float)

EXTERNAL_LEAD_MS = 250


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """Grid geometry, pricing, risk limits, feed and breaker settings of one market."""

    symbol: str
    band: int = 20
    column_ms: int = 5_000
    lock_ahead_ms: int = 2_000
    horizon_ms: int = 60_000
    grid_rows: int = 10
    house_edge_bps: int = 300
    min_multiplier: int = 110
    max_multiplier: int = 10_000
    tick_interval_ms: int = 250
    vol_window: int = 57_600
    vol_short_window: int = 20
    min_ticks: int = 20
    lead_ms: int | None = None  # None: EXTERNAL_LEAD_MS for an external feed, 0 for sim
    max_quote_age_ms: int = 500
    feed: str = "sim"
    oracle_key: str | None = None
    sim_start_price: int = 100_000
    sim_volatility: float = 1.0
    sim_seed: int | None = None  # None: a fresh random seed at every start
    outlier_fraction: float = 0.05
    tick_future_ms: int = 500
    gap_limit_ms: int = 3_000
    grace_ms: int = 2_000
    min_bet: int = 1
    max_bet: int = 1_000_000
    wallet_cell_cap: int = 2_000_000
    cell_liability_cap: int = 50_000_000
    market_liability_cap: int = 1_000_000_000
    feed_warning_ms: int = 2_000
    feed_critical_ms: int = 10_000
    recover_ms: int = 5_000
    liability_warning: float = 0.8
    liability_critical: float = 0.98

    @property
    def env_symbol(self) -> str:
        return self.symbol.replace("-", "_")

    @property
    def lead(self) -> int:
        """How many ms before the gateway a player may see the price (docs/PRICING.md).

        Nobody sees a simulated price before the gateway makes it (its seed is random),
        so a sim feed's lead is 0 unless set."""
        if self.lead_ms is not None:
            return self.lead_ms
        return 0 if self.feed == "sim" else EXTERNAL_LEAD_MS

    @property
    def quote_lead_s(self) -> float:
        """The price move a quote holds against, in seconds: the lead plus the largest
        quote age; 0 when nobody can see the price before the gateway."""
        lead = self.lead
        return 0.0 if lead == 0 else (lead + self.max_quote_age_ms) / 1000.0


class _MarketEnv:
    """Reads one market's settings, naming the variable on error."""

    def __init__(self, env: Mapping[str, str], symbol: str) -> None:
        self.env = env
        self.prefix = f"TAPGATE_MARKET_{symbol.replace('-', '_')}_"

    def _raw(self, name: str) -> tuple[str, str] | None:
        for var in (self.prefix + name, "TAPGATE_MARKET_" + name):
            raw = self.env.get(var)
            if raw is not None and raw.strip():
                return var, raw.strip()
        return None

    def get(self, name: str, default: T, convert: Callable[[str, str], T]) -> T:
        found = self._raw(name)
        return default if found is None else convert(*found)


def _ranged(parse: Callable[[str], N], what: str, low: N, high: N) -> Callable[[str, str], N]:
    """A converter: ``parse`` the text, then check it lies in [low, high]."""

    def convert(var: str, raw: str) -> N:
        try:
            value = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{var}: {raw!r} is not {what}") from exc
        if not low <= value <= high:
            raise ConfigError(f"{var}: {value} is outside {low}..{high}")
        return value

    return convert


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    return _ranged(lambda raw: int(raw, 10), "an integer", low, high)


def _number(low: float, high: float) -> Callable[[str, str], float]:
    return _ranged(float, "a number", low, high)


def _multiplier(var: str, raw: str) -> int:
    try:
        value = parse_multiplier(raw)
    except ValueError as exc:
        raise ConfigError(f"{var}: {exc}") from exc
    if value < 101:
        raise ConfigError(f"{var}: must be at least 1.01")
    return value


def _feed(var: str, raw: str) -> str:
    if raw not in ("sim", "external"):
        raise ConfigError(f"{var}: {raw!r} is not sim or external")
    return raw


def _key(var: str, raw: str) -> str:
    if not WALLET.regex.fullmatch(raw):  # an Ed25519 public key, as a wallet is
        raise ConfigError(f"{var}: must be an Ed25519 public key as 64 lowercase hex digits")
    return raw


_BIG = 10**15


def _read(env: Mapping[str, str], symbol: str) -> MarketConfig:
    r = _MarketEnv(env, symbol)
    d = MarketConfig(symbol)
    ms = _integer(1, 86_400_000)
    money = _integer(1, _BIG)
    cfg = MarketConfig(
        symbol=symbol,
        band=r.get("BAND", d.band, _integer(1, _BIG)),
        column_ms=r.get("COLUMN_MS", d.column_ms, ms),
        lock_ahead_ms=r.get("LOCK_AHEAD_MS", d.lock_ahead_ms, ms),
        horizon_ms=r.get("HORIZON_MS", d.horizon_ms, ms),
        grid_rows=r.get("GRID_ROWS", d.grid_rows, _integer(0, 200)),
        house_edge_bps=r.get("HOUSE_EDGE_BPS", d.house_edge_bps, _integer(0, 9_900)),
        min_multiplier=r.get("MIN_MULTIPLIER", d.min_multiplier, _multiplier),
        max_multiplier=r.get("MAX_MULTIPLIER", d.max_multiplier, _multiplier),
        tick_interval_ms=r.get("TICK_INTERVAL_MS", d.tick_interval_ms, _integer(1, 3_600_000)),
        vol_window=r.get("VOL_WINDOW", d.vol_window, _integer(2, 1_000_000)),
        vol_short_window=r.get("VOL_SHORT_WINDOW", d.vol_short_window, _integer(5, 10_000)),
        min_ticks=r.get("MIN_TICKS", d.min_ticks, _integer(2, 100_000)),
        lead_ms=r.get("LEAD_MS", None, _integer(0, 60_000)),
        max_quote_age_ms=r.get("MAX_QUOTE_AGE_MS", d.max_quote_age_ms, ms),
        feed=r.get("FEED", d.feed, _feed),
        oracle_key=r.get("ORACLE_KEY", None, _key),
        sim_start_price=r.get("SIM_START_PRICE", d.sim_start_price, money),
        sim_volatility=r.get("SIM_VOLATILITY", d.sim_volatility, _number(0.0, 100.0)),
        sim_seed=r.get("SIM_SEED", None, _integer(0, 2**63)),
        outlier_fraction=r.get("OUTLIER_FRACTION", d.outlier_fraction, _number(0.0001, 10.0)),
        tick_future_ms=r.get("TICK_FUTURE_MS", d.tick_future_ms, _integer(0, 60_000)),
        gap_limit_ms=r.get("GAP_LIMIT_MS", d.gap_limit_ms, ms),
        grace_ms=r.get("GRACE_MS", d.grace_ms, _integer(0, 86_400_000)),
        min_bet=r.get("MIN_BET", d.min_bet, money),
        max_bet=r.get("MAX_BET", d.max_bet, money),
        wallet_cell_cap=r.get("WALLET_CELL_CAP", d.wallet_cell_cap, money),
        cell_liability_cap=r.get("CELL_LIABILITY_CAP", d.cell_liability_cap, money),
        market_liability_cap=r.get("MARKET_LIABILITY_CAP", d.market_liability_cap, money),
        feed_warning_ms=r.get("FEED_WARNING_MS", d.feed_warning_ms, ms),
        feed_critical_ms=r.get("FEED_CRITICAL_MS", d.feed_critical_ms, ms),
        recover_ms=r.get("RECOVER_MS", d.recover_ms, _integer(0, 86_400_000)),
        liability_warning=r.get("LIABILITY_WARNING", d.liability_warning, _number(0.0, 1.0)),
        liability_critical=r.get("LIABILITY_CRITICAL", d.liability_critical, _number(0.0, 1.0)),
    )
    _check(cfg, r.prefix)
    return cfg


def _check(c: MarketConfig, prefix: str) -> None:
    """Cross-setting rules; the message names the settings involved."""

    def fail(names: str, why: str) -> ConfigError:
        return ConfigError(f"{prefix}{names}: {why}")

    if c.lock_ahead_ms >= c.horizon_ms:
        raise fail("LOCK_AHEAD_MS / HORIZON_MS", "the lock-ahead must be below the horizon")
    if c.tick_future_ms >= c.lock_ahead_ms:
        raise fail(
            "TICK_FUTURE_MS / LOCK_AHEAD_MS",
            "an oracle could date ticks inside columns still open for bets",
        )
    if c.gap_limit_ms <= c.tick_interval_ms:
        raise fail("GAP_LIMIT_MS / TICK_INTERVAL_MS", "every window would count as a gap")
    if c.feed_warning_ms <= c.tick_interval_ms:
        raise fail("FEED_WARNING_MS / TICK_INTERVAL_MS", "the feed would warn between ticks")
    if c.min_bet > c.wallet_cell_cap:
        raise fail("MIN_BET / WALLET_CELL_CAP", "no bet would fit a wallet's cap on a cell")
    if c.cell_liability_cap > c.market_liability_cap:
        raise fail(
            "CELL_LIABILITY_CAP / MARKET_LIABILITY_CAP", "a cell may not hold more than its market"
        )
    if c.min_multiplier > c.max_multiplier:
        raise fail("MIN_MULTIPLIER / MAX_MULTIPLIER", "the minimum exceeds the maximum")
    if c.min_bet > c.max_bet:
        raise fail("MIN_BET / MAX_BET", "the minimum bet exceeds the maximum")
    if c.min_ticks > c.vol_window:
        raise fail("MIN_TICKS / VOL_WINDOW", "more ticks required than the window keeps")
    if 8 * c.vol_short_window > c.vol_window:
        raise fail(
            "VOL_SHORT_WINDOW / VOL_WINDOW", "the short window must be at most 1/8 of the long"
        )
    if c.max_quote_age_ms >= c.feed_critical_ms:
        raise fail(
            "MAX_QUOTE_AGE_MS / FEED_CRITICAL_MS",
            "quotes must go stale before the feed is critical",
        )
    if c.feed_warning_ms > c.feed_critical_ms:
        raise fail("FEED_WARNING_MS / FEED_CRITICAL_MS", "warning must come before critical")
    if c.liability_warning > c.liability_critical:
        raise fail("LIABILITY_WARNING / LIABILITY_CRITICAL", "warning must be below critical")
    if c.feed == "external" and c.oracle_key is None:
        raise fail("ORACLE_KEY", "an external feed needs the oracle's Ed25519 public key")
    if c.feed == "sim" and c.sim_volatility <= 0:
        raise fail("SIM_VOLATILITY", "the simulated feed needs a volatility above 0")


def market_configs(env: Mapping[str, str], symbols: tuple[str, ...]) -> tuple[MarketConfig, ...]:
    """Every configured market's settings; raise ConfigError on the first bad one."""
    return tuple(_read(env, symbol) for symbol in symbols)
