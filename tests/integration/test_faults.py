"""Disk faults injected under a real gateway by tests/faults/faultfs.so (LD_PRELOAD)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.client.feeder import signed_tick
from gateway.client.wallet import Wallet
from tests.gatewayproc import JSON_HEADERS, ROOT, GatewayProcess, async_client, opened, signed
from tests.integration.scripted import ORACLE
from tests.load import (
    OPEN_LIMITS,
    Outcomes,
    check_acknowledged_stored_once,
    check_database,
    kill_under_load,
)

SHIM = ROOT / "tests" / "faults" / "faultfs.so"


@pytest.fixture
def faulty(make_gateway: Any, tmp_path: Path) -> Any:
    """A gateway whose writes to tapgate.db go through the shim; returns (gateway, control)."""
    if not SHIM.exists():
        pytest.fail(f"{SHIM} is missing: `make` builds it (gcc)")
    control = tmp_path / "faults"
    control.write_text("")

    def make(env: dict[str, str] | None = None, ready: bool = True) -> tuple[GatewayProcess, Path]:
        gw: GatewayProcess = make_gateway(
            {
                "LD_PRELOAD": str(SHIM),
                "FAULTFS_CONTROL": str(control),
                "FAULTFS_MATCH": "tapgate.db",
                **(env or {}),
            }
        )
        gw.start(markets_ready=ready)
        return gw, control

    return make


def _bet(gw: GatewayProcess, wallet: Wallet) -> httpx.Response:
    return gw.post_bet(signed(wallet, amount=10))


def test_ticks_refused_with_503_while_writes_fail(faulty: Any) -> None:
    """An oracle's ticks get 503 overloaded (not a 500) while the database cannot write."""
    gw, control = faulty(
        {
            "TAPGATE_MARKETS": "BTC-USD",
            "TAPGATE_MARKET_FEED": "external",
            "TAPGATE_MARKET_ORACLE_KEY": ORACLE.address,
        },
        ready=False,  # no ticks yet: the market is not priced
    )
    control.write_text("fsync=fail")
    with gw.client() as c:
        tick = signed_tick(ORACLE, "BTC-USD", 1, 10_050, int(time.time() * 1000))
        r = c.post("/admin/markets/BTC-USD/ticks", json={"ticks": [tick]})
    control.write_text("")
    assert r.status_code == 503 and r.json()["error"]["code"] == "overloaded", r.text
    assert "retry-after" in r.headers


@pytest.mark.parametrize("fault", ["fsync=fail", "pwrite=fail"])
def test_write_failures_refuse_bets_then_recover_by_themselves(faulty: Any, fault: str) -> None:
    """While fsync or pwrite fail: 503, nothing half-written; afterwards the same process
    takes bets again and every acknowledged bet is intact."""
    gw, control = faulty()
    wallet = Wallet.generate()
    gw.fund(wallet, 10_000)
    before = [_bet(gw, wallet) for _ in range(3)]
    assert [r.status_code for r in before] == [202] * 3
    control.write_text(fault)
    during = [_bet(gw, wallet) for _ in range(3)]
    assert [r.status_code for r in during] == [503] * 3
    assert {r.json()["error"]["code"] for r in during} == {"overloaded"}
    assert all("retry-after" in r.headers for r in during)
    with gw.client() as c:
        assert c.get("/readyz").status_code == 503
    control.write_text("")
    deadline = time.monotonic() + 10
    while (r := _bet(gw, wallet)).status_code != 202:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    with gw.client() as c:
        assert c.get("/readyz").status_code == 200
    gw.stop()
    check_database(gw.data_dir / "tapgate.db")
    with opened(gw.data_dir / "tapgate.db") as conn:
        stored = {
            row[0]
            for row in conn.execute("SELECT id FROM bets WHERE wallet = ?", (wallet.address,))
        }
        balance = conn.execute(
            "SELECT balance FROM accounts WHERE id = ?", (wallet.address,)
        ).fetchone()[0]
    acked = {int(x.json()["bet_id"]) for x in [*before, r]}
    assert acked <= stored
    assert balance == 10_000 - 10 * len(stored)


def test_slow_disk_backpressure_answers_503_before_the_stall_ends(faulty: Any) -> None:
    """fsync stalls until the test ends it: the bounded queue fills, and the overflow gets
    503 while the disk is still stalled (the test, not a clock, decides when it ends)."""
    capacity, batch_max = 16, 8
    gw, control = faulty(
        {
            "TAPGATE_QUEUE_CAPACITY": str(capacity),
            "TAPGATE_BATCH_MAX": str(batch_max),
            "TAPGATE_MARKET_TICK_INTERVAL_MS": "500",  # fewer tick commits queue for the disk
        }
    )
    wallets = [Wallet.generate() for _ in range(10)]
    for w in wallets:
        gw.fund(w, 100_000)
    bodies = [signed(w, amount=5) for w in wallets for _ in range(8)]
    # the stalled writer holds at most one group and a full queue: the rest is overflow
    overflow = len(bodies) - capacity - batch_max

    async def fire() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with async_client(gw.url, timeout=60) as client:
            sent = [
                asyncio.create_task(
                    client.post("/api/bets", content=orjson.dumps(body), headers=JSON_HEADERS)
                )
                for body in bodies
            ]
            deadline = time.monotonic() + 30  # a bound for a broken build, not a speed
            while sum(t.done() for t in sent) < overflow and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            during = [t.result() for t in sent if t.done()]
            control.write_text("")  # the stall ends
            return during, list(await asyncio.gather(*sent))

    control.write_text("fsync=hold")
    try:
        during, answers = asyncio.run(fire())
    finally:
        control.write_text("")
    assert len(during) >= overflow, f"{len(during)} answers while the disk stalled"
    assert {r.status_code for r in during} == {503}, "nothing is acknowledged before its fsync"
    assert {r.json()["error"]["code"] for r in during} == {"overloaded"}
    assert all("retry-after" in r.headers for r in during)
    assert {r.status_code for r in answers} == {202, 503}
    gw.stop()
    check_database(gw.data_dir / "tapgate.db")


@pytest.mark.parametrize("seed", [5, 6])
def test_sigkill_while_a_group_is_half_written_loses_nothing_acknowledged(
    faulty: Any, seed: int
) -> None:
    """SIGKILL while a group's pages trickle into the WAL (each pwrite slowed to 15 ms):
    every 202 is stored once, the half-written group is not, and the ledger holds."""
    gw, control = faulty({**OPEN_LIMITS, "TAPGATE_BATCH_WAIT_MS": "5"})
    wallets = [Wallet.generate() for _ in range(20)]
    for w in wallets:
        gw.fund(w, 10**9)
    outcomes = Outcomes()
    control.write_text("pwrite=delay:15")
    try:  # each group now spends most of its time in pwrite: the kill lands mid-write
        run = kill_under_load(gw, wallets, outcomes, clients=40, seed=seed, acked=40, jitter_s=0.3)
        asyncio.run(run)
    finally:
        control.write_text("")
    assert len(outcomes.acked) >= 40, len(outcomes.acked)
    assert outcomes.unknown, "the kill should leave a group in flight"
    check_acknowledged_stored_once(gw.data_dir / "tapgate.db", outcomes)
