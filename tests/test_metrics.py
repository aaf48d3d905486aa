"""Metrics are built on an injected registry and move with the traffic."""

from __future__ import annotations

from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from gateway.client.wallet import Wallet, bet_body
from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.server.app import create_app
from tests.gatewayproc import IN_PROCESS, TEST_MARKET_ENV, client_markets_priced, open_cell


def test_fresh_registry_per_instance() -> None:
    """Two Metrics never share a registry, so tests and apps do not leak into each other."""
    a, b = Metrics(process=False), Metrics(process=False)
    a.bets_placed.inc()
    assert a.registry.get_sample_value("tapgate_bets_placed_total") == 1
    assert b.registry.get_sample_value("tapgate_bets_placed_total") == 0
    custom = CollectorRegistry()
    assert Metrics(custom, process=False).registry is custom


def test_bet_traffic_moves_metrics(tmp_path: Path) -> None:
    """A placed bet, a refusal and a group commit show up in the app's registry."""
    settings = Settings.from_env(
        {
            **TEST_MARKET_ENV,
            **IN_PROCESS,
            "TAPGATE_DATA_DIR": str(tmp_path),
            "TAPGATE_ADMIN_TOKEN": "t" * 20,
        }
    )
    app = create_app(settings)
    wallet = Wallet.generate()
    with TestClient(app, client=("127.0.0.1", 5000)) as client:
        client_markets_priced(client)
        r = client.post(
            f"/admin/wallets/{wallet.address}/credit",
            json={"amount": 500, "reference": "m1"},
            headers={"authorization": "Bearer " + "t" * 20},
        )
        assert r.status_code == 200
        body = orjson.dumps(bet_body(wallet, market="BTC-USD", cell_id=open_cell(), amount=200))
        headers = {"content-type": "application/json"}
        assert client.post("/api/bets", content=body, headers=headers).status_code == 202
        assert client.post("/api/bets", content=body, headers=headers).status_code == 202
        poor = bet_body(wallet, market="BTC-USD", cell_id=open_cell(), amount=400)
        assert (
            client.post("/api/bets", content=orjson.dumps(poor), headers=headers).status_code == 409
        )
        scrape = client.get("/metrics")
    value = app.metrics.registry.get_sample_value
    assert value("tapgate_bets_placed_total") == 1
    assert value("tapgate_bets_replayed_total") == 1
    assert value("tapgate_stake_minor_units_total") == 200
    assert value("tapgate_bets_rejected_total", {"code": "insufficient_funds"}) == 1
    assert value("tapgate_batch_size_count") == 1
    assert value("tapgate_http_requests_total", {"route": "place_bet", "status": "202"}) == 2
    assert value("tapgate_http_requests_total", {"route": "credit_wallet", "status": "200"}) == 1
    assert scrape.status_code == 200
    assert b"tapgate_batch_queue_depth" in scrape.content
    assert b"process_resident_memory_bytes" in scrape.content


def test_metrics_refused_outside_allowlist(tmp_path: Path) -> None:
    """/metrics answers only the admin allowlist."""
    settings = Settings.from_env(
        {**TEST_MARKET_ENV, **IN_PROCESS, "TAPGATE_DATA_DIR": str(tmp_path)}
    )
    with TestClient(create_app(settings), client=("192.0.2.1", 5000)) as client:
        r = client.get("/metrics")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
