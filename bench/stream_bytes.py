"""What the stream costs a client: bytes and messages per second on one connection.

    python bench/stream_bytes.py --url http://127.0.0.1:8080 --seconds 60 [--watch BTC-USD]
                                 [--no-compression]

Without ``--watch`` the client only reads what arrives (protocol 2 before per-market
channels sent every market's ticks and full grids to every connection); with it, the
client watches that one market. Prints JSON: bytes/s (of the JSON texts), wire bytes/s
(what the socket received: frames, after permessage-deflate unless --no-compression),
messages/s and bytes by type.
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import time

import orjson
from websockets.sync.client import connect


class CountingSocket(socket.socket):
    """A socket that counts what it receives: the stream's bytes as they travel."""

    received = 0

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        self.received += len(data)
        return data


def measure(url: str, seconds: float, watch: str | None, compress: bool) -> dict[str, object]:
    by_type: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    ws_url = url.replace("http", "ws", 1) + "/api/stream"
    host, port = ws_url.split("/")[2].rsplit(":", 1)
    plain = socket.create_connection((host, int(port)))
    sock = CountingSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
    compression = "deflate" if compress else None
    with connect(ws_url, sock=sock, max_size=2**24, compression=compression) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        at_start = sock.received
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
            by_type[kind] += len(text if isinstance(text, bytes) else text.encode())
            count[kind] += 1
        wire = sock.received - at_start
    total = sum(by_type.values())
    return {
        "seconds": seconds,
        "watch": watch,
        "hello_bytes": len(str(hello).encode()),
        "extensions": extensions,
        "bytes_per_s": round(total / seconds),
        "wire_bytes_per_s": round(wire / seconds),
        "messages_per_s": round(sum(count.values()) / seconds, 2),
        "bytes_by_type": dict(by_type),
        "messages_by_type": dict(count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--watch", help="the market to watch (protocol 2 with channels)")
    parser.add_argument("--no-compression", action="store_true", help="offer no deflate")
    args = parser.parse_args()
    report = measure(args.url, args.seconds, args.watch, not args.no_compression)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
