from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings, unknown_settings


def test_defaults() -> None:
    """With no variables set, the documented defaults apply."""
    s = Settings.from_env({})
    assert s.data_dir == Path("var")
    assert (s.address_rate, s.address_burst, s.wallet_rate, s.wallet_burst) == (100, 200, 10, 20)
    assert s.receive_window_ms == 5000 and s.future_skew_ms == 1000
    assert s.synchronous == "FULL"
    assert s.admin_token is None
    assert s.trusted_proxies == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TAPGATE_BATCH_MAX", "0"),
        ("TAPGATE_BATCH_MAX", "lots"),
        ("TAPGATE_WALLET_RATE", "fast"),
        ("TAPGATE_SYNCHRONOUS", "OFF"),
        ("TAPGATE_MARKETS", "btc"),
        ("TAPGATE_MARKETS", "BTC-USD,BTC-USD"),
        ("TAPGATE_MARKET_MIN_MULTIPLIER", "1.0"),
        ("TAPGATE_MARKET_BTC_USD_MAX_MULTIPLIER", "0.90"),
        ("TAPGATE_MARKET_BAND", "0"),
        ("TAPGATE_MARKET_ETH_USD_FEED", "kraken"),
        ("TAPGATE_MARKET_ORACLE_KEY", "not-a-key"),
        ("TAPGATE_MARKET_HOUSE_EDGE_BPS", "-1"),
        ("TAPGATE_MARKET_SIM_VOLATILITY", "high"),
        ("TAPGATE_CORS_ORIGINS", "*"),
        ("TAPGATE_TRUSTED_PROXIES", "10.0.0.0/8,nonsense"),
        ("TAPGATE_ADMIN_TOKEN", "short"),
        ("TAPGATE_REQUIRE_EXTENSIONS", "maybe"),
        ("TAPGATE_LOG_LEVEL", "loud"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    """Each bad value fails with a message naming its variable."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TAPGATE_MARKET_LOCK_AHEAD_MS": "70000"}, "LOCK_AHEAD_MS / HORIZON_MS"),
        ({"TAPGATE_MARKET_BTC_USD_FEED": "external"}, "TAPGATE_MARKET_BTC_USD_ORACLE_KEY"),
        ({"TAPGATE_MARKET_MIN_BET": "10", "TAPGATE_MARKET_MAX_BET": "5"}, "MIN_BET / MAX_BET"),
        ({"TAPGATE_MARKET_MIN_TICKS": "500", "TAPGATE_MARKET_VOL_WINDOW": "400"}, "MIN_TICKS"),
        ({"TAPGATE_MARKET_VOL_WINDOW": "100"}, "VOL_SHORT_WINDOW / VOL_WINDOW"),
        ({"TAPGATE_MARKET_MAX_QUOTE_AGE_MS": "20000"}, "MAX_QUOTE_AGE_MS / FEED_CRITICAL_MS"),
        ({"TAPGATE_MARKET_MIN_MULTIPLIER": "5.00", "TAPGATE_MARKET_MAX_MULTIPLIER": "2.00"}, "MIN"),
        ({"TAPGATE_MARKET_TICK_FUTURE_MS": "2000"}, "TICK_FUTURE_MS / LOCK_AHEAD_MS"),
        ({"TAPGATE_MARKET_GAP_LIMIT_MS": "250"}, "GAP_LIMIT_MS / TICK_INTERVAL_MS"),
        ({"TAPGATE_MARKET_FEED_WARNING_MS": "200"}, "FEED_WARNING_MS / TICK_INTERVAL_MS"),
        ({"TAPGATE_MARKET_MIN_BET": "3000000"}, "MIN_BET / WALLET_CELL_CAP"),
        ({"TAPGATE_MARKET_CELL_LIABILITY_CAP": "2000000000"}, "CELL_LIABILITY_CAP / MARKET"),
    ],
)
def test_inconsistent_market_settings_fail_fast(env: dict[str, str], named: str) -> None:
    """Settings that contradict each other name the market's variables."""
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_market_settings_per_symbol_override_the_shared_ones() -> None:
    """TAPGATE_MARKET_<SYMBOL>_<NAME> beats TAPGATE_MARKET_<NAME>, which beats the default."""
    settings = Settings.from_env({"TAPGATE_MARKET_BAND": "50", "TAPGATE_MARKET_ETH_USD_BAND": "7"})
    bands = {m.symbol: m.band for m in settings.markets}
    assert bands == {"BTC-USD": 50, "ETH-USD": 7}
    assert settings.markets[0].column_ms == 5000


def test_token_from_file(tmp_path: Path) -> None:
    """TAPGATE_ADMIN_TOKEN_FILE is read (for systemd credentials); both at once is an error."""
    path = tmp_path / "token"
    path.write_text("a-long-enough-token-value\n")
    assert Settings.from_env({"TAPGATE_ADMIN_TOKEN_FILE": str(path)}).admin_token == (
        "a-long-enough-token-value"
    )
    with pytest.raises(ConfigError):
        Settings.from_env({"TAPGATE_ADMIN_TOKEN_FILE": str(path), "TAPGATE_ADMIN_TOKEN": "x" * 20})
    with pytest.raises(ConfigError, match="TAPGATE_ADMIN_TOKEN_FILE"):
        Settings.from_env({"TAPGATE_ADMIN_TOKEN_FILE": str(tmp_path / "missing")})


def test_unknown_settings_are_named_with_the_closest_known_one() -> None:
    """A misspelled TAPGATE_* variable is found, with its likely meaning; read ones are not."""
    env = {
        "TAPGATE_MARKET_HOUSE_EDGE_BP": "100",
        "TAPGATE_WALLET_RATE": "5",
        "TAPGATE_MARKET_BTC_USD_BAND": "50",
        "TAPGATE_NO_EXTENSIONS": "1",
        "TAPGATE_SOMETHING_ELSE": "x",
        "PATH": "/usr/bin",
    }
    assert unknown_settings(env) == [
        ("TAPGATE_MARKET_HOUSE_EDGE_BP", "TAPGATE_MARKET_HOUSE_EDGE_BPS"),
        ("TAPGATE_SOMETHING_ELSE", None),
    ]


def test_every_setting_is_documented() -> None:
    """Each variable the settings read is in tapgate.env.example or OPERATIONS.md (per-market
    overrides as the TAPGATE_MARKET_<SYMBOL>_<NAME> pattern)."""
    from gateway.config import _Recording

    recording = _Recording({})
    Settings.from_env(recording)
    root = Path(__file__).resolve().parent.parent
    docs = (root / "systemd" / "tapgate.env.example").read_text()
    docs += (root / "docs" / "OPERATIONS.md").read_text()
    general = {n for n in recording.seen if "_BTC_USD_" not in n and "_ETH_USD_" not in n}
    assert len(general) > 60
    assert sorted(n for n in general if n not in docs) == []


def test_every_relation_between_settings_is_documented() -> None:
    """Each pair the start-up check names is listed in OPERATIONS.md's relations."""
    root = Path(__file__).resolve().parent.parent
    source = (root / "gateway" / "market" / "config.py").read_text()
    pairs = set(re.findall(r'fail\(\s*"([A-Z_]+ / [A-Z_]+)"', source))
    assert len(pairs) >= 12
    docs = (root / "docs" / "OPERATIONS.md").read_text()
    assert sorted(p for p in pairs if f"`{p.replace(' / ', '` / `')}`" not in docs) == []
