from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings


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
        ("TAPGATE_FIXED_MULTIPLIER", "1.0"),
        ("TAPGATE_FIXED_MULTIPLIER", "0.90"),
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
