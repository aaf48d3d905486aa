"""What the repeated-key check costs the hot route: parse_bet with and without it.

    .venv/bin/python bench/repeated_keys.py

Both variants run interleaved in one process (9 rounds of 20,000 parses each), so the
ratio holds on a busy machine; the figures are per bet.
"""

from __future__ import annotations

import statistics
import time

import orjson

from gateway import protocol
from gateway.client.wallet import Wallet, bet_body


def main() -> None:
    body = orjson.dumps(
        bet_body(Wallet.generate(), market="BTC-USD", cell_id="cell-650-3", amount=100,
                 min_multiplier="1.50")
    )  # fmt: skip
    check = protocol._refuse_repeated_bet_keys
    runs: dict[str, list[float]] = {"without the check": [], "with the check": []}
    for _ in range(9):
        for name, runs_of in runs.items():
            protocol._refuse_repeated_bet_keys = (
                check if name == "with the check" else (lambda body, data: None)
            )
            started = time.perf_counter()
            for _ in range(20_000):
                protocol.parse_bet(body, {"BTC-USD"})
            runs_of.append((time.perf_counter() - started) / 20_000 * 1e6)
    protocol._refuse_repeated_bet_keys = check
    for name, values in runs.items():
        print(f"{name}: median {statistics.median(values):.2f} us per parse_bet")


if __name__ == "__main__":
    main()
