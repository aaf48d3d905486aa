"""Our own per-request layers, in process: what the shipped app costs a bet beyond the
signature check, without HTTP or the load generator's noise.

Builds the app as ``tapgate serve`` does (shipped defaults, request logs at info as JSON
lines to a file, one process) with ``TAPGATE_BENCH_VERIFY_ONLY=1``, so each bet goes
through the request context, the route, the body, validation, the address bucket, the
timestamp window and the signature, and answers the verify-only receipt. Then, in one run:

- the app: thread CPU per request of ``app(scope, receive, send)`` over --requests signed
  bodies (each a different wallet and nonce, as under load);
- the signature alone: the same bodies' checks through the gateway's ``verify``;
- a stub: the same bodies answered by the least an ASGI app does (this harness's own
  scope, receive and send, as ``loadgen.py asgi``'s stub stands for uvicorn's);
- own layers = the app minus the stub minus the signature. HTTP parsing (uvicorn's
  share) is in neither: ``loadgen.py asgi`` measures it, over the network.

--profile prints cProfile's top functions of the app's run (cProfile's overhead inflates
the total; read it for shares, not for the figure). --instructions runs one round under
valgrind's callgrind and reports instructions per request instead of CPU time: exact and
repeatable on a machine whose speed changes from minute to minute (this VM's does, by 2x),
so two versions of the code can be compared one after the other; kernel time (the log
line's write) is not in it.

    .venv/bin/python bench/layers.py [--requests 20000] [--rounds 3] [--profile]
    .venv/bin/python bench/layers.py --instructions --requests 500
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.client.wallet import Wallet, bet_body  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.protocol import BetRequest, parse_bet, verify  # noqa: E402
from gateway.server.app import create_app  # noqa: E402
from gateway.telemetry import configure_logging  # noqa: E402

MARKET = "BTC-USD"
UNDER_CALLGRIND = os.environ.get("TAPGATE_LAYERS_UNDER_CALLGRIND") == "1"


def bodies(count: int) -> list[bytes]:
    """``count`` signed bets, each from its own wallet, timestamped now."""
    now = int(time.time() * 1000)
    out = []
    for i in range(count):
        body = bet_body(
            Wallet.generate(),
            market=MARKET,
            cell_id="cell-5000-1",
            amount=1,
            timestamp=now + i % 50,
        )
        out.append(orjson.dumps(body))
    return out


def scope_for(body: bytes, peer: int) -> dict[str, Any]:
    """The scope uvicorn builds for a POST /api/bets from 127.0.0.1 with curl's headers."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8443),
        "client": ("127.0.0.1", 40000 + peer % 20000),
        "scheme": "https",
        "method": "POST",
        "root_path": "",
        "path": "/api/bets",
        "raw_path": b"/api/bets",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8443"),
            (b"user-agent", b"loadgen"),
            (b"accept", b"*/*"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "state": {},
    }


async def run(app: Any, signed: list[bytes]) -> float:
    """Thread CPU seconds to answer every body in ``signed``, one after another."""
    statuses: dict[int, int] = {}

    async def one(body: bytes, peer: int) -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope_for(body, peer), receive, send)

    # Each request's log line written by itself, as a turn's end would (the worst case for
    # the writes a turn shares); the loop itself never turns here, so the markets' timers
    # and threads, whose work grows with wall time, stay out of the figure.
    flush_log = getattr(getattr(app, "_asgi", None), "flush_log", lambda: None)
    started = time.thread_time()
    for peer, body in enumerate(signed):
        await one(body, peer)
        flush_log()
    spent = time.thread_time() - started
    if set(statuses) != {202}:
        raise SystemExit(f"not every request answered 202: {statuses}")
    return spent


async def stub(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI app answers a bet with: what this harness itself costs."""
    await receive()
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def signatures(bets: list[BetRequest]) -> float:
    """Thread CPU seconds of the gateway's signature check alone, for the same bets (parsed
    before: only the checks are counted, under callgrind too)."""
    started = time.thread_time()
    for bet in bets:
        verify(bet.wallet, bet.message, bet.signature)
    return time.thread_time() - started


def settle_heap() -> None:
    """What the runtime's housekeeping does each second (TAPGATE_GC_FREEZE): everything
    alive moved out of the cyclic collector's way. Without it a full collection over the
    whole heap lands in whichever section is running when it falls due (+-15k
    instructions a request between two versions of the code, none of it theirs)."""
    gc.collect(1)
    gc.freeze()


@contextlib.contextmanager
def counted(name: str) -> Iterator[None]:
    """Under callgrind: count this block's instructions, dumped as ``name``."""
    if not UNDER_CALLGRIND:
        yield
        return

    def control(*words: str) -> None:
        command = ["callgrind_control", *words, str(os.getpid())]
        subprocess.run(command, check=True, capture_output=True)  # nosec B603

    control("-i", "on")
    yield
    control("-d", name)
    control("-i", "off")


