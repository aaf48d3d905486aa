"""Server-level protections over real sockets: TLS, forwarded addresses, slow and big requests."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gatewayproc import GatewayProcess


def _cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_tls_with_a_self_signed_certificate(make_gateway: Any, tmp_path: Path) -> None:
    """With TAPGATE_TLS_* the gateway speaks only TLS, and the certificate verifies."""
    cert, key = _cert(tmp_path)
    gw: GatewayProcess = make_gateway(
        {"TAPGATE_TLS_CERTFILE": str(cert), "TAPGATE_TLS_KEYFILE": str(key)}
    )
    trust = ssl.create_default_context(cafile=str(cert))
    gw.verify = trust
    gw.start()
    assert gw.url.startswith("https://")
    r = httpx.get(f"{gw.url}/healthz", verify=trust)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{gw.port}/healthz", timeout=2)
    with pytest.raises(httpx.ConnectError):  # not trusted without the certificate
        httpx.get(f"{gw.url}/healthz")


def _limited(gw: GatewayProcess, forwarded: list[str]) -> list[int]:
    with httpx.Client(base_url=gw.url) as c:
        return [
            c.get("/api/markets", headers={"x-forwarded-for": f}).status_code for f in forwarded
        ]


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_for_counts_only_from_trusted_proxies(make_gateway: Any, trusted: bool) -> None:
    """A spoofed X-Forwarded-For from an untrusted peer changes nothing; a proxy's counts."""
    env = {"TAPGATE_READ_RATE": "0.01", "TAPGATE_READ_BURST": "3"}
    if trusted:
        env["TAPGATE_TRUSTED_PROXIES"] = "127.0.0.1/32"
    gw: GatewayProcess = make_gateway(env)
    gw.start(markets_ready=False)
    spoofed = _limited(gw, [f"203.0.113.{i}" for i in range(6)])
    if trusted:
        assert spoofed == [200] * 6  # six clients behind the proxy, one bucket each
        assert _limited(gw, ["198.51.100.7"] * 4) == [200, 200, 200, 429]
    else:
        assert spoofed == [200, 200, 200, 429, 429, 429]  # all one client: the peer


def test_an_unreadable_forwarded_for_is_400_not_the_proxy(make_gateway: Any) -> None:
    """Behind a trusted proxy on loopback, a request whose right-most X-Forwarded-For hop is
    empty or not an address gets 400 naming the header (counted), never the proxy's standing
    (/metrics is open to loopback only)."""
    gw: GatewayProcess = make_gateway({"TAPGATE_TRUSTED_PROXIES": "127.0.0.1/32"})
    gw.start(markets_ready=False)
    bad = ["203.0.113.7:4711", "unknown", "198.51.100.1,", "not an address"]
    with httpx.Client(base_url=gw.url) as c:
        for forwarded in bad:
            r = c.get("/metrics", headers={"x-forwarded-for": forwarded})
            assert r.status_code == 400, (forwarded, r.text)
            error = r.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_header", "X-Forwarded-For")
        assert c.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"}).status_code == 403
        metrics = c.get("/metrics").text  # the proxy's own request, no header: loopback
    assert "tapgate_forwarded_for_invalid_total 4.0" in metrics


def test_slow_request_is_cut_off_at_its_deadline(make_gateway: Any) -> None:
    """A request trickled byte by byte is closed after TAPGATE_REQUEST_TIMEOUT_S (slowloris):
    each byte resets uvicorn's own idle timer, so without the deadline it is never closed."""
    gw: GatewayProcess = make_gateway({"TAPGATE_REQUEST_TIMEOUT_S": "1"})
    gw.start(markets_ready=False)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(b"POST /api/bets HTTP/1.1\r\nHost: t\r\n")
        closed = False
        for _ in range(80):  # a byte every 0.25 s for 20 s: the idle timer never fires
            try:
                sock.sendall(b"X")
                sock.settimeout(0.25)
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
    assert closed, "the trickled request kept its connection"
    assert httpx.get(f"{gw.url}/healthz").status_code == 200  # honest clients are unaffected


def test_connections_beyond_the_limit_get_503(make_gateway: Any) -> None:
    """Past TAPGATE_LIMIT_CONCURRENCY open connections, a request is answered 503."""
    # the limit is per process (each worker has its own, docs/OPERATIONS.md): one process
    # makes "the fifth connection" well defined
    gw: GatewayProcess = make_gateway({"TAPGATE_LIMIT_CONCURRENCY": "4", "TAPGATE_WORKERS": "1"})
    gw.start(markets_ready=False)
    idle = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(4)]
    try:
        time.sleep(0.2)
        r = httpx.get(f"{gw.url}/healthz", timeout=5)
        assert r.status_code == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{gw.url}/healthz", timeout=5).status_code == 200


def test_oversized_headers_get_431(make_gateway: Any) -> None:
    """More than 16 KiB of request headers is refused with 431 and the connection closed."""
    gw: GatewayProcess = make_gateway()
    gw.start(markets_ready=False)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    ok = httpx.get(f"{gw.url}/healthz", headers={"x-fine": "a" * 8000})
    assert ok.status_code == 200
