"""Grid, resolution, book, breaker and tick rules: the market's pure parts."""

from __future__ import annotations

import pytest

from gateway.errors import Rejection
from gateway.market.book import Book, OpenBet
from gateway.market.breaker import Breaker, State
from gateway.market.config import MarketConfig
from gateway.market.feed import SimulatedFeed, Tick, TickRules
from gateway.market.grid import column_open, open_columns
from gateway.market.market import Market
from gateway.market.pricing import price_grid
from gateway.market.resolution import cell_outcome, first_win, largest_gap

CFG = MarketConfig(
    "TEST-USD",
    band=10,
    column_ms=1000,
    lock_ahead_ms=300,
    horizon_ms=5000,
    gap_limit_ms=400,
    grace_ms=200,
    min_bet=5,
    max_bet=500,
    wallet_cell_cap=600,
    cell_liability_cap=2000,
    market_liability_cap=3000,
    feed_warning_ms=100,
    feed_critical_ms=500,
    recover_ms=1000,
)


@pytest.mark.parametrize(
    ("now_ms", "expected"),
    [
        (10_000 - 300, True),  # exactly the lock-ahead before the column
        (10_000 - 299, False),  # one millisecond too late
        (10_000 - 5000, True),  # exactly at the horizon
        (10_000 - 5001, False),  # one millisecond too early
    ],
)
def test_column_open_at_its_boundaries(now_ms: int, expected: bool) -> None:
    """A column opens at the horizon and closes at the lock-ahead, both edges inclusive."""
    assert column_open(CFG, 10, now_ms) is expected
    assert (10 in open_columns(CFG, now_ms)) is expected


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ([5, 9, 10], 2),  # enters the band [10, 20)
        ([25, 19], 1),  # from above, 19 is inside
        ([5, 25], 1),  # jumped over the band between two ticks
        ([25, 3], 1),  # and from above
        ([5, 9, 8], None),
        ([20, 30], None),  # 20 is the next band
        ([], None),
    ],
)
def test_first_win(prices: list[int], expected: int | None) -> None:
    """A tick inside the band or a crossing between two ticks wins, at that tick."""
    assert first_win(prices, 10, 20) == expected


def test_cell_outcome_waits_then_decides() -> None:
    """won at once; lost or void only after window end + grace, void on a long gap."""
    start, end = 1000, 2000
    won = cell_outcome(
        [(1100, 5), (1300, 15)], 10, 20, start, end, now_ms=1300, grace_ms=200, gap_limit_ms=400
    )
    assert won == ("won", 1)
    ticks = [(1000 + 300 * i, 5) for i in range(4)]  # 1000, 1300, 1600, 1900: gaps of 300
    kwargs = {"grace_ms": 200, "gap_limit_ms": 400}
    assert cell_outcome(ticks, 10, 20, start, end, now_ms=2199, **kwargs) is None
    assert cell_outcome(ticks, 10, 20, start, end, now_ms=2200, **kwargs) == ("lost", None)
    gappy = [(1000, 5), (1500, 5), (1900, 5)]
    assert cell_outcome(gappy, 10, 20, start, end, now_ms=2200, **kwargs) == ("void", None)
    assert cell_outcome([], 10, 20, start, end, now_ms=2200, **kwargs) == ("void", None)


def test_largest_gap_counts_the_window_edges() -> None:
    """Window start to first tick and last tick to window end are gaps too."""
    assert largest_gap([1450, 1500], 1000, 2000) == 500
    assert largest_gap([1000, 1600], 1000, 2000) == 600
    assert largest_gap([], 1000, 2000) == 1000


def test_book_limits_and_release() -> None:
    """Bet size, per-wallet cell stake, cell and market liability are each enforced."""
    book = Book(CFG)
    with pytest.raises(Rejection, match="between 5 and 500") as small:
        book.reserve("w", 1, 1, 4, 8)
    assert small.value.code == "exposure_limit"
    with pytest.raises(Rejection, match="between"):
        book.reserve("w", 1, 1, 501, 1000)
    book.reserve("w", 1, 1, 500, 1000)
    with pytest.raises(Rejection, match="stake at most 600"):
        book.reserve("w", 1, 1, 101, 202)
    book.reserve("v", 1, 1, 500, 1000)
    with pytest.raises(Rejection, match="cell has reached"):
        book.reserve("u", 1, 1, 5, 10)
    book.reserve("u", 2, 1, 500, 1000)
    with pytest.raises(Rejection, match="market has reached"):
        book.reserve("u", 3, 1, 5, 10)
    book.release("u", 2, 1, 500, 1000)
    assert book.liability == 2000
    bet = OpenBet(1, "w", 1, 1, 500, 1000)
    book.add_open(bet)
    book.settled([bet])
    assert (book.liability, book.cell_liability(1, 1), book.open_count) == (1000, 1000, 0)
    book.reserve("w", 1, 1, 5, 10)  # the wallet's stake in the cell was released too


