"""Per-key token buckets with bounded memory (the specification; ``_buckets_c.pyx`` mirrors it).

Keys live in an ``OrderedDict`` ordered by last use: its oldest key is found in
constant time (a plain dict's first key is found by scanning past the slots its deleted
keys left: about 9 us a new key at 14,000 keys, bench/RESULTS.md). A bucket that has
been idle long enough to refill completely is indistinguishable from a new one, so it is
dropped. When ``max_keys`` is reached and the least recently used bucket is not yet
full, that bucket is evicted anyway: memory stays bounded, at the cost of that key
starting again with a full burst. ``evictions`` counts those.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["TokenBuckets"]


class _Bucket:
    __slots__ = ("last", "tokens")

    def __init__(self, tokens: float, last: float) -> None:
        self.tokens = tokens
        self.last = last


class TokenBuckets:
    """Token buckets keyed by string; ``rate`` tokens per second up to ``burst``."""

    def __init__(self, rate: float, burst: float, max_keys: int) -> None:
        if not rate > 0.0:
            raise ValueError("rate must be > 0")
        if not burst >= 1.0:
            raise ValueError("burst must be >= 1")
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = int(max_keys)
        self.evictions = 0
        self._fill_seconds = self.burst / self.rate
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens for ``key`` at time ``now`` (seconds).

        Returns 0.0 when granted, else the seconds until enough tokens are there.
        A clock that goes backwards refills nothing.
        """
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = buckets[key] = _Bucket(self.burst, now)
        else:
            buckets.move_to_end(key)
            elapsed = now - bucket.last
            if elapsed > 0.0:
                tokens = bucket.tokens + elapsed * self.rate
                bucket.tokens = tokens if tokens < self.burst else self.burst
                bucket.last = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate

    def tokens(self, key: str, now: float) -> float:
        """Tokens ``key`` would have at ``now``, without taking any."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return self.burst
        elapsed = now - bucket.last
        if elapsed > 0.0:
            tokens = bucket.tokens + elapsed * self.rate
            return tokens if tokens < self.burst else self.burst
        return bucket.tokens

    def prune(self, now: float) -> int:
        """Drop every least-recently-used bucket that is full again; return how many."""
        buckets = self._buckets
        dropped = 0
        while buckets:
            key = next(iter(buckets))
            if now - buckets[key].last < self._fill_seconds:
                break
            del buckets[key]
            dropped += 1
        return dropped

    def _make_room(self, now: float) -> None:
        buckets = self._buckets
        if buckets:
            key = next(iter(buckets))
            if now - buckets[key].last >= self._fill_seconds:
                del buckets[key]
        if len(buckets) >= self.max_keys:
            del buckets[next(iter(buckets))]
            self.evictions += 1
