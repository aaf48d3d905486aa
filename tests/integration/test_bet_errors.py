"""Every row of the bet error table, against a real server."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import orjson
import pytest

from gateway.client.wallet import Wallet, read_headers
from gateway.protocol import parse_multiplier
from tests.gatewayproc import ADMIN_TOKEN, GatewayProcess, signed


def post(
    gw: GatewayProcess, body: Any, content_type: str = "application/json", **kw: Any
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with gw.client() as c:
        return c.post("/api/bets", content=content, headers={"content-type": content_type}, **kw)


def assert_error(r: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == r.headers["x-request-id"]
    assert error["message"]
    assert error.get("field") == field


@pytest.fixture(scope="module")
def rich(gateway: GatewayProcess) -> Wallet:
    wallet = Wallet.generate()
    gateway.fund(wallet, 1_000_000)
    return wallet


def test_accepted_bet_returns_receipt(gateway: GatewayProcess, rich: Wallet) -> None:
    """A valid bet gets 202 with Location and the documented receipt fields."""
    body = signed(rich, amount=250, min_multiplier="1.10")
    quoted = gateway.quote("BTC-USD", body["cell_id"])
    r = post(gateway, body)
    assert r.status_code == 202, r.text
    data = r.json()
    assert r.headers["location"] == f"/api/bets/{data['bet_id']}"
    assert "idempotent-replayed" not in r.headers
    assert data["wallet"] == rich.address and data["amount"] == 250
    # the gateway's own price, as its grid publishes it (re-priced at every 50 ms tick, so
    # it may have moved a little between the two requests)
    assert abs(parse_multiplier(data["multiplier"]) - parse_multiplier(quoted)) <= max(
        5, parse_multiplier(quoted) // 10
    )
    assert data["potential_payout"] == 250 * parse_multiplier(data["multiplier"]) // 100
    assert data["status"] == "accepted"
    assert isinstance(data["accepted_at"], int)
    assert data["balance"] <= 1_000_000 - 250


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json; charset=latin-1", "application/jsonx"]
)
def test_wrong_content_type_is_415(
    gateway: GatewayProcess, rich: Wallet, content_type: str
) -> None:
    """Anything but application/json (optionally charset=utf-8) is 415, before the size check."""
    r = post(gateway, b"x" * 5000, content_type=content_type)
    assert_error(r, 415, "unsupported_media_type")


def test_charset_utf8_is_accepted(gateway: GatewayProcess, rich: Wallet) -> None:
    """application/json; charset=utf-8 is a JSON body."""
    r = post(gateway, signed(rich), content_type="application/json; charset=UTF-8")
    assert r.status_code == 202, r.text


def test_body_over_limit_is_413(gateway: GatewayProcess) -> None:
    """A declared body over 4096 bytes is 413."""
    r = post(gateway, b"{" + b" " * 4100 + b"}")
    assert_error(r, 413, "payload_too_large")


def test_declared_oversize_is_413_before_the_body_arrives(gateway: GatewayProcess) -> None:
    """Content-Length over the limit is refused at once, without waiting for the body."""
    request = (
        b"POST /api/bets HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000\r\n\r\n{"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=3) as sock:
        sock.sendall(request)  # and nothing more: a reader of the body would wait for ever
        answer = b""
        while b"payload_too_large" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer


def test_chunked_body_over_limit_is_413(gateway: GatewayProcess) -> None:
    """A chunked body with no Content-Length is cut off at 4096 bytes too, counted across
    chunks that arrive apart (the pause makes the server see them as two reads)."""

    def chunks() -> Any:
        yield b" " * 3000
        time.sleep(0.3)
        yield b" " * 3000

    with gateway.client() as c:
        r = c.post("/api/bets", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b'"text"', b"{NaN: 1}"])
def test_non_object_is_400(gateway: GatewayProcess, body: bytes) -> None:
    """A body that is not a JSON object is 400 malformed_json."""
    assert_error(post(gateway, body), 400, "malformed_json")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wallet", "AB" * 32),
        ("wallet", "ab" * 31),
        ("market", "DOGE-USD"),
        ("cell_id", "cell-01-2"),
        ("cell_id", "cell-1-2\n"),
        ("cell_id", "cell-1234567890123456789-1"),
        ("amount", 0),
        ("amount", 10**12 + 1),
        ("amount", 1.0),
        ("amount", True),
        ("amount", "100"),
        ("amount", 10**30),
        ("nonce", ""),
        ("nonce", "a" * 65),
        ("nonce", "no spaces"),
        ("timestamp", -1),
        ("timestamp", 1.5e12),
        ("min_multiplier", "1.5"),
        ("min_multiplier", "01.50"),
        ("min_multiplier", 1.5),
        ("signature", "00" * 63),
        ("surprise", 1),
        # a bet is one level deep: nested values are refused where a scalar belongs
        ("wallet", {"value": 1}),
        ("amount", [1]),
        ("nonce", [[[]]]),
        ("signature", {"a": []}),
    ],
)
def test_invalid_field_is_422(
    gateway: GatewayProcess, rich: Wallet, field: str, value: Any
) -> None:
    """A value off its pattern, a wrong JSON type or an unknown field is 422 naming the field."""
    body = signed(rich)
    body[field] = value
    assert_error(post(gateway, body), 422, "invalid_field", field)


@pytest.mark.parametrize(
    "field", ["wallet", "market", "cell_id", "amount", "nonce", "timestamp", "signature"]
)
def test_missing_field_is_422(gateway: GatewayProcess, rich: Wallet, field: str) -> None:
    """Each required field, when missing, is 422 naming it."""
    body = signed(rich)
    del body[field]
    assert_error(post(gateway, body), 422, "invalid_field", field)


@pytest.mark.parametrize("offset_ms", [-4000, 700])
def test_clock_skew_inside_the_window_edges_is_accepted(
    gateway: GatewayProcess, rich: Wallet, offset_ms: int
) -> None:
    """A client clock 4 s behind or 0.7 s ahead (inside 5 s / 1 s) still places bets."""
    r = post(gateway, signed(rich, timestamp=int(time.time() * 1000) + offset_ms))
    assert r.status_code == 202, r.text


def test_deeply_nested_json_is_400(gateway: GatewayProcess) -> None:
    """Nesting deeper than the parsers allow, within the size limit, is 400 malformed_json."""
    deep = b"[" * 2000 + b"]" * 2000
    assert_error(post(gateway, deep), 400, "malformed_json")
    nested = b'{"wallet": ' + b"[" * 1500 + b"]" * 1500 + b"}"
    assert_error(post(gateway, nested), 400, "malformed_json")


@pytest.mark.parametrize("offset_ms", [-5600, 1600])
def test_stale_or_future_timestamp_is_401(
    gateway: GatewayProcess, rich: Wallet, offset_ms: int
) -> None:
    """Beyond 5000 ms old or 1000 ms ahead of the server clock is 401."""
    body = signed(rich, timestamp=int(time.time() * 1000) + offset_ms)
    assert_error(post(gateway, body), 401, "timestamp_out_of_window")


def test_bad_signature_is_401(gateway: GatewayProcess, rich: Wallet) -> None:
    """A signature by another key, or over other values, is 401."""
    body = signed(rich)
    body["signature"] = Wallet.generate().sign(b"something else")
    assert_error(post(gateway, body), 401, "invalid_signature")
    tampered = signed(rich, amount=100)
    tampered["amount"] = 101
    assert_error(post(gateway, tampered), 401, "invalid_signature")


def test_nonce_reused_for_other_message_is_409(gateway: GatewayProcess, rich: Wallet) -> None:
    """A nonce already accepted for a different canonical message is 409."""
    first = post(gateway, signed(rich, nonce="reuse-1", amount=100))
    assert first.status_code == 202
    r = post(gateway, signed(rich, nonce="reuse-1", amount=200))
    assert_error(r, 409, "nonce_reused")


def test_insufficient_funds_is_409(gateway: GatewayProcess) -> None:
    """A bet above the balance is 409, and a wallet never funded has nothing."""
    poor = Wallet.generate()
    assert_error(post(gateway, signed(poor)), 409, "insufficient_funds")
    gateway.fund(poor, 50)
    assert_error(post(gateway, signed(poor, amount=51)), 409, "insufficient_funds")
    assert post(gateway, signed(poor, amount=50)).status_code == 202


def test_min_multiplier_above_price_is_409(gateway: GatewayProcess, rich: Wallet) -> None:
    """A min_multiplier above the gateway's price is refused, and nothing is debited."""
    assert_error(
        post(gateway, signed(rich, min_multiplier="99.00")), 409, "multiplier_below_minimum"
    )


