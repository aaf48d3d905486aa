"""A flood from 10,000 distinct loopback addresses: the limiter's memory stays bounded."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.gatewayproc import GatewayProcess

SOURCES = 10_000
MAX_KEYS = 1_000


def _sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in the scrape")


def _request_from(source: str, port: int) -> bytes:
    with socket.socket() as sock:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /api/markets HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        return sock.recv(16)


def test_ten_thousand_source_addresses_keep_the_bucket_table_bounded(make_gateway: Any) -> None:
    """Each of 10,000 addresses in 127.0.0.0/8 gets a bucket; the table never exceeds its cap.

    The read buckets refill once in 20,000 s, so none is idle long enough to be dropped
    as full during the flood, however slowly it runs: every key past the cap evicts one."""
    gw: GatewayProcess = make_gateway(
        {
            "TAPGATE_BUCKET_MAX_KEYS": str(MAX_KEYS),
            "TAPGATE_READ_RATE": "0.01",  # the reads family's address tier
            "TAPGATE_READ_BURST": "200",
        }
    )
    gw.start(markets_ready=False)
    sources = [f"127.{1 + i // 62_500}.{i // 250 % 250}.{i % 250 + 1}" for i in range(SOURCES)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda s: _request_from(s, gw.port), sources))
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    with gw.client() as c:
        scrape = c.get("/metrics").text
    keys = _sample(scrape, 'tapgate_rate_limit_keys{family="reads",kind="address"}')
    evicted = _sample(scrape, 'tapgate_rate_limit_evictions_total{family="reads",kind="address"}')
    assert keys <= MAX_KEYS
    assert evicted >= SOURCES - MAX_KEYS
