"""Every header and query parser of the signed reads answers a 4xx to any bytes a client can
send, never a 500 (over real sockets: http.client sends header values as latin-1 bytes)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.client.wallet import Wallet, read_headers
from tests.gatewayproc import GatewayProcess

WALLET = "ab" * 32
PLAYER = Wallet.generate()
# what a header can carry on the wire (latin-1), Unicode digits such as '²' included
HEADER_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=40)
# digits of every script (category Nd: '٣'; No: '²'), which str.isdigit takes and int may not
DIGITS = st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=4)
QUERY_TEXT = st.one_of(st.text(max_size=40), DIGITS)
FIXTURE = [HealthCheck.function_scoped_fixture]  # the module's one gateway serves every example


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose read limits never get in the way of the examples."""
    env = {"TAPGATE_READ_RATE": "100000", "TAPGATE_READ_BURST": "100000"}
    gw = GatewayProcess(Path(tmp_path_factory.mktemp("parsers")) / "data", env).start()
    yield gw
    gw.stop()


def _get(gw: GatewayProcess, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        conn.request("GET", target, headers=headers)  # str values go out as latin-1
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_unicode_digit_timestamp_is_401_not_500(roomy: GatewayProcess) -> None:
    """'²' passes str.isdigit; the timestamp parser accepts ASCII digits only."""
    headers = {"X-Tapgate-Wallet": WALLET, "X-Tapgate-Timestamp": "²",
               "X-Tapgate-Signature": "0" * 128}  # fmt: skip
    status, body = _get(roomy, f"/api/wallets/{WALLET}", headers)
    assert (status, orjson.loads(body)["error"]["code"]) == (401, "timestamp_out_of_window")


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE)
@given(
    wallet=st.one_of(st.just(WALLET), HEADER_TEXT),  # well-formed, so the next parser runs
    stamp=st.one_of(HEADER_TEXT, DIGITS.filter(lambda s: all(ord(c) < 256 for c in s))),
    signature=st.one_of(st.just("0" * 128), HEADER_TEXT),
)
def test_any_signed_read_headers_are_4xx(
    roomy: GatewayProcess, wallet: str, stamp: str, signature: str
) -> None:
    """Arbitrary X-Tapgate-* values: refused with a 4xx (by the gateway, or by the HTTP
    parser for bytes no header may hold)."""
    headers = {"X-Tapgate-Wallet": wallet, "X-Tapgate-Timestamp": stamp,
               "X-Tapgate-Signature": signature}  # fmt: skip
    status, _ = _get(roomy, f"/api/wallets/{WALLET}/bets", headers)
    assert 400 <= status < 500


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURE)
@given(name=st.sampled_from(["limit", "before", "status", "nonce", "other"]), value=QUERY_TEXT)
def test_any_listing_query_is_422_or_an_answer(
    roomy: GatewayProcess, name: str, value: str
) -> None:
    """Arbitrary query values on a correctly signed bet listing: 200 or 422, never a 500."""
    target = f"/api/wallets/{PLAYER.address}/bets?{urlencode({name: value})}"
    status, body = _get(roomy, target, read_headers(PLAYER, "GET", target))
    assert status in (200, 422), body


HEADERS = ["X-Request-Id", "traceparent", "Content-Type", "Content-Length", "X-Forwarded-For",
           "Origin"]  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE)
@given(name=st.sampled_from(HEADERS), value=st.one_of(HEADER_TEXT, DIGITS.filter(
    lambda s: all(ord(c) < 256 for c in s))))  # fmt: skip
def test_any_other_header_is_answered_without_a_500(
    roomy: GatewayProcess, name: str, value: str
) -> None:
    """Arbitrary values of every other header the gateway reads, on a bet and on a public
    read: answered (2xx or 4xx), never a 500; a request id echoed back is always a sane one
    (uvicorn's own 400 for bytes HTTP forbids has none)."""
    for method, target, body in (("POST", "/api/bets", b"{}"), ("GET", "/api/markets", None)):
        conn = http.client.HTTPConnection("127.0.0.1", roomy.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            if name != "Content-Type" and body is not None:
                conn.putheader("Content-Type", "application/json")
            if name != "Content-Length" and body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.putheader(name, value)
            conn.endheaders(body)
            response = conn.getresponse()
            response.read()
        except (http.client.HTTPException, ConnectionError):
            continue  # the HTTP parser closed on bytes no header may hold: not a 500
        finally:
            conn.close()
        assert response.status < 500, (name, value, response.status)
        request_id = response.getheader("x-request-id")  # absent when uvicorn itself refused
        assert request_id is None or (0 < len(request_id) <= 64 and request_id.isascii())
