from __future__ import annotations

import tracemalloc

import pytest


def test_burst_then_refuses(buckets_cls: type) -> None:
    """A new key gets its whole burst, then waits 1/rate per token."""
    b = buckets_cls(rate=10.0, burst=3.0, max_keys=10)
    assert [b.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("a", 0.0) == pytest.approx(0.1)


def test_refills_at_rate_up_to_burst(buckets_cls: type) -> None:
    """Tokens come back at ``rate`` per second and never exceed ``burst``."""
    b = buckets_cls(rate=2.0, burst=2.0, max_keys=10)
    b.take("a", 0.0)
    b.take("a", 0.0)
    assert b.take("a", 0.25) == pytest.approx(0.25)
    assert b.take("a", 0.5) == 0.0
    assert b.tokens("a", 100.0) == 2.0


def test_keys_are_independent(buckets_cls: type) -> None:
    """Draining one key leaves others untouched."""
    b = buckets_cls(rate=1.0, burst=1.0, max_keys=10)
    assert b.take("a", 0.0) == 0.0
    assert b.take("a", 0.0) > 0.0
    assert b.take("b", 0.0) == 0.0


def test_clock_going_back_refills_nothing(buckets_cls: type) -> None:
    """A time jump backwards neither refills nor breaks the bucket."""
    b = buckets_cls(rate=1.0, burst=1.0, max_keys=10)
    assert b.take("a", 100.0) == 0.0
    assert b.take("a", 50.0) == pytest.approx(1.0)
    assert b.take("a", 101.0) == 0.0


def test_idle_full_buckets_are_dropped(buckets_cls: type) -> None:
    """A bucket idle long enough to be full again is forgotten by prune()."""
    b = buckets_cls(rate=10.0, burst=10.0, max_keys=100)
    b.take("a", 0.0)
    b.take("b", 0.5)
    assert b.prune(0.9) == 0
    assert b.prune(1.0) == 1
    assert len(b) == 1
    assert b.prune(1.5) == 1
    assert len(b) == 0


def test_capacity_evicts_least_recently_used(buckets_cls: type) -> None:
    """At max_keys the least recently used key goes, and evictions counts it."""
    b = buckets_cls(rate=1.0, burst=1.0, max_keys=2)
    b.take("a", 0.0)
    b.take("b", 0.0)
    b.take("a", 0.1)  # a is now the most recent
    b.take("c", 0.2)
    assert len(b) == 2
    assert b.evictions == 1
    assert b.tokens("b", 0.2) == 1.0  # b was evicted: a fresh bucket
    assert b.tokens("a", 0.2) < 1.0


def test_million_keys_stay_bounded(buckets_cls: type) -> None:
    """A million distinct keys never hold more than max_keys buckets, nor their memory."""
    b = buckets_cls(rate=1.0, burst=5.0, max_keys=10_000)
    for i in range(900_000):
        b.take(str(i), i * 1e-6)
    tracemalloc.start()
    try:
        for i in range(900_000, 1_000_000):
            b.take(str(i), i * 1e-6)
        grown, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(b) == 10_000
    assert b.evictions == 1_000_000 - 10_000
    # Unbounded, 100,000 more keys would cost ~15 MB; what remains is the dict resizing.
    assert grown < 4 * 1024 * 1024


def test_rejects_bad_parameters(buckets_cls: type) -> None:
    """Zero rate, burst below one or no room are refused at construction."""
    with pytest.raises(ValueError):
        buckets_cls(rate=0.0, burst=1.0, max_keys=1)
    with pytest.raises(ValueError):
        buckets_cls(rate=1.0, burst=0.5, max_keys=1)
    with pytest.raises(ValueError):
        buckets_cls(rate=1.0, burst=1.0, max_keys=0)
