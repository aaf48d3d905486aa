"""Prometheus metrics, built against an injected registry (never the global one).

Names follow Prometheus conventions: ``tapgate_`` prefix, base units (seconds, minor units),
``_total`` on counters. Labels are bounded: route names, status codes, error codes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from gateway.loop_metrics import LoopCounter, LoopGauge, LoopHistogram, go_float

__all__ = ["Metrics"]

# Fine enough for millisecond latencies, wide enough for a stalled disk.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    """Every metric the gateway exports, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        # updated by every request or bet, on the event loop: lock-free (loop_metrics.py)
        self.requests = LoopCounter(
            "tapgate_http_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.request_seconds = LoopHistogram(
            "tapgate_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = LoopGauge(
            "tapgate_http_requests_in_flight", "HTTP requests being served", registry=r
        )
        # (route, status) -> the two labelled children: labels() costs more than the
        # increment it leads to; routes and statuses are bounded sets
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.forwarded_for_invalid = Counter(
            "tapgate_forwarded_for_invalid_total",
            "Requests from a trusted proxy refused for an unreadable X-Forwarded-For",
            registry=r,
        )
        self.bets_placed = LoopCounter(
            "tapgate_bets_placed_total",
            "Bets acknowledged with 202 (replays excluded)",
            registry=r,
        )
        self.bets_replayed = LoopCounter(
            "tapgate_bets_replayed_total",
            "Idempotent replays answered from a stored receipt",
            registry=r,
        )
        self.bets_rejected = LoopCounter(
            "tapgate_bets_rejected_total", "Bets refused, by error code", ["code"], registry=r
        )
        self.stake = LoopCounter(
            "tapgate_stake_minor_units_total", "Stakes of acknowledged bets", registry=r
        )
        self.batch_size = Histogram(
            "tapgate_batch_size", "Bets per committed group", buckets=BATCH_BUCKETS, registry=r
        )
        self.flush_seconds = Histogram(
            "tapgate_batch_flush_duration_seconds",
            "One group's transaction, BEGIN to COMMIT",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait_seconds = LoopHistogram(  # each bet's, by the writer's flusher task
            "tapgate_batch_queue_wait_seconds",
            "Time a bet waited in the queue for its group",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_failures = Counter(
            "tapgate_commit_failures_total", "Group transactions the database refused", registry=r
        )
        self.queue_depth = Gauge(
            "tapgate_batch_queue_depth", "Bets waiting for their group", registry=r
        )
        self.fastpath = Gauge(
            "tapgate_fastpath_implementation",
            "1 for the fastpath implementation in use",
            ["implementation"],
            registry=r,
        )
        self.ticks = Counter(
            "tapgate_ticks_total",
            "Price ticks by market and result (accepted, rejected)",
            ["market", "result"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "tapgate_market_breaker_state",
            "Circuit breaker state per market: 0 normal, 1 warning, 2 critical",
            ["market"],
            registry=r,
        )
        self.feed_age = Gauge(
            "tapgate_market_feed_age_seconds",
            "Time since the market's last committed tick (+Inf before the first)",
            ["market"],
            registry=r,
        )
        self.liability = Gauge(
            "tapgate_market_open_liability_minor_units",
            "Sum of potential payouts of the market's open and queued bets",
            ["market"],
            registry=r,
        )
        self.bets_resolved = Counter(
            "tapgate_bets_resolved_total", "Bets settled, by outcome", ["outcome"], registry=r
        )
        self.payout = Counter(
            "tapgate_payout_minor_units_total",
            "Payouts and refunds credited to wallets by settlement",
            registry=r,
        )
        # The house's realised P&L per market (void bets, refunded, count in neither):
        # realised edge = 1 - payouts / stakes over a window. Its noise: the bets of one
        # cell share one outcome, so each cell is one draw, and sd(sum of payouts) is about
        # sqrt(sum over cells of the cell's payout squared) (docs/OPERATIONS.md).
        self.settled_stakes = Counter(
            "tapgate_market_settled_stakes_minor_units_total",
            "Stakes of bets settled won or lost",
            ["market"],
            registry=r,
        )
        self.settled_payouts = Counter(
            "tapgate_market_settled_payouts_minor_units_total",
            "Payouts of bets settled won",
            ["market"],
            registry=r,
        )
        self.settled_payout_squares = Counter(
            "tapgate_market_settled_payout_squares_total",
            "Sum over won cells of the square of the cell's total payout (the edge's noise)",
            ["market"],
            registry=r,
        )
        self.house_edge = Gauge(
            "tapgate_market_house_edge_ratio",
            "The configured house edge (TAPGATE_MARKET_HOUSE_EDGE_BPS / 10000)",
            ["market"],
            registry=r,
        )
        self.quote_sigma = Gauge(
            "tapgate_market_sigma_band",
            "Volatility per sqrt(second) the quotes hold for: bound low, estimate, high",
            ["market", "bound"],
            registry=r,
        )
        self.stream_connections = Gauge(
            "tapgate_stream_connections", "Open WebSocket stream connections", registry=r
        )
        self.stream_dropped = Counter(
            "tapgate_stream_slow_consumers_total",
            "Stream connections closed because their buffer filled up",
            registry=r,
        )
        self.ops_last_success = Gauge(
            "tapgate_ops_last_success_timestamp_seconds",
            "Unix time of the newest successful run of an ops job (backup, archive, check)",
            ["job"],
            registry=r,
        )
        self.ops_last_ok = Gauge(
            "tapgate_ops_last_run_ok",
            "1 if the newest run of the ops job succeeded, 0 if it failed",
            ["job"],
            registry=r,
        )
        self.wal_bytes = Gauge(
            "tapgate_sqlite_wal_bytes", "Size of the SQLite write-ahead log", registry=r
        )
        self.loop_lag = Histogram(
            "tapgate_event_loop_lag_seconds",
            "How late the event loop ran a timer due every housekeeping interval",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.verify_seconds = LoopHistogram(
            "tapgate_bet_verify_duration_seconds",
            "Ed25519 verification of one bet",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """One finished HTTP request: its count by route and status, and its latency."""
        children = self._request_children.get((route, status))
        if children is None:
            children = (
                self.requests.labels(route, str(status)),
                self.request_seconds.labels(route),
            )
            self._request_children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch_rate_limits(self, tables: dict[tuple[str, str], Any]) -> None:
        """Export the size and evictions of each token-bucket table, at scrape time."""
        self.registry.register(_RateLimitCollector(tables))


class _RateLimitCollector(Collector):
    def __init__(self, tables: dict[tuple[str, str], Any]) -> None:
        self.tables = tables

    def collect(self) -> Iterator[Metric]:
        keys = GaugeMetricFamily(
            "tapgate_rate_limit_keys",
            "Keys held by a token-bucket table (bounded by TAPGATE_BUCKET_MAX_KEYS)",
            labels=["family", "kind"],
        )
        evictions = CounterMetricFamily(
            "tapgate_rate_limit_evictions",
            "Least recently used buckets dropped because the table was full",
            labels=["family", "kind"],
        )
        for (family, kind), table in self.tables.items():
            keys.add_metric([family, kind], len(table))
            evictions.add_metric([family, kind], table.evictions)
        yield keys
        yield evictions


def merge_expositions(texts: Sequence[bytes]) -> bytes:
    """One exposition from the owner's and the workers' (ADR 12): samples with the same
    name and labels are added (counters, histogram buckets, gauges such as requests in
    flight), creation times take the earliest.

    Line by line: the texts are prometheus_client's own output (no timestamps, the same
    label order in every process), so a sample's name and labels are the text before its
    last space. The client's parser reads character by character: 15 ms for three texts
    of 29 KB on the owner's event loop at every scrape, against about 1 ms this way.
    """
    heads: dict[str, list[str]] = {}  # family -> its HELP and TYPE lines, first seen
    families: dict[str, dict[str, float]] = {}  # family -> sample -> value
    for text in texts:
        merged: dict[str, float] = {}
        for line in text.decode().splitlines():
            if line.startswith("# "):
                name = line.split(" ", 3)[2]
                if name not in families:
                    heads[name], families[name] = [], {}
                merged = families[name]
                if len(heads[name]) < 2 and line not in heads[name]:
                    heads[name].append(line)
                continue
            if not line:
                continue
            sample, _, text_value = line.rpartition(" ")
            value = float(text_value)
            if sample not in merged:
                merged[sample] = value
            elif sample.partition("{")[0].endswith("_created"):
                merged[sample] = min(merged[sample], value)
            else:
                merged[sample] += value
    lines = []
    for name, samples in families.items():
        lines.extend(heads[name])
        lines.extend(f"{sample} {go_float(value)}" for sample, value in samples.items())
    return ("\n".join(lines) + "\n").encode()
