"""Concurrent signed-bet traffic for the failure tests: who got what answer."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.client.wallet import Wallet
from gateway.store.invariants import ledger_violations
from tests.gatewayproc import GatewayProcess, async_client, opened, signed

OPEN_LIMITS = {  # rate limits out of the way of a load test
    "TAPGATE_ADDRESS_RATE": "100000",
    "TAPGATE_ADDRESS_BURST": "100000",
    "TAPGATE_WALLET_RATE": "100000",
    "TAPGATE_WALLET_BURST": "100000",
}


@dataclass
class Outcomes:
    acked: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    refused: dict[tuple[str, str], int] = field(default_factory=dict)
    unknown: set[tuple[str, str]] = field(default_factory=set)
    unsent: set[tuple[str, str]] = field(default_factory=set)
    in_flight: int = 0
    frozen: bool = False  # set when the gateway is stopped: later requests get no answer
    sent_frozen: int = 0  # requests begun after that, each unanswerable


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
        async with async_client(url) as client:
            while not stop.is_set():
                wallet = wallets[rng.randrange(len(wallets))]
                nonce = f"s{seed}w{worker}n{next(counter)}"
                extra = {} if cell is None else {"cell_id": cell()}
                body = signed(wallet, nonce=nonce, amount=rng.randint(1, 50), **extra)
                key = (wallet.address, nonce)
                outcomes.in_flight += 1
                if outcomes.frozen:
                    outcomes.sent_frozen += 1
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


async def kill_under_load(
    gw: GatewayProcess,
    wallets: list[Wallet],
    outcomes: Outcomes,
    *,
    clients: int,
    seed: int,
    acked: int,
    jitter_s: float,
) -> int:
    """Drive ``clients`` connections until ``acked`` bets are acknowledged (30 s at most),
    wait a seeded random moment of up to ``jitter_s``, freeze the gateway, wait until every
    client has a request out (10 s at most), SIGKILL it and let the clients see it; return
    how many requests were in flight at the kill.

    Freezing first makes the kill land on unanswered work whatever the machine's speed: a
    plain SIGKILL can fall in the instant after a group's answers left and before the
    clients sent more, and then there is nothing in flight to lose. A request begun after
    the freeze is certainly unanswered; the kill waits for one."""
    stop = asyncio.Event()
    traffic = asyncio.create_task(drive(gw.url, wallets, outcomes, stop, clients, seed))
    deadline = time.monotonic() + 30
    while len(outcomes.acked) < acked and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(random.Random(seed).uniform(0.0, jitter_s))
    frozen = gw.freeze()
    outcomes.frozen = True
    deadline = time.monotonic() + 10
    # every client with a request out, and at least one begun after the freeze: a request
    # out at the freeze may have its answer already in the client's socket, unread (a
    # client slower than the gateway), and then the kill would find nothing unanswered
    while (
        outcomes.in_flight < clients or not outcomes.sent_frozen
    ) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # what began after the freeze reaches its socket (bounded)
    in_flight = outcomes.in_flight
    gw.crash(frozen)
    stop.set()
    await asyncio.wait_for(traffic, 30)
    return in_flight


def stored_bets(db: Path) -> dict[tuple[str, str], tuple[str, bytes]]:
    with opened(db) as conn:
        rows = conn.execute("SELECT wallet, nonce, id, receipt FROM bets").fetchall()
    return {(w, n): (str(i), str(r).encode()) for w, n, i, r in rows}


def check_database(db: Path) -> None:
    """Integrity, foreign keys and the ledger invariants all hold."""
    with opened(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert ledger_violations(conn) == []


def check_acknowledged_stored_once(db: Path, outcomes: Outcomes) -> None:
    """Every 202 is stored once with its receipt, no refused bet is, nothing else appears,
    and the database's invariants hold."""
    stored = stored_bets(db)
    for key, receipt in outcomes.acked.items():
        assert key in stored, f"acknowledged bet {key} lost"
        bet_id, stored_receipt = stored[key]
        assert bet_id == receipt["bet_id"]
        assert orjson.loads(stored_receipt) == receipt
    assert not set(outcomes.refused) & set(stored), "a refused bet was stored"
    assert set(stored) <= set(outcomes.acked) | outcomes.unknown
    check_database(db)
