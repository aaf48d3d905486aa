"""What a browser meets: the page and explorer under their policy, and dev funding that
cannot be reached unless a developer switched it on, on loopback, below its cap."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.http.web import PAGE_POLICY
from gateway.server.app import create_app
from gateway.server.serve import refuse_dev_funding_off_loopback
from tests.gatewayproc import IN_PROCESS, TEST_MARKET_ENV
from tests.inprocess import app_client

WALLET = "ab" * 32


def _fund(client: TestClient, amount: int, wallet: str = WALLET) -> object:
    return client.post("/dev/fund", json={"wallet": wallet, "amount": amount})


def test_dev_funding_is_404_unless_switched_on(tmp_path: Path) -> None:
    """With TAPGATE_DEV_FUNDING off (the default) the route looks like no route at all."""
    with app_client(tmp_path) as client:
        r = client.post("/dev/fund", json={"wallet": WALLET, "amount": 10})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_dev_funding_is_404_to_a_peer_off_loopback(tmp_path: Path) -> None:
    """Switched on, it still answers 404 to a client that is not on loopback."""
    settings = Settings.from_env(
        {
            **TEST_MARKET_ENV,
            **IN_PROCESS,
            "TAPGATE_DATA_DIR": str(tmp_path),
            "TAPGATE_DEV_FUNDING": "1",
        }  # fmt: skip
    )
    with TestClient(create_app(settings), client=("203.0.113.9", 5000)) as client:
        assert client.post("/dev/fund", json={"wallet": WALLET, "amount": 10}).status_code == 404


def test_dev_funding_credits_with_ledger_rows_up_to_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On loopback it credits (a ledger row per funding), is logged, and stops at the cap."""
    env = {"TAPGATE_DEV_FUNDING": "1", "TAPGATE_DEV_FUNDING_CAP": "1500"}
    with app_client(tmp_path, **env) as client:
        first = client.post("/dev/fund", json={"wallet": WALLET, "amount": 1000})
        assert first.status_code == 200 and first.json()["balance"] == 1000
        over = client.post("/dev/fund", json={"wallet": WALLET, "amount": 501})
        assert over.status_code == 422 and over.json()["error"]["field"] == "amount"
        assert "500" in over.json()["error"]["message"]
        assert (
            client.post("/dev/fund", json={"wallet": WALLET, "amount": 500}).json()["balance"]
            == 1500
        )
        unknown = client.post("/dev/fund", json={"wallet": WALLET, "amount": 1, "x": 1})
        assert unknown.status_code == 422
    logged = [line for line in capsys.readouterr().out.splitlines() if " dev_funding " in line]
    assert len(logged) == 2 and all("warning" in line and WALLET in line for line in logged)
    with sqlite3.connect(tmp_path / "tapgate.db") as db:
        rows = db.execute(
            "SELECT amount FROM ledger WHERE account = ? AND kind = 'deposit'", (WALLET,)
        ).fetchall()
    assert sorted(r[0] for r in rows) == [500, 1000]


def _fund_button_shown(client: TestClient) -> bool:
    page = client.get("/")
    assert page.status_code == 200 and PAGE_POLICY in page.headers["content-security-policy"]
    found = re.search(r'<button id="fund"[^>]*>', page.text)
    assert found is not None
    return " hidden" not in found.group(0)


def test_the_page_offers_funding_only_where_the_route_answers(tmp_path: Path) -> None:
    """The Fund button is in the page for a loopback peer with funding on; with funding
    off, or to another address, it is hidden (/dev/fund would answer 404)."""
    with app_client(tmp_path / "off") as client:
        assert not _fund_button_shown(client)
    with app_client(tmp_path / "on", TAPGATE_DEV_FUNDING="1") as client:
        assert _fund_button_shown(client)
        remote = TestClient(client.app, client=("203.0.113.9", 5000))
        assert not _fund_button_shown(remote)


def test_serve_refuses_dev_funding_on_a_reachable_address() -> None:
    """A gateway bound beyond loopback never starts with development funding."""
    on = Settings.from_env({"TAPGATE_DEV_FUNDING": "1"})
    with pytest.raises(ConfigError, match="TAPGATE_DEV_FUNDING"):
        refuse_dev_funding_off_loopback(on, "0.0.0.0")
    refuse_dev_funding_off_loopback(on, "127.0.0.1")
    refuse_dev_funding_off_loopback(on, "::1")
    refuse_dev_funding_off_loopback(Settings.from_env({}), "0.0.0.0")


def test_page_and_explorer_carry_the_strict_policy(tmp_path: Path) -> None:
    """/, /docs and the package's files are served with a CSP that allows only this
    origin's scripts, styles and connections."""
    with app_client(tmp_path) as client:
        for path in ("/", "/docs", "/static/tapgate.mjs", "/docs/assets/swagger-ui.css"):
            r = client.get(path)
            assert r.status_code == 200, path
            policies = r.headers.get_list("content-security-policy")
            assert PAGE_POLICY in policies, (path, policies)
        assert "script-src 'self';" in PAGE_POLICY and "unsafe" not in PAGE_POLICY


def test_the_page_and_explorer_can_be_switched_off(tmp_path: Path) -> None:
    """TAPGATE_WEB_CLIENT=0 and TAPGATE_API_DOCS=0 leave no page, no files, no explorer."""
    with app_client(tmp_path, TAPGATE_WEB_CLIENT="0", TAPGATE_API_DOCS="0") as client:
        for path in ("/", "/static/tapgate.mjs", "/docs", "/docs/assets/swagger-ui.css"):
            assert client.get(path).status_code == 404, path
        paths = client.get("/openapi.json").json()["paths"]
        assert "/" not in paths and "/docs" not in paths


def test_frontend_doc_shows_the_tested_quickstart() -> None:
    """docs/FRONTEND.md holds docs/frontend/quickstart.mjs verbatim (Node runs the file)."""
    root = Path(__file__).resolve().parents[2]
    quickstart = (root / "docs" / "frontend" / "quickstart.mjs").read_text().strip()
    assert quickstart in (root / "docs" / "FRONTEND.md").read_text()


def test_every_schema_name_is_defined_once() -> None:
    """Request bodies, answers and stream messages never share a name in /openapi.json."""
    from gateway.http.schemas import RESPONSES, STREAM_MESSAGES
    from gateway.wire import ARCHIVE, BET, CREDIT, DEV_FUNDING, HALT, SUBSCRIBE, TICKS, WATCH

    bodies = [b.title for b in (ARCHIVE, BET, CREDIT, DEV_FUNDING, HALT, SUBSCRIBE, TICKS, WATCH)]
    names = bodies + list(RESPONSES) + list(STREAM_MESSAGES)
    assert len(names) == len(set(names))
