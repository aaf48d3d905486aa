"""The log line of a real request: one JSON object with ids, route, status and timing."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson

from gateway.client.wallet import Wallet
from tests.gatewayproc import ADMIN_TOKEN, GatewayProcess, signed, wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _line(gateway: GatewayProcess, request_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for raw in gateway.log_path.read_text().splitlines():
            if request_id in raw:
                line: dict[str, object] = json.loads(raw)
                if line.get("event") == "request":
                    return line
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


def test_bet_request_log_line(gateway: GatewayProcess) -> None:
    """A bet's line has request, trace, wallet, bet and batch ids, and never the signature."""
    wallet = Wallet.generate()
    gateway.fund(wallet, 1000)
    body = signed(wallet)
    with gateway.client() as c:
        r = c.post(
            "/api/bets",
            content=orjson.dumps(body),
            headers={
                "content-type": "application/json",
                "x-request-id": "log-test-1",
                "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
            },
        )
    assert r.status_code == 202, r.text
    assert r.headers["x-request-id"] == "log-test-1"
    line = _line(gateway, "log-test-1")
    assert line["route"] == "place_bet" and line["status"] == 202 and line["method"] == "POST"
    assert line["trace_id"] == TRACE_ID
    assert line["wallet"] == wallet.address
    assert line["bet_id"] == r.json()["bet_id"]
    assert isinstance(line["batch_id"], int) and line["batch_id"] > 0
    assert isinstance(line["duration_ms"], float) and line["level"] == "info"
    assert "timestamp" in line
    logs = gateway.log_path.read_text()
    assert body["signature"] not in logs
    assert ADMIN_TOKEN not in logs


def test_refusal_and_bad_trace_headers(gateway: GatewayProcess) -> None:
    """A refused request logs its error code; an insane request id or traceparent is ignored."""
    with gateway.client() as c:
        r = c.post(
            "/api/bets",
            content=b"{}",
            headers={
                "content-type": "application/json",
                "x-request-id": "bad id with spaces",
                "traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
            },
        )
    assert r.status_code == 422
    generated = r.headers["x-request-id"]
    assert generated != "bad id with spaces"
    line = _line(gateway, generated)
    assert line["error"] == "invalid_field" and line["status"] == 422
    assert line["trace_id"] is None


def test_start_up_logs_where_it_listens_and_warns_of_unknown_settings(make_gateway: Any) -> None:
    """The start-up log names the URL the gateway listens on, and warns of a misspelled
    TAPGATE_* variable with the name it probably meant (the gateway still starts)."""
    gw: GatewayProcess = make_gateway({"TAPGATE_WALET_RATE": "5"}).start()
    # with workers the owner says it once all of them are connected, maybe after /healthz
    wait_for(lambda: '"listening"' in gw.log_path.read_text(), 60, "the listening line")
    lines = [json.loads(raw) for raw in gw.log_path.read_text().splitlines() if raw.startswith("{")]
    listening = [line for line in lines if line.get("event") == "listening"]
    assert listening and listening[0]["url"] == gw.url
    unknown = [line for line in lines if line.get("event") == "unknown_setting"]
    assert unknown == [
        {**unknown[0], "variable": "TAPGATE_WALET_RATE", "did_you_mean": "TAPGATE_WALLET_RATE"}
    ]
    assert unknown[0]["level"] == "warning"
