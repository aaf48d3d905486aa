"""Settings from ``TAPGATE_*`` environment variables, validated once at start-up.

Every setting is documented in ``systemd/tapgate.env.example`` and docs/OPERATIONS.md.
A bad value raises ``ConfigError`` naming the variable, so start-up fails fast.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.market.config import MarketConfig, market_configs

__all__ = [
    "DEV_ADMIN_FILE",
    "ConfigError",
    "MarketConfig",
    "Network",
    "Settings",
    "admin_token",
    "unknown_settings",
]

# TAPGATE_* variables read outside Settings: the fastpath selector and the CLI's commands.
_READ_ELSEWHERE = frozenset(
    {
        "TAPGATE_NO_EXTENSIONS",
        "TAPGATE_BACKUP_DIR",
        "TAPGATE_ADMIN_TOKEN",
        "TAPGATE_ADMIN_TOKEN_FILE",
    }
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MARKET_RE = re.compile(r"^[A-Z0-9]{1,12}-[A-Z0-9]{1,12}$")
_ADMIN_ALLOW = "127.0.0.0/8,::1"  # loopback only


def _networks(name: str, raw: str) -> tuple[Network, ...]:
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{name}: {part!r} is not an IP address or network") from exc
    return tuple(out)


class _Reader:
    """Reads typed values from an environment mapping, naming the variable on error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, default).strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw.strip(), 10)
        except ValueError as exc:
            raise ConfigError(f"{name}: {raw!r} is not an integer") from exc
        if not low <= value <= high:
            raise ConfigError(f"{name}: {value} is outside {low}..{high}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw.strip())
        except ValueError as exc:
            raise ConfigError(f"{name}: {raw!r} is not a number") from exc
        if not low <= value <= high:
            raise ConfigError(f"{name}: {value} is outside {low}..{high}")
        return value

    def typed(self, name: str, default: Any, low: float | None, high: float | None) -> Any:
        """The value of ``name`` as the type of ``default`` (bool, int or float)."""
        if isinstance(default, bool):
            return self.flag(name, default)
        if low is None or high is None:
            raise TypeError(f"{name}: a numeric setting() needs its bounds")
        if isinstance(default, int):
            return self.integer(name, default, int(low), int(high))
        return self.number(name, default, low, high)

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: {raw!r} is not a boolean (1/0, true/false)")


def setting(default: Any, low: float | None = None, high: float | None = None) -> Any:
    """A setting read from ``TAPGATE_<NAME>``: its default and, for numbers, its bounds.
    The default is written here once; ``from_env`` reads the rest from the annotations."""
    return field(default=default, metadata={"env": True, "bounds": (low, high)})


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment (``TAPGATE_`` + the field's name
    in capitals; the fields without ``setting()`` have their own parsing in ``from_env``)."""

    data_dir: Path = Path("var")
    markets: tuple[MarketConfig, ...] = (MarketConfig("BTC-USD"), MarketConfig("ETH-USD"))
    receive_window_ms: int = setting(5000, 100, 600_000)
    future_skew_ms: int = setting(1000, 0, 60_000)
    address_rate: float = setting(100.0, 0.01, 1e7)
    address_burst: float = setting(200.0, 1.0, 1e7)
    wallet_rate: float = setting(10.0, 0.01, 1e7)
    wallet_burst: float = setting(20.0, 1.0, 1e7)
    read_rate: float = setting(50.0, 0.01, 1e7)
    read_burst: float = setting(100.0, 1.0, 1e7)
    admin_rate: float = setting(20.0, 0.01, 1e7)
    admin_burst: float = setting(40.0, 1.0, 1e7)
    bucket_max_keys: int = setting(100_000, 1, 100_000_000)
    batch_max: int = setting(256, 1, 100_000)
    batch_wait_ms: float = setting(2.0, 0.0, 10_000.0)
    queue_capacity: int = setting(8192, 1, 10_000_000)
    synchronous: str = "FULL"
    checkpoint_interval_s: float = setting(1.0, 0.05, 3600.0)
    trusted_proxies: tuple[Network, ...] = ()
    admin_allow: tuple[Network, ...] = field(
        default_factory=lambda: _networks("TAPGATE_ADMIN_ALLOW", _ADMIN_ALLOW)
    )
    admin_token: str | None = None
    require_extensions: bool = setting(False)
    log_level: str = "info"
    bench_verify_only: bool = setting(False)
    verify_thread: bool = setting(False)
    switch_interval_ms: float = setting(1.0, 0.1, 100.0)
    feed_rate: float = setting(100.0, 0.01, 1e7)
    feed_burst: float = setting(200.0, 1.0, 1e7)
    stream_rate: float = setting(2.0, 0.01, 1e7)
    stream_burst: float = setting(10.0, 1.0, 1e7)
    resolve_interval_ms: int = setting(100, 5, 60_000)
    settle_batch: int = setting(100, 1, 1000)
    stream_buffer: int = setting(256, 1, 100_000)
    stream_max_connections: int = setting(1000, 1, 1_000_000)
    stream_max_per_address: int = setting(20, 1, 1_000_000)
    stream_subscribes_per_connection: int = setting(10, 1, 10_000)
    cors_origins: tuple[str, ...] = ()
    web_client: bool = setting(True)
    api_docs: bool = setting(True)
    dev_funding: bool = setting(False)
    dev_funding_cap: int = setting(100_000, 1, 10**12)
    gc_freeze: bool = setting(True)
    request_timeout_s: float = setting(10.0, 0.1, 600.0)
    keepalive_s: int = setting(5, 1, 600)
    limit_concurrency: int = setting(4096, 1, 1_000_000)
    workers: int = setting(1, 1, 64)
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(m.symbol for m in self.markets)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "tapgate.db"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "lock"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``); raise ConfigError if invalid."""
        r = _Reader(os.environ if env is None else env)
        d = cls()
        symbols = r.text("TAPGATE_MARKETS", ",".join(d.symbols))
        markets = tuple(m.strip() for m in symbols.split(","))
        for market in markets:
            if not _MARKET_RE.match(market):
                raise ConfigError(f"TAPGATE_MARKETS: {market!r} is not a symbol like BTC-USD")
        if len(set(markets)) != len(markets):
            raise ConfigError("TAPGATE_MARKETS: a market is listed twice")
        synchronous = r.text("TAPGATE_SYNCHRONOUS", d.synchronous).upper()
        if synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(f"TAPGATE_SYNCHRONOUS: {synchronous!r} is not FULL or NORMAL")
        log_level = r.text("TAPGATE_LOG_LEVEL", d.log_level).lower()
        if log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"TAPGATE_LOG_LEVEL: {log_level!r} is not debug/info/warning/error")
        values: dict[str, Any] = {
            f.name: r.typed(f"TAPGATE_{f.name.upper()}", f.default, *f.metadata["bounds"])
            for f in fields(cls)
            if f.metadata.get("env")
        }
        values.update(
            data_dir=Path(r.text("TAPGATE_DATA_DIR", str(d.data_dir))),
            markets=market_configs(r.env, markets),
            synchronous=synchronous,
            trusted_proxies=_networks(
                "TAPGATE_TRUSTED_PROXIES", r.text("TAPGATE_TRUSTED_PROXIES", "")
            ),
            admin_allow=_networks(
                "TAPGATE_ADMIN_ALLOW", r.text("TAPGATE_ADMIN_ALLOW", _ADMIN_ALLOW)
            ),
            log_level=log_level,
            cors_origins=_origins(r.text("TAPGATE_CORS_ORIGINS", "")),
            **_tls(r),
        )
        values["admin_token"] = admin_token(r.env)
        return cls(**values)


