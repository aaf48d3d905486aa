"""Does an idle stream audience slow the API? Median GET /api/markets latency with and
without N connected stream clients that watch nothing (a page open in a background tab).

    python bench/idle_subscribers.py --url http://127.0.0.1:8080 --idle 300 --requests 400

Each idle connection comes from its own loopback address (127.0.1.x, 127.0.2.x, ...) so
the per-address stream caps stay at their defaults; give the gateway
TAPGATE_STREAM_MAX_CONNECTIONS above N. The probe requests come from 127.0.0.1 and are
spread over time below the per-address read rate. Prints JSON with both medians and
their ratio (the target: at most 1.2).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import httpx
from websockets.sync.client import connect


def _latencies(client: httpx.Client, requests: int, interval: float) -> list[float]:
    out = []
    for _ in range(requests):
        start = time.perf_counter()
        client.get("/api/markets").raise_for_status()
        out.append((time.perf_counter() - start) * 1000)
        time.sleep(interval)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--idle", type=int, default=300)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--interval", type=float, default=0.025, help="seconds between probes")
    args = parser.parse_args()
    port = urlsplit(args.url).port or 80
    ws_url = args.url.replace("http", "ws", 1) + "/api/stream"
    with httpx.Client(base_url=args.url) as client:
        _latencies(client, 20, args.interval)  # warm up
        without = _latencies(client, args.requests, args.interval)
        with ExitStack() as stack:
            for i in range(args.idle):
                source = f"127.0.{1 + i // 250}.{1 + i % 250}"
                sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
                ws = stack.enter_context(
                    connect(ws_url, sock=sock, open_timeout=10, ping_interval=None)
                )
                ws.recv(timeout=10)  # hello
            time.sleep(2.0)
            with_idle = _latencies(client, args.requests, args.interval)
    before, after = statistics.median(without), statistics.median(with_idle)
    print(
        json.dumps(
            {
                "idle_connections": args.idle,
                "requests": args.requests,
                "median_ms_without": round(before, 3),
                "median_ms_with_idle": round(after, 3),
                "ratio": round(after / before, 3),
                "p95_ms_without": round(statistics.quantiles(without, n=20)[18], 3),
                "p95_ms_with_idle": round(statistics.quantiles(with_idle, n=20)[18], 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
