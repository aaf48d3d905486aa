"""Smoke test after an install, upgrade or rollback: health, readiness, one signed bet.

    python systemd/smoke.py --url http://127.0.0.1:8080 --token-file /etc/tapgate/admin.token

Funds a fresh wallet with a unique deposit reference, bets 1 on the likeliest open cell
and checks the receipt. Exit 0 when all passed; prints what failed otherwise.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

import httpx

from gateway.client import Wallet, bet_body, post_bet


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--market", default="BTC-USD")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    token = Path(args.token_file).read_text().strip()
    deadline = time.monotonic() + args.timeout
    with httpx.Client(base_url=args.url, timeout=5) as client:
        while True:  # a restarted gateway needs a few seconds of ticks before it prices
            try:
                ready = client.get("/readyz").status_code == 200
                grid = client.get(f"/api/markets/{args.market}/grid").json()
                if ready and grid["cells"]:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                print("smoke: the gateway did not become ready with an open grid", file=sys.stderr)
                return 1
            time.sleep(0.5)
        wallet = Wallet.generate()
        funded = client.post(
            f"/admin/wallets/{wallet.address}/credit",
            json={"amount": 100, "reference": f"smoke-{secrets.token_hex(8)}"},
            headers={"authorization": f"Bearer {token}"},
        )
        if funded.status_code != 200:
            print(f"smoke: funding failed: {funded.status_code} {funded.text}", file=sys.stderr)
            return 1
        cells = grid["cells"]
        last = max(c["col"] for c in cells)
        cell = min((c for c in cells if c["col"] == last), key=lambda c: float(c["multiplier"]))
        body = bet_body(wallet, market=args.market, cell_id=cell["cell_id"], amount=1)
        placed = post_bet(client, body)
        if placed.status_code != 202 or placed.json().get("status") != "accepted":
            print(f"smoke: bet failed: {placed.status_code} {placed.text}", file=sys.stderr)
            return 1
    print(f"smoke: ok (bet {placed.json()['bet_id']} on {cell['cell_id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
