"""The archiver: settled bets move to archive.db, stubs keep the ledger and nonces working."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.client.wallet import Wallet, bet_body
from gateway.config import Settings
from gateway.ops.archive import ArchiveError, archive_all, attached, copy_to_archive, due_ids
from gateway.store.invariants import ledger_violations
from tests.gatewayproc import (
    ADMIN_TOKEN,
    SLOW_MACHINE,
    GatewayProcess,
    async_client,
    opened,
    post_until_accepted,
    signed,
    tapgate,
    wait_for,
)
from tests.integration.scripted import COLUMN_MS, MARKET_ENV, ScriptedFeed, priced
from tests.load import Outcomes, check_database, drive

ENV = {**MARKET_ENV, "TAPGATE_RECEIVE_WINDOW_MS": "500", "TAPGATE_FUTURE_SKEW_MS": "0"}


def _settled_bets(gw: GatewayProcess, count: int) -> list[dict[str, Any]]:
    """``count`` bets on a far row, lost about two seconds later. The receive window is
    500 ms here and the column 0.6-1.1 s ahead: a bet the busy machine posts too late (401,
    409 cell_closed) is signed again for the column then ahead (``post_until_accepted``)."""
    wallet = Wallet.generate()
    gw.fund(wallet, 100_000)

    def sign(todo: list[int]) -> list[dict[str, Any]]:
        col = -(-(int(time.time() * 1000) + 600) // COLUMN_MS)
        cell = f"cell-104-{col}"
        return [bet_body(wallet, market="BTC-USD", cell_id=cell, amount=10) for _ in todo]

    accepted = post_until_accepted(gw.url, count, sign, retry=SLOW_MACHINE | {"cell_closed"})
    ids = orjson.dumps([int(r.json()["bet_id"]) for _, r in accepted]).decode()

    def settled() -> bool:
        with gw.database() as conn:
            (n,) = conn.execute(
                "SELECT count(*) FROM settlements WHERE bet_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchone()
        return bool(n == count)

    wait_for(settled, 30, "settlement")
    time.sleep(0.6)  # past the receive window
    return [body for body, _ in accepted]


# a short volatility window, so that ticks older than it can leave within the test
RETENTION_ENV = {**ENV, "TAPGATE_MARKET_VOL_WINDOW": "40", "TAPGATE_MARKET_VOL_SHORT_WINDOW": "5"}


def test_archive_through_the_running_gateway(make_gateway: Any) -> None:
    """Archived bets keep stubs; lookups, nonce uniqueness, ledger and check still hold;
    ticks beyond the volatility window move too, and the gateway starts again on the rest."""
    gw: GatewayProcess = make_gateway(RETENTION_ENV)
    gw.start(markets_ready=False)
    feed = ScriptedFeed(gw).start()
    try:
        priced(gw)
        bodies = _settled_bets(gw, 30)

        def ticks() -> int:
            with gw.database() as conn:
                return int(conn.execute("SELECT count(*) FROM ticks").fetchone()[0])

        # a busy machine's scripted feed can be slow: wait for ticks beyond the window
        wait_for(lambda: ticks() > 40, 60, "more ticks than the volatility window (40)")
        with gw.database() as conn:
            before = conn.execute(
                "SELECT id, receipt, signature FROM bets WHERE archive IS NULL"
            ).fetchall()
            ledger_before = conn.execute("SELECT count(*) FROM ledger").fetchone()
            ticks_before = conn.execute("SELECT count(*) FROM ticks").fetchone()[0]
        env = {"PATH": "/usr/bin:/bin", "TAPGATE_ADMIN_TOKEN": ADMIN_TOKEN, **RETENTION_ENV}
        run = tapgate("archive", "--older-than", "0s", "--url", gw.url, env=env, data=gw.data_dir)
        assert run.returncode == 0, run.stdout + run.stderr
        assert orjson.loads(run.stdout)["moved"] == 30
        ticks_moved = orjson.loads(run.stdout)["ticks_moved"]
        assert ticks_before > 40, ticks_before
        assert ticks_moved > 0
        again = tapgate("archive", "--older-than", "0s", "--url", gw.url, env=env, data=gw.data_dir)
        assert orjson.loads(again.stdout)["moved"] == 0
        ticks_moved += orjson.loads(again.stdout)["ticks_moved"]  # the feed went on meanwhile
        with gw.client() as c:  # the same signed bet again: its nonce is still taken
            r = c.post(
                "/api/bets",
                content=orjson.dumps(bodies[0]),
                headers={"content-type": "application/json"},
            )
        assert r.status_code in (401, 409), r.text
    finally:
        feed.stop()
        gw.stop()
    with gw.database() as conn:
        stubs = conn.execute(
            "SELECT id, receipt, signature, archive FROM bets WHERE archive IS NOT NULL"
        ).fetchall()
        assert len(stubs) == 30 and all(
            s[1] == "" and s[2] == "" and s[3] == "archive.db" for s in stubs
        )
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == ledger_before
        assert ledger_violations(conn) == []
    with opened(gw.data_dir / "archive.db") as archive:
        kept = dict(
            (i, (r, s)) for i, r, s in archive.execute("SELECT id, receipt, signature FROM bets")
        )
    for bet_id, receipt, signature in before:
        if bet_id in kept:
            assert kept[bet_id] == (receipt, signature)
    assert len(kept) == 30
    with opened(gw.data_dir / "archive.db") as archive:
        (archived_ticks,) = archive.execute("SELECT count(*) FROM ticks").fetchone()
    with gw.database() as conn:
        (kept_ticks,) = conn.execute("SELECT count(*) FROM ticks").fetchone()
        (recorded,) = conn.execute("SELECT sum(rows) FROM tick_archives").fetchone()
    assert archived_ticks == recorded == ticks_moved and kept_ticks >= 40
    check = tapgate("check", env={"PATH": "/usr/bin:/bin", **ENV}, data=gw.data_dir)
    assert check.returncode == 0, check.stdout
    gw.start(markets_ready=False)  # starts on the kept ticks (the volatility window)
    gw.stop()
    with opened(gw.data_dir / "tapgate.db") as conn:
        assert (
            conn.execute("SELECT job, ok FROM ops_runs WHERE job = 'archive'").fetchall()
            == [("archive", 1)] * 2
        )


def test_interrupted_archive_resumes_and_a_bad_copy_stubs_nothing(
    make_gateway: Any, tmp_path: Path
) -> None:
    """Rows copied before a crash are verified and stubbed on re-run; a mismatch refuses."""
    gw: GatewayProcess = make_gateway(ENV)
    gw.start(markets_ready=False)
    feed = ScriptedFeed(gw).start()
    try:
        priced(gw)
        _settled_bets(gw, 12)
    finally:
        feed.stop()
        gw.stop()
    db = gw.data_dir / "tapgate.db"
    archive = gw.data_dir / "archive.db"
    conn = sqlite3.connect(db, isolation_level=None)
    cutoff = int(time.time() * 1000)
    try:
        with attached(conn, archive):  # a run that stopped right after phase 1
            ids = due_ids(conn, cutoff, 0)
            assert len(ids) == 12
            copy_to_archive(conn, ids)
        with opened(archive) as a:  # and a copy that went bad meanwhile
            a.execute("UPDATE bets SET amount = amount + 1 WHERE id = ?", (ids[0],))
        with pytest.raises(ArchiveError, match="checksums differ"):
            archive_all(conn, archive, cutoff)
        stubs = conn.execute("SELECT count(*) FROM bets WHERE archive IS NOT NULL").fetchone()
        assert stubs == (0,)  # nothing stubbed: every receipt is still in the database
        with opened(archive) as a:
            a.execute("DELETE FROM bets WHERE id = ?", (ids[0],))
        assert archive_all(conn, archive, cutoff) == 12  # the re-run copies, verifies, stubs
        assert archive_all(conn, archive, cutoff) == 0
        assert ledger_violations(conn) == []
    finally:
        conn.close()


def test_backup_check_and_archive_during_load_cause_no_bet_errors(
    make_gateway: Any, tmp_path: Path
) -> None:
    """Under concurrent bet traffic, backup, check and archive succeed and every bet gets 202.

    Production-sized receive window (a loaded machine may hold a bet in the queue for
    seconds): the archive then moves only bets settled longer ago than the window, so the
    test waits for that instead of shortening it."""
    unlimited = {"TAPGATE_ADDRESS_RATE": "1000000", "TAPGATE_ADDRESS_BURST": "1000000"}
    gw: GatewayProcess = make_gateway({**MARKET_ENV, **unlimited})
    gw.start(markets_ready=False)
    feed = ScriptedFeed(gw).start()
    try:
        priced(gw)
        _settled_bets(gw, 40)  # something for the archive to move
        settled_by = time.monotonic()
        wallets = [Wallet.generate() for _ in range(20)]
        for w in wallets:
            gw.fund(w, 1_000_000)
        settings = Settings.from_env(gw.env())
        floor_s = (settings.receive_window_ms + settings.future_skew_ms) / 1000
        time.sleep(max(0.0, settled_by + floor_s + 0.5 - time.monotonic()))
        env = {"PATH": "/usr/bin:/bin", "TAPGATE_ADMIN_TOKEN": ADMIN_TOKEN, **MARKET_ENV}

        def jobs() -> list[subprocess.CompletedProcess[str]]:
            time.sleep(0.5)
            return [
                tapgate("backup", "--dir", str(tmp_path / "b"), env=env, data=gw.data_dir),
                tapgate("check", env=env, data=gw.data_dir),
                tapgate(
                    "archive", "--older-than", "0s", "--url", gw.url, env=env, data=gw.data_dir
                ),
            ]

        def far_cell() -> str:
            return f"cell-104-{(int(time.time() * 1000) + 2000) // COLUMN_MS}"

        async def scenario() -> tuple[Outcomes, list[subprocess.CompletedProcess[str]]]:
            outcomes = Outcomes()
            stop = asyncio.Event()
            traffic = asyncio.create_task(drive(gw.url, wallets, outcomes, stop, 16, 3, far_cell))
            results = await asyncio.to_thread(jobs)
            await asyncio.sleep(0.5)
            stop.set()
            await traffic
            return outcomes, results

        outcomes, results = asyncio.run(scenario())
    finally:
        feed.stop()
        gw.stop()
    for result in results:
        assert result.returncode == 0, result.args + [result.stdout, result.stderr]
    # the 40 settled bets at least, and traffic bets that settled meanwhile (a slow machine's
    # jobs take longer than their column): never a bet still open
    moved = orjson.loads(results[2].stdout)["moved"]
    assert moved >= 40
    with gw.database() as conn:
        archived = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'accepted') FROM bets "
            "WHERE archive IS NOT NULL"
        ).fetchone()
    assert archived == (moved, 0)
    assert len(outcomes.acked) > 100
    assert outcomes.refused == {} and not outcomes.unknown
    check_database(gw.data_dir / "tapgate.db")


def test_a_job_holding_the_write_lock_delays_bets_instead_of_failing_them(
    make_gateway: Any,
) -> None:
    """An ops job's own write (its ops_runs row) holding the lock for 0.5 s: the bet waits
    for it (the writer's busy timeout) and gets 202, not 503."""
    gw: GatewayProcess = make_gateway().start()
    wallet = Wallet.generate()
    gw.fund(wallet, 1_000)
    job = sqlite3.connect(gw.data_dir / "tapgate.db", isolation_level=None)
    try:
        job.execute("BEGIN IMMEDIATE")
        job.execute(
            "INSERT INTO ops_runs (job, started_at, finished_at, ok, detail) "
            "VALUES ('check', 0, 0, 1, 'holding the lock')"
        )

        async def bet_while_locked() -> tuple[int, float]:
            async with async_client(gw.url) as client:
                started = time.monotonic()
                pending = asyncio.create_task(
                    client.post(
                        "/api/bets",
                        content=orjson.dumps(signed(wallet, amount=10)),
                        headers={"content-type": "application/json"},
                    )
                )
                await asyncio.sleep(0.5)
                assert not pending.done(), "the bet was answered while the lock was held"
                job.execute("COMMIT")
                r = await pending
                return r.status_code, time.monotonic() - started

        status, took = asyncio.run(bet_while_locked())
    finally:
        job.close()
    assert status == 202
    assert took >= 0.5
    check_database(gw.data_dir / "tapgate.db")
