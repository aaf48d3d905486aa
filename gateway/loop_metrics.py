"""Counters, a gauge and histograms for the per-request path: plain numbers on the event
loop's thread, turned into Prometheus families when the registry is scraped.

prometheus_client's metrics take a lock for every increment (a histogram's observation
takes two, after a type check and a walk of its bounds): a fifth of the instructions of
our own per-request layers went to the metrics every request updates (ADR 16). These
count in Python ints and floats instead, which is safe because one thread updates them:
the event loop, which also runs the scrape (``generate_latest`` in the ``/metrics``
handler), so a scrape never sees half an update. Never update one from another thread;
the writer's and the pricing thread's metrics stay prometheus_client's own.

The exposition is the client's own format and names: a counter ``<name>_total`` with its
``<name>_created``, a histogram's cumulative ``_bucket`` lines, ``_count``, ``_sum`` and
``_created``, a gauge's value.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar, cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["LoopCounter", "LoopGauge", "LoopHistogram", "go_float"]

go_float = cast(Callable[[float], str], floatToGoString)  # how the client prints values


class _Family(Collector):
    """A metric family, children by label values; each subclass registers itself once it
    can be collected."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        yield from self._families()

    def _families(self) -> Iterator[Metric]:
        raise NotImplementedError

    def _needs_labels(self) -> ValueError:
        return ValueError(f"{self.name} has labels {self.labelnames}: use labels()")

    def _check(self, values: tuple[str, ...]) -> None:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")


class _CounterChild:
    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (not negative: a counter only grows)."""
        if amount < 0:
            raise ValueError("a counter only grows")
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose bound is at least it."""
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


Child = TypeVar("Child", _CounterChild, _HistogramChild)


class _Labelled(_Family, Generic[Child]):
    """A family of children by label values. Without label names it has one child, which
    the family's own ``inc``/``observe`` update: bound to the child's method, so an update
    is one Python call, not two (ADR 16)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        new_child: Callable[[], Child],
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self._new_child: Callable[[], Child] = new_child
        self._children: dict[tuple[str, ...], Child] = {}
        self._only: Child | None = None if self.labelnames else self.labels()

    def labels(self, *values: str) -> Child:
        child = self._children.get(values)
        if child is None:
            self._check(values)
            child = self._children[values] = self._new_child()
        return child


class LoopCounter(_Labelled[_CounterChild]):
    """``prometheus_client.Counter``'s ``labels(...).inc()`` and ``inc()``, without a lock."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        super().__init__(name.removesuffix("_total"), documentation, labelnames, _CounterChild)
        if self._only is not None:
            self.inc = self._only.inc  # type: ignore[method-assign]
        registry.register(self)

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` to an unlabelled counter (this one: refused, it has labels)."""
        raise self._needs_labels()

    def _families(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._children.items():
            family.add_metric([str(v) for v in values], child.value, created=child.created)
        yield family


class LoopGauge(_Family):
    """An unlabelled ``prometheus_client.Gauge``'s ``inc()`` and ``dec()``, without a lock."""

    def __init__(self, name: str, documentation: str, *, registry: CollectorRegistry) -> None:
        super().__init__(name, documentation, ())
        self.value = 0.0
        registry.register(self)

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def _families(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.name, self.documentation, value=self.value)


class LoopHistogram(_Labelled[_HistogramChild]):
    """``prometheus_client.Histogram``'s ``labels(...).observe()`` and ``observe()``,
    without a lock."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        bounds = tuple(sorted(float(b) for b in buckets))
        super().__init__(name, documentation, labelnames, lambda: _HistogramChild(bounds))
        self._les = [go_float(b) for b in bounds] + ["+Inf"]
        if self._only is not None:
            self.observe = self._only.observe  # type: ignore[method-assign]
        registry.register(self)

    def observe(self, amount: float) -> None:
        """Count ``amount`` in an unlabelled histogram (this one: refused, it has labels)."""
        raise self._needs_labels()

    def _families(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._children.items():
            total, buckets = 0, []
            for le, count in zip(self._les, child.counts, strict=True):
                total += count
                buckets.append((le, total))
            labels = [str(v) for v in values]  # as the client writes a label value
            family.add_metric(labels, buckets, child.sum)
            family.add_sample(
                f"{self.name}_created",
                dict(zip(self.labelnames, labels, strict=True)),
                child.created,
            )
        yield family