def test_book_keeps_open_bets_by_cell_and_forgets_settled_ones() -> None:
    """Open bets are grouped column -> row; settling some leaves the rest, settling all
    leaves no column behind, and every reservation is released."""
    book = Book(CFG)
    bets = [OpenBet(i, "w", 1 + i % 2, 7, 5, 10) for i in range(6)]
    for bet in bets:
        book.reserve(bet.wallet, bet.row, bet.col, bet.amount, bet.payout)
        book.add_open(bet)
    assert {row: sorted(cell) for row, cell in book.open_cells(7).items()} == {
        1: [0, 2, 4],
        2: [1, 3, 5],
    }
    book.settled([bets[0], bets[2], bets[4]])
    assert list(book.open_cells(7)) == [2]
    assert (book.open_count, book.cell_liability(1, 7), book.cell_liability(2, 7)) == (3, 0, 30)
    book.settled([bets[1], bets[3], bets[5]])
    assert (book.open_columns(), book.open_cells(7), book.liability) == ([], {}, 0)


def test_breaker_feed_age_liability_and_halt() -> None:
    """Feed age raises the state at once and lowers it only after recover_ms of health."""
    b = Breaker(CFG)
    assert b.update(0, None, 0) is None and b.state == State.CRITICAL  # no feed yet
    assert b.update(100, 0, 0) is None  # healthy, recovering
    change = b.update(1100, 50, 0)
    assert change is not None and (change.old, change.new) == (State.CRITICAL, State.NORMAL)
    assert b.update(1200, 150, 0).new == State.WARNING  # type: ignore[union-attr]
    assert b.update(1300, 600, 0).new == State.CRITICAL  # type: ignore[union-attr]
    assert b.update(1400, 10, 0) is None  # healthy again, but not for long enough
    assert b.update(2399, 10, 0) is None
    assert b.update(2400, 10, 0).new == State.NORMAL  # type: ignore[union-attr]
    assert b.update(2500, 10, 2500).new == State.WARNING  # type: ignore[union-attr]  # 83% of cap
    assert b.update(2600, 10, 2990).new == State.CRITICAL  # type: ignore[union-attr]
    assert b.update(2700, 10, 0).new == State.NORMAL  # type: ignore[union-attr]  # at once
    b.halted = "maintenance"
    change = b.update(2800, 10, 0)
    assert (
        change is not None and change.new == State.CRITICAL and "maintenance" in change.reasons[0]
    )
    assert b.update(99_999, 10, 0) is None  # stays until resumed
    b.halted = None
    assert b.update(100_000, 10, 0).new == State.NORMAL  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tick", "reason"),
    [
        (Tick(11, 0, 2000), "positive"),
        (Tick(10, 100, 2000), "seq"),
        (Tick(11, 100, 1000), "timestamp must be above"),
        (Tick(11, 100, 9000), "future"),
        (Tick(11, 106, 2000), "outlier"),
    ],
)
def test_tick_rules_refuse(tick: Tick, reason: str) -> None:
    """Non-positive prices, old seq or timestamps, future timestamps and jumps are refused."""
    rules = TickRules(CFG, Tick(10, 100, 1000))
    with pytest.raises(Rejection, match=reason) as refused:
        rules.check(tick, now_ms=5000)
    assert refused.value.code == "tick_rejected"
    rules.check(Tick(11, 105, 5500), now_ms=5000)  # within the outlier limit and the skew


def test_simulated_feed_is_seeded_and_continues_after_restart() -> None:
    """The same seed gives the same ticks; a restart continues from the last tick."""
    cfg = MarketConfig("SIM-USD", sim_seed=3)
    a = [SimulatedFeed(cfg, None).next(1000 + i) for i in range(1)]
    first, second = SimulatedFeed(cfg, None), SimulatedFeed(cfg, None)
    assert [first.next(i).price for i in range(50)] == [second.next(i).price for i in range(50)]
    resumed = SimulatedFeed(cfg, Tick(50, 12345, 50))
    assert resumed.next(60).seq == 51 and a[0].seq == 1
    assert SimulatedFeed(MarketConfig("SIM-USD", sim_seed=4), None).next(0).price != a[0].price


def test_simulated_feed_without_a_seed_is_unpredictable() -> None:
    """With no seed set, two feeds started from the same tick take different paths."""
    cfg = MarketConfig("SIM-USD")
    first, second = SimulatedFeed(cfg, None), SimulatedFeed(cfg, None)
    assert [first.next(i).price for i in range(20)] != [second.next(i).price for i in range(20)]


def test_quote_older_than_the_limit_is_refused_as_stale() -> None:
    """At exactly the quote-age limit a cell is quoted; one ms later: 503 quote_stale."""
    cfg = MarketConfig("SIM-USD", max_quote_age_ms=500, recover_ms=0)
    feed = SimulatedFeed(MarketConfig("SIM-USD", sim_seed=1), None)
    market = Market(cfg)
    for i in range(40):
        tick = feed.next(1_800_000_000_000 + 250 * i)
        market.apply(tick, received_ms=tick.ts)
    inputs = market.pricing_inputs()
    last = market.last
    assert inputs is not None and last is not None
    market.install(last.seq, price_grid(cfg, *inputs))
    now = last.ts + cfg.max_quote_age_ms
    market.update_breaker(now)
    market.update_breaker(now)
    (row, col), quote = next(
        (cell, q) for cell, q in market.table.items() if column_open(cfg, cell[1], now + 1)
    )
    assert market.quote(row, col, now) == quote and quote.seq == last.seq
    with pytest.raises(Rejection) as refused:
        market.quote(row, col, now + 1)
    assert refused.value.code == "quote_stale" and refused.value.retry_after
    assert market.grid(now + 1)["cells"] == [] and market.grid(now)["cells"]
