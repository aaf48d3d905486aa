"""The compiled and pure-Python twins give identical results on random operation sequences."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

c_buckets = pytest.importorskip("fastpath._buckets_c")
c_queue = importlib.import_module("fastpath._queue_c")
py_buckets = importlib.import_module("fastpath._buckets_py")
py_queue = importlib.import_module("fastpath._queue_py")

_keys = st.sampled_from(["a", "b", "c", "d", "e", "f"])
_times = st.floats(min_value=-5.0, max_value=50.0, allow_nan=False)
_bucket_ops = st.lists(
    st.one_of(
        st.tuples(st.just("take"), _keys, _times, st.sampled_from([1.0, 0.5, 3.0])),
        st.tuples(st.just("tokens"), _keys, _times),
        st.tuples(st.just("prune"), _times),
        st.tuples(st.just("len")),
    ),
    max_size=60,
)


@settings(max_examples=600, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 10.0, 1000.0]),
    burst=st.sampled_from([1.0, 2.0, 5.0]),
    max_keys=st.integers(min_value=1, max_value=4),
    ops=_bucket_ops,
)
def test_buckets_twins_agree(rate: float, burst: float, max_keys: int, ops: list[Any]) -> None:
    """Token buckets: take, tokens, prune and len match, evictions and time jumps included."""
    twins = [m.TokenBuckets(rate, burst, max_keys) for m in (c_buckets, py_buckets)]
    for op in ops:
        results = []
        for b in twins:
            if op[0] == "take":
                results.append(b.take(op[1], op[2], op[3]))
            elif op[0] == "tokens":
                results.append(b.tokens(op[1], op[2]))
            elif op[0] == "prune":
                results.append(b.prune(op[1]))
            else:
                results.append(len(b))
        assert results[0] == results[1], op
    assert twins[0].evictions == twins[1].evictions


_queue_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers()),
        st.tuples(st.just("drain"), st.integers(min_value=-1, max_value=6)),
        st.tuples(st.just("head")),
        st.tuples(st.just("len")),
    ),
    max_size=80,
)


@settings(max_examples=600, deadline=None)
@given(capacity=st.integers(min_value=1, max_value=5), ops=_queue_ops)
def test_queue_twins_agree(capacity: int, ops: list[Any]) -> None:
    """Batch queue: every push, drain, head and len matches, full queue included."""
    twins = [c_queue.BatchQueue(capacity), py_queue.BatchQueue(capacity)]
    for op in ops:
        results = []
        for q in twins:
            if op[0] == "push":
                results.append(q.push(op[1]))
            elif op[0] == "drain":
                results.append(q.drain(op[1]))
            elif op[0] == "head":
                results.append(q.head())
            else:
                results.append(len(q))
        assert results[0] == results[1], op