def _tls(r: _Reader) -> dict[str, Path | None]:
    cert = r.text("TAPGATE_TLS_CERTFILE", "")
    key = r.text("TAPGATE_TLS_KEYFILE", "")
    if bool(cert) != bool(key):
        raise ConfigError("TAPGATE_TLS_CERTFILE and TAPGATE_TLS_KEYFILE go together")
    for name, value in (("TAPGATE_TLS_CERTFILE", cert), ("TAPGATE_TLS_KEYFILE", key)):
        if value and not Path(value).is_file():
            raise ConfigError(f"{name}: {value} is not a readable file")
    return {
        "tls_certfile": Path(cert) if cert else None,
        "tls_keyfile": Path(key) if key else None,
    }


# The development token `make run` writes; the CLI falls back to it (the server never does).
DEV_ADMIN_FILE = "var/admin.token"


def admin_token(env: Mapping[str, str], fallback_file: str | None = None) -> str | None:
    """The admin token: ``TAPGATE_ADMIN_TOKEN``, or the file ``TAPGATE_ADMIN_TOKEN_FILE``
    names (systemd's LoadCredential=), or, when neither is set, ``fallback_file`` if it
    exists. Both set, an unreadable named file, or a token under 16 characters: ConfigError."""
    r = _Reader(env)
    token = r.text("TAPGATE_ADMIN_TOKEN", "")
    path = r.text("TAPGATE_ADMIN_TOKEN_FILE", "")
    if token and path:
        raise ConfigError("TAPGATE_ADMIN_TOKEN and TAPGATE_ADMIN_TOKEN_FILE are both set")
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"TAPGATE_ADMIN_TOKEN_FILE: cannot read {path}: {exc}") from exc
    elif not token and fallback_file is not None and Path(fallback_file).is_file():
        token = Path(fallback_file).read_text(encoding="utf-8").strip()
    if token and len(token) < 16:
        raise ConfigError("TAPGATE_ADMIN_TOKEN: must be at least 16 characters")
    return token or None


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def _origins(raw: str) -> tuple[str, ...]:
    """Allowed browser origins, exactly as browsers send them (scheme://host[:port])."""
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not _ORIGIN.fullmatch(part):
            raise ConfigError(f"TAPGATE_CORS_ORIGINS: {part!r} is not an origin like https://a.b")
        out.append(part)
    return tuple(out)


class _Recording(Mapping[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.seen: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.seen.add(key)
        return self.env[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def unknown_settings(env: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``TAPGATE_*`` variables of ``env`` that nothing reads, each with the closest name
    that something does (or None). A warning at start, not a refusal: a rollback may meet a
    setting that only a newer release knows."""
    recording = _Recording(env)
    Settings.from_env(recording)
    known = sorted(recording.seen | _READ_ELSEWHERE)
    out = []
    for name in sorted(n for n in env if n.startswith("TAPGATE_") and n not in known):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        out.append((name, close[0] if close else None))
    return out
