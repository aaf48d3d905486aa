"""Signed reads and admin funding against a real server."""

from __future__ import annotations

import time

import httpx
import pytest

from gateway.client.wallet import Wallet, read_headers
from tests.gatewayproc import ADMIN_TOKEN, GatewayProcess, signed
from tests.integration.test_bet_errors import assert_error, post


def read(gw: GatewayProcess, wallet: Wallet, target: str, **kw: object) -> httpx.Response:
    with gw.client() as c:
        return c.get(target, headers=read_headers(wallet, "GET", target, **kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def player(gateway: GatewayProcess) -> Wallet:
    wallet = Wallet.generate()
    gateway.fund(wallet, 10_000)
    for i in range(5):
        assert post(gateway, signed(wallet, nonce=f"n{i}", amount=100 + i)).status_code == 202
    return wallet


def test_wallet_summary(gateway: GatewayProcess, player: Wallet) -> None:
    """The owner reads balance and open exposure of their wallet."""
    r = read(gateway, player, f"/api/wallets/{player.address}")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["balance"] == 10_000 - sum(100 + i for i in range(5))
    assert data["open_bets"] == 5
    assert data["open_stake"] == sum(100 + i for i in range(5))
    bets = read(gateway, player, f"/api/wallets/{player.address}/bets").json()["bets"]
    assert data["open_exposure"] == sum(b["potential_payout"] for b in bets)
    assert data["open_exposure"] > data["open_stake"]


def test_bet_lookup_and_other_wallet_404(gateway: GatewayProcess, player: Wallet) -> None:
    """A bet is readable by its owner; to anyone else it does not exist."""
    listing = read(gateway, player, f"/api/wallets/{player.address}/bets?nonce=n3").json()
    (bet,) = listing["bets"]
    assert bet["nonce"] == "n3" and bet["amount"] == 103
    assert read(gateway, player, f"/api/bets/{bet['bet_id']}").json() == bet
    stranger = Wallet.generate()
    assert_error(read(gateway, stranger, f"/api/bets/{bet['bet_id']}"), 404, "not_found")
    assert_error(read(gateway, stranger, f"/api/wallets/{player.address}"), 404, "not_found")
    assert_error(read(gateway, player, "/api/bets/999999999"), 404, "not_found")


def test_listing_pages_newest_first(gateway: GatewayProcess, player: Wallet) -> None:
    """limit and before page through a wallet's bets, newest first."""
    base = f"/api/wallets/{player.address}/bets"
    first = read(gateway, player, f"{base}?limit=3").json()
    assert [b["nonce"] for b in first["bets"]] == ["n4", "n3", "n2"]
    second = read(gateway, player, f"{base}?limit=3&before={first['next_before']}").json()
    assert [b["nonce"] for b in second["bets"]] == ["n1", "n0"]
    assert second["next_before"] is None
    assert read(gateway, player, f"{base}?status=won").json()["bets"] == []


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=x", "status=maybe", "before=abc", "nonce=a%20b", "color=red"]
)
def test_listing_bad_query_is_422(gateway: GatewayProcess, player: Wallet, query: str) -> None:
    """Bad or unknown query parameters are 422 naming the parameter."""
    r = read(gateway, player, f"/api/wallets/{player.address}/bets?{query}")
    assert_error(r, 422, "invalid_field", query.split("=")[0])


def test_read_errors(gateway: GatewayProcess, player: Wallet) -> None:
    """Missing headers, a bad signature and a stale timestamp are each 401."""
    target = f"/api/wallets/{player.address}"
    with gateway.client() as c:
        assert_error(c.get(target), 401, "missing_credentials")
        headers = read_headers(player, "GET", target)
        headers["X-Tapgate-Signature"] = "00" * 64
        assert_error(c.get(target, headers=headers), 401, "invalid_signature")
        other_path = read_headers(player, "GET", target + "/bets")
        assert_error(c.get(target, headers=other_path), 401, "invalid_signature")
    stale = int(time.time() * 1000) - 6000
    assert_error(read(gateway, player, target, timestamp=stale), 401, "timestamp_out_of_window")


def _credit(
    gw: GatewayProcess, wallet: str, body: object, token: str | None = ADMIN_TOKEN, **kw: object
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with gw.client(**kw) as c:
        return c.post(f"/admin/wallets/{wallet}/credit", json=body, headers=headers)


def test_credit_is_idempotent_by_reference(gateway: GatewayProcess) -> None:
    """The same reference credits once; reusing it for another amount is 409."""
    wallet = Wallet.generate().address
    first = _credit(gateway, wallet, {"amount": 500, "reference": "dep-1"})
    assert first.status_code == 200 and first.json()["balance"] == 500
    again = _credit(gateway, wallet, {"amount": 500, "reference": "dep-1"})
    assert again.json()["balance"] == 500
    assert again.headers["idempotent-replayed"] == "true"
    other = _credit(gateway, wallet, {"amount": 501, "reference": "dep-1"})
    assert_error(other, 409, "reference_conflict")


def test_credit_needs_token_and_valid_body(gateway: GatewayProcess) -> None:
    """No token or a wrong one is 401; bad fields are 422."""
    wallet = Wallet.generate().address
    assert_error(
        _credit(gateway, wallet, {"amount": 1, "reference": "r"}, token=None), 401, "unauthorized"
    )
    assert_error(
        _credit(gateway, wallet, {"amount": 1, "reference": "r"}, token="x" * 30),
        401,
        "unauthorized",
    )
    assert_error(
        _credit(gateway, wallet, {"amount": 0, "reference": "r"}), 422, "invalid_field", "amount"
    )
    assert_error(
        _credit(gateway, wallet, {"amount": 1, "reference": "r r"}),
        422,
        "invalid_field",
        "reference",
    )
    assert_error(
        _credit(gateway, wallet, {"amount": 1, "reference": "r", "x": 1}), 422, "invalid_field", "x"
    )
    assert_error(
        _credit(gateway, "ZZ", {"amount": 1, "reference": "r"}), 422, "invalid_field", "wallet"
    )


def test_admin_refused_outside_allowlist(make_gateway: object) -> None:
    """An address outside TAPGATE_ADMIN_ALLOW is 403 even with the right token."""
    gw = make_gateway({"TAPGATE_ADMIN_ALLOW": "127.0.0.1/32"}).start()  # type: ignore[operator]
    wallet = Wallet.generate().address
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    r = _credit(gw, wallet, {"amount": 1, "reference": "r"}, transport=transport)
    assert_error(r, 403, "forbidden")
    assert _credit(gw, wallet, {"amount": 1, "reference": "r"}).status_code == 200


def test_reads_are_rate_limited_per_wallet_across_addresses(make_gateway: object) -> None:
    """A wallet's signed reads from three addresses share one wallet bucket: past the burst
    (3) the fourth read is 429 reads-wallet, though its address has tokens left."""
    gw: GatewayProcess = make_gateway(  # type: ignore[operator]
        {"TAPGATE_READ_RATE": "0.01", "TAPGATE_READ_BURST": "3"}
    )
    gw.start(markets_ready=False)  # its readiness probe reads /api/markets, a read
    wallet = Wallet.generate()
    target = f"/api/wallets/{wallet.address}"
    codes = []
    for source in ["127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"]:
        with httpx.Client(
            base_url=gw.url, transport=httpx.HTTPTransport(local_address=source)
        ) as c:
            codes.append(c.get(target, headers=read_headers(wallet, "GET", target)))
    assert [r.status_code for r in codes] == [200, 200, 200, 429], codes[-1].text
    assert_error(codes[-1], 429, "rate_limited")
    assert codes[-1].headers["ratelimit-policy"].startswith('"reads-wallet";q=3;')
    assert int(codes[-1].headers["retry-after"]) >= 1


def test_admin_routes_are_rate_limited_per_address(make_gateway: object) -> None:
    """Past TAPGATE_ADMIN_BURST an operator address gets 429 admin-address, token or not."""
    gw: GatewayProcess = make_gateway(  # type: ignore[operator]
        {"TAPGATE_ADMIN_RATE": "0.01", "TAPGATE_ADMIN_BURST": "3"}
    )
    gw.start(markets_ready=False)
    wallet = Wallet.generate().address
    codes = [
        _credit(gw, wallet, {"amount": 10, "reference": f"dep-{i}"}).status_code for i in range(3)
    ]
    refused = _credit(gw, wallet, {"amount": 10, "reference": "dep-3"})
    assert codes == [200, 200, 200]
    assert_error(refused, 429, "rate_limited")
    assert refused.headers["ratelimit-policy"].startswith('"admin-address";q=3;')