async def measure(args: argparse.Namespace) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="tapgate-layers-"))
    changed = {k: v for k, v in os.environ.items() if k.startswith("TAPGATE_")}
    settings = Settings.from_env(
        {
            **changed,
            "TAPGATE_DATA_DIR": str(data),
            "TAPGATE_BENCH_VERIFY_ONLY": "1",
            "TAPGATE_ADDRESS_RATE": "1e7",  # one peer address here, as under loadgen
            "TAPGATE_ADDRESS_BURST": "1e7",
        }
    )
    log_file = open(data / "requests.log", "wb")  # the process's stdout, as journald's pipe
    sys.stdout = io.TextIOWrapper(log_file)
    configure_logging(settings.log_level, console=False)
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    app = create_app(settings)
    rounds: list[dict[str, float]] = []
    profile_text = ""
    async with app.lifespan():
        await run(app, bodies(200))  # warm: caches, metric children, first log line
        for _ in range(args.rounds):
            signed = bodies(args.requests)
            settle_heap()
            with counted("app"):
                app_s = await run(app, signed)
            bets = [parse_bet(body, frozenset({MARKET})) for body in signed]
            settle_heap()
            with counted("signature"):
                verify_s = signatures(bets)
            settle_heap()
            with counted("stub"):
                stub_s = await run(stub, signed)
            n = len(signed)
            rounds.append(
                {
                    "app_us": round(app_s / n * 1e6, 1),
                    "stub_us": round(stub_s / n * 1e6, 1),
                    "signature_us": round(verify_s / n * 1e6, 1),
                    "own_layers_us": round((app_s - stub_s - verify_s) / n * 1e6, 1),
                }
            )
        if args.profile:
            signed = bodies(args.requests)
            profiler = cProfile.Profile()
            profiler.enable()
            await run(app, signed)
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(args.top)
            profile_text = text.getvalue()
    sys.stdout = sys.__stdout__
    log_file.close()
    own = sorted(r["own_layers_us"] for r in rounds)
    return {
        "requests": args.requests,
        "rounds": rounds,
        "own_layers_us_median": own[len(own) // 2],
        "log_bytes_per_request": round(
            (data / "requests.log").stat().st_size / (200 + args.requests * args.rounds), 1
        ),
        "settings": f"{changed or 'shipped defaults'}, one process, "
        f"TAPGATE_BENCH_VERIFY_ONLY=1, logs at {settings.log_level} as JSON lines to a file",
        "pid": os.getpid(),
        "profile": profile_text,
    }


def instructions(args: argparse.Namespace) -> dict[str, object]:
    """One round of --requests under callgrind: instructions per request, exact and the
    same from run to run whatever else the machine does (system calls' kernel work and
    cache misses are not in them: compare code with them, not with wall time)."""
    out = Path(tempfile.mkdtemp(prefix="tapgate-callgrind-"))
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}/callgrind.%p",
        sys.executable,
        __file__,
        "--requests",
        str(args.requests),
        "--rounds",
        "1",
    ]
    env = {**os.environ, "TAPGATE_LAYERS_UNDER_CALLGRIND": "1"}
    subprocess.run(command, check=True, env=env, capture_output=True)  # nosec B603
    totals: dict[str, int] = {}
    for dump in out.glob("callgrind.*.*"):
        text = dump.read_text()
        name = re.search(r"^desc: Trigger: dump (\w+)$", text, re.M)
        total = re.search(r"^totals: (\d+)$", text, re.M)
        if name and total:
            totals[name[1]] = int(total[1])
    n = args.requests
    return {
        "requests": n,
        "instructions_per_request": {
            "app": round(totals["app"] / n),
            "stub": round(totals["stub"] / n),
            "signature": round(totals["signature"] / n),
            "own_layers": round((totals["app"] - totals["stub"] - totals["signature"]) / n),
        },
        "settings": "as the timed run; valgrind's callgrind, one round",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--instructions", action="store_true")
    args = parser.parse_args()
    if args.instructions:
        print(json.dumps(instructions(args), indent=1))
        return
    report = uvloop.run(measure(args))
    profile = report.pop("profile")
    print(json.dumps(report, indent=1))
    if profile:
        print(profile)


if __name__ == "__main__":
    main()
