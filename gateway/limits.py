"""Rate limits: a route family's token buckets and the 429 they answer (no web framework).

Each family (bets, reads, admin, feed, stream) has a bucket per client address, taken
first, and one per wallet (or oracle key), taken once the signature holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

from fastpath import TokenBuckets
from gateway.errors import ErrorCode, Rejection

__all__ = ["Limiter", "Limits", "rate_limited"]


def rate_limited(policy: str, quota: float, window: float, wait: float) -> Rejection:
    """A 429 with Retry-After and draft-ietf-httpapi-ratelimit-headers fields."""
    seconds = max(1, int(wait + 0.999))
    return Rejection(
        ErrorCode.RATE_LIMITED,
        f"too many requests for this {policy}; retry after {seconds} s",
        retry_after=seconds,
        headers=(
            (b"ratelimit-policy", f'"{policy}";q={int(quota)};w={int(window)}'.encode()),
            (b"ratelimit", f'"{policy}";r=0;t={seconds}'.encode()),
        ),
    )


class Limiter:
    """One route family's buckets: per client address first, per wallet once signed."""

    def __init__(self, name: str, address: TokenBuckets, wallet: TokenBuckets) -> None:
        self.name = name
        self.address = address
        self.wallet = wallet

    @classmethod
    def of(
        cls, name: str, rate: float, burst: float, key_rate: float, key_burst: float, keys: int
    ) -> Limiter:
        """Buckets of ``rate``/``burst`` per address and ``key_rate``/``key_burst`` per
        wallet, each table bounded to ``keys`` entries."""
        return cls(name, TokenBuckets(rate, burst, keys), TokenBuckets(key_rate, key_burst, keys))

    def _take(self, buckets: TokenBuckets, policy: str, key: str, now: float) -> None:
        wait = buckets.take(key, now)
        if wait:
            raise rate_limited(
                f"{self.name}-{policy}", buckets.burst, buckets.burst / buckets.rate, wait
            )

    def by_address(self, address: str, now: float) -> None:
        self._take(self.address, "address", address, now)

    def by_wallet(self, wallet: str, now: float) -> None:
        self._take(self.wallet, "wallet", wallet, now)


@dataclass(frozen=True)
class Limits:
    """Every route family's limiter."""

    bets: Limiter
    reads: Limiter
    admin: Limiter
    feed: Limiter
    stream: Limiter

    def __iter__(self) -> Iterator[Limiter]:
        return (getattr(self, f.name) for f in fields(self))
