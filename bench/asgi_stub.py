"""The floor under tapgate's own layers: a raw ASGI app under the same uvicorn setup as
`tapgate serve` (uvloop, httptools, no access log) that reads the body and answers 202.

    python bench/asgi_stub.py PORT          (loadgen.py asgi starts it and drives it)

Server CPU per request here, against the same figure for the verify-only gateway
(TAPGATE_BENCH_VERIFY_ONLY=1) minus one Ed25519 check, is what tapgate's own per-request
layers cost (the performance issue, item 2).
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

BODY = b'{"status":"accepted"}'
START = {
    "type": "http.response.start",
    "status": 202,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"21")],
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(START)
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                access_log=False, log_level="warning", server_header=False)  # fmt: skip