def test_wallet_rate_limit_is_429_with_headers(make_gateway: Any) -> None:
    """Past its burst of 20 a wallet gets 429 with Retry-After and RateLimit headers.

    The bucket refills one token in 50 s, so however slowly the machine answers the 21st
    bet finds it empty (at the default 10 a second a slow machine refills it in between)."""
    gw = make_gateway({"TAPGATE_WALLET_RATE": "0.02", "TAPGATE_WALLET_BURST": "20"}).start()
    wallet = Wallet.generate()
    gw.fund(wallet, 10_000)
    responses = [post(gw, signed(wallet, amount=1)) for _ in range(25)]
    statuses = [r.status_code for r in responses]
    assert statuses == [202] * 20 + [429] * 5
    r = responses[20]
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-policy"] == '"wallet";q=20;w=1000'
    assert r.headers["ratelimit"].startswith('"wallet";r=0;t=')


def test_address_rate_limit_is_429_before_signature(make_gateway: Any) -> None:
    """Past its burst an address is refused before any signature work, junk included."""
    gw = make_gateway({"TAPGATE_ADDRESS_RATE": "1", "TAPGATE_ADDRESS_BURST": "20"}).start()
    body = signed(Wallet.generate())
    body["signature"] = "00" * 64
    with httpx.Client(
        base_url=gw.url, transport=httpx.HTTPTransport(local_address="127.0.0.77")
    ) as c:
        codes = [
            c.post(
                "/api/bets",
                content=orjson.dumps(body),
                headers={"content-type": "application/json"},
            )
            for _ in range(25)
        ]
        other = c.get("/healthz")
    assert [r.json()["error"]["code"] for r in codes[:20]] == ["invalid_signature"] * 20
    assert_error(codes[-1], 429, "rate_limited")
    assert codes[-1].headers["ratelimit-policy"] == '"address";q=20;w=20'
    assert other.status_code == 200
    with gw.client() as c:  # another address is not affected
        r = c.post(
            "/api/bets", content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
    assert_error(r, 401, "invalid_signature")


@pytest.mark.parametrize(
    ("field", "value"),
    [("multiplier", "99.00"), ("potential_payout", 10**9), ("status", "won"), ("balance", 1)],
)
def test_client_cannot_set_server_owned_fields(
    gateway: GatewayProcess, rich: Wallet, field: str, value: object
) -> None:
    """A bet naming a field the gateway owns (price, payout, status) is 422 (API3)."""
    body = signed(rich)
    body[field] = value
    assert_error(post(gateway, body), 422, "invalid_field", field)


def test_unknown_route_and_method(gateway: GatewayProcess) -> None:
    """Unknown paths are 404 and wrong methods 405, in the error shape."""
    with gateway.client() as c:
        assert_error(c.get("/nope"), 404, "not_found")
        wrong = c.get("/api/bets")
        assert_error(wrong, 405, "method_not_allowed")
        assert wrong.headers["allow"] == "POST"


def test_security_headers_on_every_response(gateway: GatewayProcess) -> None:
    """Responses carry no-store, nosniff, frame-ancestors and no server banner."""
    with gateway.client() as c:
        for r in (c.get("/healthz"), c.get("/nope")):
            assert r.headers["cache-control"] == "no-store"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["content-security-policy"] == "frame-ancestors 'none'"
            assert "server" not in r.headers


def test_request_id_echoed_when_sane(gateway: GatewayProcess) -> None:
    """A sane X-Request-ID is echoed; an insane one is replaced."""
    with gateway.client() as c:
        assert (
            c.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
            == "abc-123"
        )
        other = c.get("/healthz", headers={"x-request-id": "bad id <script>"})
        assert other.headers["x-request-id"] != "bad id <script>"


def test_a_repeated_key_is_422_on_the_bet_and_admin_routes(gateway: GatewayProcess) -> None:
    """A body naming a key twice (the second time escaped) is refused, never read as the last
    one: a signed bet for 100 with a second "amount" of 5000, and an admin credit likewise;
    nothing is stored or credited."""
    wallet = Wallet.generate()
    gateway.fund(wallet, 10_000)
    bet = json.dumps(signed(wallet, amount=100))
    assert_error(post(gateway, (bet[:-1] + ', "\\u0061mount": 5000}').encode()), 422,
                 "invalid_field", "amount")  # fmt: skip
    credit = b'{"amount": 1, "reference": "dup-1", "amount": 1000000}'
    with gateway.client() as c:
        r = c.post(
            f"/admin/wallets/{wallet.address}/credit",
            content=credit,
            headers={"content-type": "application/json", "authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert_error(r, 422, "invalid_field", "amount")
        balance = c.get(f"/api/wallets/{wallet.address}", headers=read_headers(
            wallet, "GET", f"/api/wallets/{wallet.address}")).json()["balance"]  # fmt: skip
    assert balance == 10_000
