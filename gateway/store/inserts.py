"""Many rows in one INSERT, every value bound; and the writer's transactions.

A statement is one ``sqlite3_step``: the thread that runs it takes the GIL back a handful
of times for the whole batch instead of once a row (the event loop holds it in between),
and outside a transaction the statement commits by itself. Bound values cost SQLite 29-37%
less CPU a row than the same rows read out of one JSON array (bench/group_statement.py,
ADR 14). Past SQLite's bound-value limit the rows go in several statements inside one
transaction: all or nothing either way.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Insert", "transaction"]

T = TypeVar("T")


def transaction(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
    """Run ``work`` inside BEGIN IMMEDIATE ... COMMIT; roll back unless SQLite already did."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself on SQLITE_FULL, IOERR, NOMEM
            conn.execute("ROLLBACK")
        raise
    return result


@dataclass(frozen=True)
class Insert:
    """``INSERT INTO table (columns) VALUES (?, ...), ... tail``: a row is one value per
    column, and ``run`` takes the rows flattened into one list."""

    table: str
    columns: tuple[str, ...]
    tail: str = ""  # e.g. an ON CONFLICT clause

    @property
    def width(self) -> int:
        return len(self.columns)

    def run(self, conn: sqlite3.Connection, values: Sequence[Any]) -> int:
        """Insert the rows; return how many the statement inserted (not its triggers)."""
        width = self.width
        step = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width * width
        if len(values) <= step:
            return conn.execute(_sql(self, len(values) // width), values).rowcount

        def in_chunks() -> int:
            stored = 0
            for at in range(0, len(values), step):
                chunk = values[at : at + step]
                stored += conn.execute(_sql(self, len(chunk) // width), chunk).rowcount
            return stored

        return transaction(conn, in_chunks)


@functools.lru_cache(maxsize=64)
def _sql(insert: Insert, count: int) -> str:
    """The statement for ``count`` rows; the connection keeps it prepared by its text (a
    group at saturation is always the same length)."""
    row = "(" + ", ".join(["?"] * insert.width) + ")"
    rows = ", ".join([row] * count)
    columns = ", ".join(insert.columns)
    # only our own table and column names and placeholders are formatted in: values are bound
    return f"INSERT INTO {insert.table} ({columns}) VALUES {rows} {insert.tail}"  # noqa: S608 # nosec B608
