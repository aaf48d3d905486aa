"""Opening the database: creating and migrating it, the checkpointer and the readers.

The writer's own connection lives on its thread (``store/writer.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from gateway.store.schema import connect_pragmas, migrate

__all__ = ["open_checkpointer", "open_reader", "prepare"]


def prepare(path: Path, synchronous: str = "FULL") -> int:
    """Create or migrate the database file in WAL mode; return the version found."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(connect_pragmas(synchronous))
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{path}: could not switch to WAL mode (got {mode})")
        return migrate(conn)
    finally:
        conn.close()


async def open_checkpointer(path: Path, synchronous: str) -> aiosqlite.Connection:
    """The connection that runs WAL checkpoints, so they never run inside the writer's commits."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    await conn.executescript(connect_pragmas(synchronous) + "PRAGMA wal_autocheckpoint = 0;")
    return conn


async def open_reader(path: Path) -> aiosqlite.Connection:
    """A read-only connection for short read transactions."""
    uri = path.absolute().as_uri() + "?mode=ro"
    conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    await conn.executescript(connect_pragmas("NORMAL") + "PRAGMA query_only = ON;")
    return conn
