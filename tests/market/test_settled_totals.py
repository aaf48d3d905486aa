"""A settlement chunk's metrics: the realised-edge counters are the chunk's exact sums."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.market.service import SettledTotals
from gateway.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(("tapgate_bets_resolved", "tapgate_payout", "tapgate_market_settled"))
    }


def test_a_chunk_counts_outcomes_stakes_and_payouts_once_with_voids_out_of_the_edge() -> None:
    """Counts by outcome, every payout and refund, and the stakes and payouts of decided
    bets only (a void's refund is in neither side of the realised edge)."""
    metrics = Metrics(process=False)
    totals = SettledTotals()
    for outcome, amount, payout in [
        ("won", 100, 250),
        ("lost", 300, 0),
        ("lost", 50, 0),
        ("void", 70, 70),
        ("won", 20, 31),
    ]:
        totals.add(outcome, amount, payout)
    totals.count(metrics, "BTC-USD")
    got = _samples(metrics)
    assert got[("tapgate_bets_resolved_total", (("outcome", "won"),))] == 2
    assert got[("tapgate_bets_resolved_total", (("outcome", "lost"),))] == 2
    assert got[("tapgate_bets_resolved_total", (("outcome", "void"),))] == 1
    assert got[("tapgate_payout_minor_units_total", ())] == 250 + 31 + 70
    market = (("market", "BTC-USD"),)
    assert got[("tapgate_market_settled_stakes_minor_units_total", market)] == 100 + 300 + 50 + 20
    assert got[("tapgate_market_settled_payouts_minor_units_total", market)] == 250 + 31


def test_a_chunk_of_voids_only_leaves_the_edge_counters_untouched() -> None:
    """Refunds are paid and counted, but no market series appears for them."""
    metrics = Metrics(process=False)
    totals = SettledTotals()
    totals.add("void", 40, 40)
    totals.count(metrics, "ETH-USD")
    got = _samples(metrics)
    assert got[("tapgate_payout_minor_units_total", ())] == 40
    assert not any(name.startswith("tapgate_market_settled_stakes") for name, _ in got)
