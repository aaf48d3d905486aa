"""The README's first-bet walk-through, with the project's own CLI against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.gatewayproc import ADMIN_TOKEN, GatewayProcess, open_cell, tapgate


def test_keygen_credit_bet_show(gateway: GatewayProcess, tmp_path: Path) -> None:
    """keygen, wallet credit, bet and wallet show work end to end."""
    key = tmp_path / "alice.key"
    made = tapgate("keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    address = made.stdout.strip()
    assert len(address) == 64
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert tapgate("keygen", "--out", str(key)).returncode == 1  # never overwrites a key

    env = {**gateway.env(), "TAPGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    credit = tapgate(
        "wallet",
        "credit",
        address,
        "1000",
        "--reference",
        "first-deposit",
        "--url",
        gateway.url,
        env=env,
    )
    assert credit.returncode == 0, credit.stdout + credit.stderr
    assert json.loads(credit.stdout)["balance"] == 1000

    bet = tapgate(
        "bet", "--key", str(key), "--cell", open_cell(), "--amount", "100", "--url", gateway.url
    )
    assert bet.returncode == 0, bet.stdout
    receipt = json.loads(bet.stdout)
    assert receipt["status"] == "accepted" and receipt["balance"] == 900

    show = tapgate("wallet", "show", "--key", str(key), "--bets", "--url", gateway.url)
    assert show.returncode == 0, show.stdout
    assert [b["bet_id"] for b in json.loads(show.stdout)["bets"]] == [receipt["bet_id"]]

    refused = tapgate(
        "bet", "--key", str(key), "--cell", open_cell(), "--amount", "5000", "--url", gateway.url
    )
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "insufficient_funds"


def test_credit_without_token_explains(tmp_path: Path) -> None:
    """wallet credit with no token anywhere says which variable to set."""
    env = {"PATH": "/usr/bin:/bin", "TAPGATE_ADMIN_TOKEN_FILE": str(tmp_path / "none")}
    run = tapgate("wallet", "credit", "a" * 64, "1", "--reference", "r", env=env)
    assert run.returncode == 2
    assert "TAPGATE_ADMIN_TOKEN" in run.stderr
