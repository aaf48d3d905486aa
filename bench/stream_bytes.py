"""What the stream costs a client: bytes and messages per second on one connection.

    python bench/stream_bytes.py --url http://127.0.0.1:8080 --seconds 60 [--watch BTC-USD]

Without ``--watch`` the client only reads what arrives (protocol 2 before per-market
channels sent every market's ticks and full grids to every connection); with it, the
client watches that one market. Prints JSON: bytes/s, messages/s and bytes by type.
"""

from __future__ import annotations

import argparse
import collections
import json
import time

import orjson
from websockets.sync.client import connect


def measure(url: str, seconds: float, watch: str | None) -> dict[str, object]:
    by_type: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    with connect(url.replace("http", "ws", 1) + "/api/stream", max_size=2**24) as ws:
        hello = ws.recv(timeout=10)
        if watch:
            ws.send(orjson.dumps({"op": "watch", "markets": [watch]}).decode())
        start = time.monotonic()
        while (left := start + seconds - time.monotonic()) > 0:
            try:
                text = ws.recv(timeout=left)
            except TimeoutError:
                break
            kind = orjson.loads(text)["type"]
            by_type[kind] += len(text.encode())
            count[kind] += 1
    total = sum(by_type.values())
    return {
        "seconds": seconds,
        "watch": watch,
        "hello_bytes": len(str(hello).encode()),
        "bytes_per_s": round(total / seconds),
        "messages_per_s": round(sum(count.values()) / seconds, 2),
        "bytes_by_type": dict(by_type),
        "messages_by_type": dict(count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--watch", help="the market to watch (protocol 2 with channels)")
    args = parser.parse_args()
    print(json.dumps(measure(args.url, args.seconds, args.watch), indent=2))


if __name__ == "__main__":
    main()
