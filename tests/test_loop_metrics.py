"""The event loop's lock-free metrics expose what prometheus_client's own would."""

from __future__ import annotations

import re
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.errors import ErrorCode
from gateway.loop_metrics import LoopCounter, LoopGauge, LoopHistogram

BOUNDS = (0.001, 0.01, 0.1, 1.0)


def _exposition(registry: CollectorRegistry) -> str:
    """The registry's text with creation times blanked (they differ by construction)."""
    text = generate_latest(registry).decode()
    return re.sub(r"^(\w+_created(?:\{[^}]*\})?) \S+$", r"\1 T", text, flags=re.M)


def _updates(counter: Any, labelled: Any, gauge: Any, histogram: Any) -> None:
    """The same updates, through either library's API."""
    counter.inc()
    counter.inc(2.5)
    labelled.labels("place_bet", "202").inc()
    labelled.labels("place_bet", "202").inc()
    labelled.labels("health", "200").inc()
    gauge.inc()
    gauge.inc()
    gauge.dec()
    for route, seconds in [("a", 0.0005), ("a", 0.001), ("a", 0.05), ("b", 3.0), ("a", 1.0)]:
        histogram.labels(route).observe(seconds)


def test_exposition_matches_prometheus_client() -> None:
    """The same updates give the client's text, byte for byte, creation times aside:
    bucket edges (a value equal to a bound counts in it), +Inf, sums and order."""
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    _updates(
        Counter("t_plain_total", "plain", registry=theirs),
        Counter("t_requests_total", "by route", ["route", "status"], registry=theirs),
        Gauge("t_in_flight", "in flight", registry=theirs),
        Histogram("t_seconds", "latency", ["route"], buckets=BOUNDS, registry=theirs),
    )
    _updates(
        LoopCounter("t_plain_total", "plain", registry=ours),
        LoopCounter("t_requests_total", "by route", ["route", "status"], registry=ours),
        LoopGauge("t_in_flight", "in flight", registry=ours),
        LoopHistogram("t_seconds", "latency", ["route"], buckets=BOUNDS, registry=ours),
    )
    assert _exposition(ours) == _exposition(theirs)


def test_unlabelled_histogram_exposes_zeros_before_any_observation() -> None:
    """Like the client's, an unlabelled histogram is exported at zero from the start."""
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    Histogram("t_verify_seconds", "verify", buckets=BOUNDS, registry=theirs)
    LoopHistogram("t_verify_seconds", "verify", buckets=BOUNDS, registry=ours)
    assert _exposition(ours) == _exposition(theirs)
    assert ours.get_sample_value("t_verify_seconds_count") == 0


def test_created_is_when_the_child_appeared() -> None:
    """A child's _created is the wall-clock time it was first used, not the scrape's."""
    registry = CollectorRegistry()
    counter = LoopCounter("t_total", "t", ["code"], registry=registry)
    counter.labels("x").inc()
    created = registry.get_sample_value("t_created", {"code": "x"})
    assert created is not None and created > 1.7e9
    counter.labels("x").inc()
    assert registry.get_sample_value("t_created", {"code": "x"}) == created


def test_misuse_is_refused_like_the_client_refuses_it() -> None:
    """Wrong label counts, a shrinking counter, a labelled family updated without its
    labels and a duplicate name raise ValueError."""
    registry = CollectorRegistry()
    counter = LoopCounter("t_total", "t", ["route", "status"], registry=registry)
    histogram = LoopHistogram("t_seconds", "t", ["route"], buckets=BOUNDS, registry=registry)
    with pytest.raises(ValueError, match="labels"):
        counter.labels("only-one")
    with pytest.raises(ValueError, match="labels"):
        histogram.labels("a", "b")
    with pytest.raises(ValueError, match="only grows"):
        counter.labels("a", "b").inc(-1)
    with pytest.raises(ValueError, match="use labels"):
        counter.inc()
    with pytest.raises(ValueError, match="use labels"):
        histogram.observe(0.1)
    with pytest.raises(ValueError, match="Duplicated"):
        LoopCounter("t_total", "again", registry=registry)


def test_label_values_are_written_as_their_text() -> None:
    """An error code (a StrEnum) labels its child by its text, the same child as the
    plain string, as the client does."""
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    for registry, kind in ((theirs, Counter), (ours, LoopCounter)):
        counter = kind("t_rejected_total", "by code", ["code"], registry=registry)
        counter.labels(ErrorCode.CELL_CLOSED).inc()
        counter.labels("cell_closed").inc()
    assert _exposition(ours) == _exposition(theirs)
    assert ours.get_sample_value("t_rejected_total", {"code": "cell_closed"}) == 2
