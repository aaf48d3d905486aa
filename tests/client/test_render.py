"""The CLI's terminal views of the gateway's answers."""

from __future__ import annotations

from typing import Any

from gateway.client.render import render


def _cell(row: int, col: int, multiplier: str) -> dict[str, Any]:
    low = row * 20
    start = 1_000_000 + (col - 100) * 5000
    return {"cell_id": f"cell-{row}-{col}", "row": row, "col": col, "low": low,
            "high": low + 20, "start_ms": start, "end_ms": start + 5000,
            "multiplier": multiplier}  # fmt: skip


def test_grid_is_bands_by_windows_highest_band_first() -> None:
    """A grid is one line per band (highest first), one column per window, the price marked."""
    body = {
        "server_time_ms": 994_000, "market": "BTC-USD", "price": 2010, "breaker": "normal",
        "cells": [_cell(100, 100, "1.50"), _cell(101, 100, "3.00"), _cell(100, 101, "2.10")],
    }  # fmt: skip
    lines = render(body).splitlines()
    assert lines[0] == "BTC-USD  price 2010  breaker normal"
    assert lines[1].split() == ["row", "band", "+6s", "+11s"]
    assert lines[2].split() == ["101", "2020-2040", "3.00", "-"]
    assert lines[3].split() == ["100", "2000-2020", "<", "1.50", "2.10"]
    assert "the +6s column is col 100, each later column one more" in lines[4]


def test_grid_with_a_gap_names_each_column() -> None:
    """Columns that are not consecutive are each named in the footer."""
    body = {"server_time_ms": 994_000, "price": 0,
            "cells": [_cell(100, 100, "1.50"), _cell(100, 102, "2.10")]}  # fmt: skip
    assert "+6s is col 100, +16s is col 102" in render(body)


def test_an_empty_grid_says_the_market_takes_no_bets() -> None:
    """No open cells is said in words, not an empty table."""
    assert "no open cells" in render({"market": "BTC-USD", "price": None, "cells": []})


def test_markets_are_a_table_with_nested_fields() -> None:
    """The market list is one row per market, nested fields (breaker name, edge) included."""
    market = {"market": "BTC-USD", "price": 99_880, "breaker": {"name": "normal"},
              "priced": True, "feed_age_ms": 110, "quote_age_ms": None,
              "volatility": {"estimate": 0.000203643},
              "pricing": {"house_edge_bps": 300}}  # fmt: skip
    body = {"markets": [market]}
    header, row = render(body).splitlines()
    assert header.split()[:3] == ["market", "price", "breaker"]
    assert row.split() == ["BTC-USD", "99880", "normal", "yes", "110", "-", "0.000203643", "300"]


def test_bets_are_a_table_and_say_how_to_page() -> None:
    """A bet list is a table; a further page is pointed to."""
    bet = {"bet_id": "7", "market": "BTC-USD", "cell_id": "cell-1-2", "amount": 100,
           "multiplier": "1.76", "status": "won", "payout": 176}  # fmt: skip
    text = render({"bets": [bet], "next_before": "7"})
    assert text.splitlines()[1].split() == ["7", "BTC-USD", "cell-1-2", "100", "1.76", "won", "176"]
    assert text.endswith("older bets: --before 7")
    assert render({"bets": [], "next_before": None}) == "(none)"


def test_other_answers_are_one_line_per_field() -> None:
    """A receipt or balance is name-value lines, nested names dotted, null as '-'."""
    text = render({"bet_id": "1", "quote": {"p_win": 0.5}, "payout": None, "flags": ["a", "b"]})
    assert text.splitlines() == [
        "bet_id       1", "quote.p_win  0.5", "payout       -", "flags        a, b"
    ]  # fmt: skip
