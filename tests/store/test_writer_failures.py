"""The writer against a database that refuses writes: all or nothing, then recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from gateway.bets.pending import credit
from gateway.client.wallet import Wallet, bet_body
from gateway.config import Settings
from gateway.errors import Rejection
from gateway.protocol import BetRequest, parse_bet
from gateway.runtime import open_runtime
from gateway.store.invariants import ledger_violations
from tests.gatewayproc import IN_PROCESS, TEST_MARKET_ENV, markets_priced, open_cell, opened


def _request(wallet: Wallet, amount: int, nonce: str) -> BetRequest:
    """A parsed, signed bet on the open test cell."""
    body = bet_body(wallet, market="BTC-USD", cell_id=open_cell(), amount=amount, nonce=nonce)
    return parse_bet(orjson.dumps(body), {"BTC-USD"})


def test_failed_commit_refuses_whole_batch_then_recovers(tmp_path: Path) -> None:
    """When COMMIT cannot write, every bet of the batch gets 503 and nothing is kept."""
    settings = Settings.from_env(
        {
            **TEST_MARKET_ENV,
            **IN_PROCESS,
            "TAPGATE_DATA_DIR": str(tmp_path),
            "TAPGATE_BATCH_WAIT_MS": "20",
        }
    )
    wallets = [Wallet.generate() for _ in range(3)]

    async def scenario() -> None:
        rt = await open_runtime(settings)
        rt.start()
        await markets_priced(rt)
        try:
            for w in wallets:
                await credit(rt.writer, rt.accounts, w.address, 1000, f"d-{w.address[:8]}", 0)
            ((pages,),) = await rt.writer.execute("PRAGMA page_count")
            await rt.writer.execute(f"PRAGMA max_page_count = {pages}")
            placed = [
                rt.admission.place(_request(w, 100, "n1"), "127.0.0.1", _now())
                for w in wallets
                for _ in range(1)
            ]
            big = [
                rt.admission.place(_request(w, 10, f"big{i}"), "127.0.0.1", _now())
                for i, w in enumerate(wallets * 5)
            ]
            results = await asyncio.gather(*placed, *big, return_exceptions=True)
            assert all(isinstance(r, Rejection) and r.code == "overloaded" for r in results), (
                results
            )
            assert rt.writer.last_error is not None
            for w in wallets:
                assert (rt.accounts.balance(w.address), rt.accounts.reserved(w.address)) == (
                    1000,
                    0,
                )
            await rt.writer.execute("PRAGMA max_page_count = 1073741823")
            receipt, _bet_id, replayed = await rt.admission.place(
                _request(wallets[0], 100, "n1"), "127.0.0.1", _now()
            )
            assert not replayed and orjson.loads(receipt)["balance"] == 900
            assert rt.writer.last_error is None
        finally:
            await rt.close()

    asyncio.run(scenario())
    with opened(tmp_path / "tapgate.db") as conn:
        assert conn.execute("SELECT count(*) FROM bets").fetchone() == (1,)
        assert ledger_violations(conn) == []


def _now() -> float:
    import time

    return time.time()


def test_require_extensions_refuses_pure_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TAPGATE_REQUIRE_EXTENSIONS=1 stops start-up when the compiled fastpath is not loaded."""
    import fastpath

    monkeypatch.setattr(fastpath, "IMPLEMENTATION", "py")
    settings = Settings.from_env(
        {
            **TEST_MARKET_ENV,
            **IN_PROCESS,
            "TAPGATE_DATA_DIR": str(tmp_path),
            "TAPGATE_REQUIRE_EXTENSIONS": "1",
        }
    )
    with pytest.raises(RuntimeError, match="compiled fastpath"):
        asyncio.run(open_runtime(settings))


def test_writer_checkpoint_lets_the_wal_restart(tmp_path: Path) -> None:
    """Groups written after a background checkpoint are copied by the writer: the WAL restarts."""
    settings = Settings.from_env(
        {
            **TEST_MARKET_ENV,
            **IN_PROCESS,
            "TAPGATE_DATA_DIR": str(tmp_path),
            "TAPGATE_BATCH_WAIT_MS": "0",
            "TAPGATE_CHECKPOINT_INTERVAL_S": "3600",
            "TAPGATE_WALLET_BURST": "1000",
            "TAPGATE_ADDRESS_BURST": "1000",
        }
    )
    wallet = Wallet.generate()

    def frames() -> int:
        """Frames in the WAL, read by another connection (as the housekeeping task does)."""
        with opened(tmp_path / "tapgate.db") as conn:
            ((_busy, log, _done),) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return int(log)

    async def place(rt, count: int, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for i in range(count):
            await rt.admission.place(_request(wallet, 1, f"{prefix}{i}"), "127.0.0.1", _now())

    async def scenario() -> tuple[int, int]:
        rt = await open_runtime(settings)
        rt.start()
        await markets_priced(rt)
        try:
            await credit(rt.writer, rt.accounts, wallet.address, 10**6, "d", 0)
            await place(rt, 50, "a")
            before = frames()  # the background checkpoint
            await place(rt, 10, "b")  # written after it: not yet copied
            rt.writer.request_checkpoint()
            await place(rt, 1, "c")
            return before, frames()
        finally:
            await rt.close()

    before, after = asyncio.run(scenario())
    assert before > 100
    assert after < 20, (before, after)


def test_flusher_bug_refuses_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the flusher itself breaks, waiting bets are refused and new ones get 503 at once."""
    settings = Settings.from_env(
        {
            **TEST_MARKET_ENV,
            **IN_PROCESS,
            "TAPGATE_DATA_DIR": str(tmp_path),
            "TAPGATE_BATCH_WAIT_MS": "5",
        }
    )
    wallet = Wallet.generate()

    async def scenario() -> list[object]:
        rt = await open_runtime(settings)
        rt.start()
        await markets_priced(rt)
        try:
            await credit(rt.writer, rt.accounts, wallet.address, 1000, "d", 0)

            def broken(*_: object) -> None:
                raise RuntimeError("bug in the bookkeeping")

            monkeypatch.setattr(rt.accounts, "settle_debit", broken)
            first = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        rt.admission.place(_request(wallet, 1, f"n{i}"), "127.0.0.1", _now())
                        for i in range(3)
                    ),
                    return_exceptions=True,
                ),
                timeout=5,
            )
            later = await asyncio.gather(
                rt.admission.place(_request(wallet, 1, "later"), "127.0.0.1", _now()),
                return_exceptions=True,
            )
            return [*first, *later]
        finally:
            await rt.close()

    results = asyncio.run(scenario())
    assert all(isinstance(r, Rejection) and r.code == "overloaded" for r in results), results
