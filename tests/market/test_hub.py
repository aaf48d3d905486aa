"""The stream hub: fan-out without waiting, bounded buffers, per-market channels, deltas."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway.market.hub import Hub, Subscriber, grid_delta


def _cell(row: int, col: int, multiplier: str) -> dict[str, Any]:
    return {"cell_id": f"r{row}c{col}", "row": row, "col": col, "multiplier": multiplier}


def _grid(price: int, cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {"market": "M", "price": price, "price_ts": price, "breaker": "normal", "cells": cells}


def _drain(sub: Subscriber) -> list[dict[str, Any]]:
    out = []
    while not sub.queue.empty():
        out.append(orjson.loads(sub.queue.get_nowait()))
    return out


def _apply(grid: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """What a client does with a grid_delta (docs/FRONTEND.md)."""
    cells = {c["cell_id"]: dict(c) for c in grid["cells"]}
    for key in delta["removed"]:
        del cells[key]
    for key, multiplier in delta["changed"].items():
        cells[key]["multiplier"] = multiplier
    for cell in delta["added"]:
        cells[cell["cell_id"]] = cell
    fields = {k: delta[k] for k in ("price", "price_ts", "breaker")}
    return {**grid, **fields, "cells": sorted(cells.values(), key=lambda c: (c["col"], c["row"]))}


def test_slow_consumer_is_marked_and_never_blocks_the_publisher() -> None:
    """A full buffer marks the subscriber overflowed (to be closed); others still receive."""

    async def scenario() -> None:
        hub = Hub(buffer=3)
        slow, fast = hub.join("a"), hub.join("b")
        for sub in (slow, fast):
            hub.watch(sub, "M", {}, lambda: _grid(1, []))
        await fast.queue.get()
        for i in range(3):
            hub.publish("M", {"type": "tick", "seq": i})
            await fast.queue.get()  # the fast one keeps up
        assert slow.overflowed and slow.done.is_set()
        assert slow.queue.qsize() == 3  # bounded: the last message was not kept
        assert not fast.overflowed
        hub.leave(slow)
        assert hub.dropped == 1 and len(hub) == 1

    asyncio.run(scenario())


def test_results_go_only_to_the_wallets_followers() -> None:
    """publish_to reaches the subscribers following that wallet and nobody else."""

    async def scenario() -> None:
        hub = Hub(buffer=8)
        alice, bob, anonymous = hub.join("a"), hub.join("b"), hub.join("c")
        hub.follow(alice, "a" * 64)
        hub.follow(bob, "b" * 64)
        hub.publish_to("a" * 64, {"type": "bet_result", "bet_id": "1"})
        assert alice.queue.qsize() == 1 and bob.queue.qsize() == 0 and anonymous.queue.qsize() == 0
        assert hub.follows("a" * 64) and not hub.follows("c" * 64)
        hub.follow(alice, "c" * 64)  # switching wallets stops the old one's results
        hub.publish_to("a" * 64, {"type": "bet_result", "bet_id": "2"})
        assert alice.queue.qsize() == 1
        assert not hub.follows("a" * 64) and hub.follows("c" * 64)

    asyncio.run(scenario())


def test_a_market_channel_reaches_only_its_watchers() -> None:
    """Ticks of a market go to the connections watching it; idle ones get nothing."""

    async def scenario() -> None:
        hub = Hub(buffer=8)
        idle, btc, eth = hub.join("a"), hub.join("b"), hub.join("c")
        hub.watch(btc, "BTC", {}, lambda: _grid(1, []))
        hub.watch(eth, "ETH", {}, lambda: _grid(1, []))
        _drain(btc), _drain(eth)
        hub.publish("BTC", {"type": "tick"})
        assert [m["type"] for m in _drain(btc)] == ["tick"]
        assert _drain(eth) == [] and _drain(idle) == []
        hub.unwatch(btc, "BTC")
        hub.publish("BTC", {"type": "tick"})
        assert _drain(btc) == [] and not hub.watching("BTC")

    asyncio.run(scenario())


def test_snapshot_then_deltas_rebuild_every_grid_with_numbered_messages() -> None:
    """A client applying the deltas to its snapshot holds the published grid each time,
    and stream_seq counts the market's messages without a gap; watching again resyncs."""

    async def scenario() -> None:
        hub = Hub(buffer=64)
        sub = hub.join("a")
        grids = [
            _grid(100, [_cell(1, 5, "2.00"), _cell(2, 5, "3.10")]),
            _grid(101, [_cell(1, 5, "1.90"), _cell(2, 5, "3.10"), _cell(1, 6, "2.50")]),
            _grid(99, [_cell(1, 6, "2.40"), _cell(2, 6, "4.00")]),
            _grid(99, []),
        ]
        hub.watch(sub, "M", {"market": "M"}, lambda: grids[0])
        (snapshot,) = _drain(sub)
        assert snapshot["type"] == "snapshot" and snapshot["summary"] == {"market": "M"}
        held, last_seq = snapshot["grid"], snapshot["stream_seq"]
        for grid in grids[1:]:
            hub.publish("M", {"type": "tick", "price": grid["price"]})
            hub.publish_grid("M", grid)
            for message in _drain(sub):
                assert message["stream_seq"] == last_seq + 1
                last_seq = message["stream_seq"]
                if message["type"] == "grid_delta":
                    held = _apply(held, message)
            assert held == grid
        hub.watch(sub, "M", {}, lambda: grids[0])  # after a gap: the base, not a new grid
        (again,) = _drain(sub)
        assert again["stream_seq"] == last_seq and again["grid"] == grids[-1]

    asyncio.run(scenario())


def test_a_delta_carries_only_what_changed() -> None:
    """Unchanged cells are not repeated; changed ones send their multiplier alone."""
    old = _grid(100, [_cell(1, 5, "2.00"), _cell(2, 5, "3.10")])
    new = _grid(100, [_cell(1, 5, "2.00"), _cell(2, 5, "3.20")])
    delta = grid_delta(old, new)
    assert delta["added"] == [] and delta["removed"] == []
    assert delta["changed"] == {"r2c5": "3.20"}
