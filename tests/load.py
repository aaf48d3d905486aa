"""Concurrent signed-bet traffic for the failure tests: who got what answer."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.client import Wallet
from gateway.store.invariants import ledger_violations
from tests.gatewayproc import signed


@dataclass
class Outcomes:
    acked: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    refused: dict[tuple[str, str], int] = field(default_factory=dict)
    unknown: set[tuple[str, str]] = field(default_factory=set)
    unsent: set[tuple[str, str]] = field(default_factory=set)
    in_flight: int = 0


async def drive(
    url: str,
    wallets: list[Wallet],
    outcomes: Outcomes,
    stop: asyncio.Event,
    clients: int,
    seed: int,
    cell: Callable[[], str] | None = None,
) -> None:
    """``clients`` connections each posting bets back to back until ``stop`` is set.

    ``cell`` picks each bet's cell (default: the test markets' open cell)."""
    rng = random.Random(seed)
    counter = itertools.count()

    async def one(worker: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while not stop.is_set():
                wallet = wallets[rng.randrange(len(wallets))]
                nonce = f"s{seed}w{worker}n{next(counter)}"
                extra = {} if cell is None else {"cell_id": cell()}
                body = signed(wallet, nonce=nonce, amount=rng.randint(1, 50), **extra)
                key = (wallet.address, nonce)
                outcomes.in_flight += 1
                try:
                    r = await client.post(
                        "/api/bets",
                        content=orjson.dumps(body),
                        headers={"content-type": "application/json"},
                    )
                except httpx.ConnectError:
                    outcomes.unsent.add(key)
                    await asyncio.sleep(0.01)
                    continue
                except httpx.TransportError:
                    outcomes.unknown.add(key)
                    return
                finally:
                    outcomes.in_flight -= 1
                if r.status_code == 202:
                    outcomes.acked[key] = r.json()
                else:
                    outcomes.refused[key] = r.status_code

    await asyncio.gather(*(one(i) for i in range(clients)))


def stored_bets(db: Path) -> dict[tuple[str, str], tuple[str, bytes]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT wallet, nonce, id, receipt FROM bets").fetchall()
    return {(w, n): (str(i), str(r).encode()) for w, n, i, r in rows}


def check_database(db: Path) -> None:
    """Integrity, foreign keys and the ledger invariants all hold."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert ledger_violations(conn) == []
