"""The bet body's fast path, pure-Python twin: there is none. Every bet goes through
gateway/wire.py's table (``_bets_c.pyx`` recognises the common well-formed body in one C
call and hands anything else to the same table)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = ["bet_fields"]

# wallet, market, cell_id, row, col, amount, nonce, timestamp, min_multiplier, signature
Fields = tuple[str, str, str, int, int, int, str, int, str | None, str]


def bet_fields(body: bytes, data: dict[str, Any], markets: Collection[str]) -> Fields | None:
    """None: the caller checks ``data`` against the table."""
    return None
