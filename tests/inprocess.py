"""A gateway in process: the ASGI app under Starlette's TestClient (no server, no port)."""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.testclient import TestClient

from gateway.client.wallet import Wallet, bet_body
from gateway.config import Settings
from gateway.server.app import create_app
from tests.gatewayproc import IN_PROCESS, JSON_HEADERS, TEST_MARKET_ENV, open_cell

TOKEN = "t" * 20


def app_client(tmp_path: Path, **env: str) -> TestClient:
    """The app on a data directory, with the test markets, an admin token and ``env``."""
    settings = Settings.from_env(
        {
            **TEST_MARKET_ENV,
            **IN_PROCESS,
            "TAPGATE_DATA_DIR": str(tmp_path),
            "TAPGATE_ADMIN_TOKEN": TOKEN,
            **env,
        }
    )
    return TestClient(create_app(settings), client=("127.0.0.1", 5000))


def fund(client: TestClient, wallet: Wallet, amount: int) -> None:
    """Credit ``wallet`` through the admin route."""
    r = client.post(
        f"/admin/wallets/{wallet.address}/credit",
        json={"amount": amount, "reference": f"r-{wallet.address[:8]}"},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 200, r.text


def bet(client: TestClient, wallet: Wallet, amount: int) -> int:
    """Place a bet on the open test cell; the status code."""
    body = orjson.dumps(bet_body(wallet, market="BTC-USD", cell_id=open_cell(), amount=amount))
    r = client.post("/api/bets", content=body, headers=JSON_HEADERS)
    return int(r.status_code)
