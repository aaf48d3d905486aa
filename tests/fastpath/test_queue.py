from __future__ import annotations

import pytest


def test_fifo_drain_in_groups(queue_cls: type) -> None:
    """Items come out in the order they went in, at most n at a time."""
    q = queue_cls(10)
    for i in range(5):
        assert q.push(i) == i + 1
    assert q.drain(2) == [0, 1]
    assert q.head() == 2
    assert q.drain(10) == [2, 3, 4]
    assert q.drain(3) == []
    assert q.head() is None


def test_full_queue_refuses(queue_cls: type) -> None:
    """push returns 0 at capacity and the queue is unchanged."""
    q = queue_cls(2)
    assert q.push("a") == 1
    assert q.push("b") == 2
    assert q.push("c") == 0
    assert len(q) == 2
    assert q.drain(5) == ["a", "b"]


def test_wraps_around(queue_cls: type) -> None:
    """Many push/drain cycles past the capacity keep FIFO order."""
    q = queue_cls(3)
    out = []
    for i in range(20):
        q.push(i)
        if i % 2:
            out.extend(q.drain(2))
    out.extend(q.drain(3))
    assert out == list(range(20))


def test_drain_zero_or_negative(queue_cls: type) -> None:
    """Draining zero or fewer items returns nothing and keeps the items."""
    q = queue_cls(2)
    q.push(1)
    assert q.drain(0) == []
    assert q.drain(-1) == []
    assert len(q) == 1


def test_capacity_must_be_positive(queue_cls: type) -> None:
    """A queue needs room for at least one item."""
    with pytest.raises(ValueError):
        queue_cls(0)
