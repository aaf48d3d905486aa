"""What validating a bet through gateway/wire.py costs, against msgspec doing the same.

    python3 -m venv /tmp/msv && /tmp/msv/bin/pip install msgspec orjson pynacl
    /tmp/msv/bin/python bench/wire_parse.py

msgspec is not a tapgate dependency (ADR 10 says why); this script is the measurement
behind that choice: one valid bet body, parse_bet (the table) and a msgspec Struct with
the same patterns and bounds, interleaved in one process, microseconds per parse.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gateway.protocol import parse_bet
from gateway.wire import CELL, MULTIPLIER, NONCE, SIGNATURE, WALLET


def _text(pattern: str) -> object:
    return Annotated[str, msgspec.Meta(pattern=f"^{pattern}$")]


class Bet(msgspec.Struct, forbid_unknown_fields=True):
    wallet: _text(WALLET.pattern)  # type: ignore[valid-type]
    market: Literal["BTC-USD", "ETH-USD"]
    cell_id: _text(CELL.pattern)  # type: ignore[valid-type]
    amount: Annotated[int, msgspec.Meta(ge=1, le=10**12)]
    nonce: _text(NONCE.pattern)  # type: ignore[valid-type]
    timestamp: Annotated[int, msgspec.Meta(ge=0, le=10**15)]
    signature: _text(SIGNATURE.pattern)  # type: ignore[valid-type]
    min_multiplier: _text(MULTIPLIER.pattern) | None = None  # type: ignore[valid-type]


def main() -> None:
    body = orjson.dumps(
        {
            "wallet": "a" * 64,
            "market": "BTC-USD",
            "cell_id": "cell-6500-123456",
            "amount": 100,
            "nonce": "abc-123",
            "timestamp": 1795348021520,
            "min_multiplier": "1.50",
            "signature": "b" * 128,
        }  # fmt: skip
    )
    markets = ("BTC-USD", "ETH-USD")
    decoder = msgspec.json.Decoder(Bet)
    n = 100_000
    for _ in range(3):
        table = timeit.timeit(lambda: parse_bet(body, markets), number=n) / n * 1e6
        struct = timeit.timeit(lambda: decoder.decode(body), number=n) / n * 1e6
        print(f"parse_bet (wire table) {table:.2f} us   msgspec Struct {struct:.2f} us")


if __name__ == "__main__":
    main()
