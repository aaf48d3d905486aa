"""The naive peer: the gateway's bet route as most services would first write it.

Starlette and aiosqlite, the gateway's own validation (``parse_bet``) and signature check
(``verify``), and one ``synchronous=FULL`` transaction per bet: insert the bet, debit the
wallet (balances start at a large credit so funding is not measured), commit, answer
202. No group commit, no in-memory state, no limits, no market rules. The performance
issue's target: the full gateway answers at least 5x its throughput in the same run
(``loadgen.py peer`` measures both).

    python bench/naive_peer.py PORT DATA_DIR
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import Rejection
from gateway.protocol import BetRequest, parse_bet, verify

MARKETS = frozenset(("BTC-USD", "ETH-USD"))
START_BALANCE = 10**15
SCHEMA = """
CREATE TABLE IF NOT EXISTS balances (wallet TEXT PRIMARY KEY, amount INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bets (
    id INTEGER PRIMARY KEY, wallet TEXT NOT NULL, nonce TEXT NOT NULL, market TEXT NOT NULL,
    cell TEXT NOT NULL, amount INTEGER NOT NULL, UNIQUE (wallet, nonce)
);
"""


def app(data_dir: Path) -> Starlette:
    db: dict[str, aiosqlite.Connection] = {}
    one_at_a_time = asyncio.Lock()  # one connection: its transactions must not interleave

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        conn = await aiosqlite.connect(data_dir / "peer.db", isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.executescript(SCHEMA)
        db["conn"] = conn
        yield
        await conn.close()

    async def place(request: Request) -> Response:
        try:
            bet = parse_bet(await request.body(), MARKETS)
            verify(bet.wallet, bet.message, bet.signature)
        except Rejection as exc:
            return Response(orjson.dumps({"error": exc.code}), 400, media_type="application/json")
        conn = db["conn"]
        async with one_at_a_time:
            bet_id = await _insert(conn, bet)
        body = orjson.dumps({"bet_id": bet_id, "status": "accepted"})
        return Response(body, 202, media_type="application/json")

    return Starlette(routes=[Route("/api/bets", place, methods=["POST"])], lifespan=lifespan)


async def _insert(conn: aiosqlite.Connection, bet: BetRequest) -> int | None:
    """One bet in one durable transaction: the row and the debit."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(
            "INSERT OR IGNORE INTO balances VALUES (?, ?)", (bet.wallet, START_BALANCE)
        )
        cursor = await conn.execute(
            "INSERT INTO bets (wallet, nonce, market, cell, amount) VALUES (?, ?, ?, ?, ?)",
            (bet.wallet, bet.nonce, bet.market, bet.cell_id, bet.amount),
        )
        await conn.execute(
            "UPDATE balances SET amount = amount - ? WHERE wallet = ?", (bet.amount, bet.wallet)
        )
        await conn.execute("COMMIT")
    except Exception:
        await conn.execute("ROLLBACK")
        raise
    return cursor.lastrowid


if __name__ == "__main__":
    uvicorn.run(
        app(Path(sys.argv[2])),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )
