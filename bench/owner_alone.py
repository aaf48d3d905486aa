"""The owner alone: how many verified bets per second it admits through the real channel.

The owner (the gateway's app and runtime as `TAPGATE_WORKERS` > 1 runs them, shipped
defaults, `synchronous=FULL` on this disk) serves one end of a socket pair; a feeder
process on the other end sends what a worker would send for each bet (`take`, then
`admit` of an already verified bet) with up to --window bets outstanding, and counts the
answers. No HTTP, no signatures: the ceiling the workers scale towards (ADR 12). Any
TAPGATE_* variable in the environment changes that setting (the report names them); the
GIL switch interval is applied as `tapgate serve` applies it. The report splits the
owner's CPU by thread (the event loop, the writer) and gives the groups' mean size and
flush time.

    [TAPGATE_BATCH_MAX=1024] python bench/owner_alone.py [--seconds 10] [--wallets 4000]
                                                         [--window 4096]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.bets.pending import credit  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.server.app import create_app  # noqa: E402
from gateway.server.channel import Channel  # noqa: E402
from gateway.server.owner import WorkerLink  # noqa: E402
from gateway.telemetry import configure_logging  # noqa: E402

MARKET = "BTC-USD"


async def owner(args: argparse.Namespace) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="tapgate-owner-"))
    changed = {k: v for k, v in os.environ.items() if k.startswith("TAPGATE_")}
    settings = Settings.from_env(
        {**changed, "TAPGATE_DATA_DIR": str(data), "TAPGATE_LOG_LEVEL": "warning"}
    )
    configure_logging("warning", console=False)
    sys.setswitchinterval(settings.switch_interval_ms / 1000)  # as `tapgate serve` does
    app = create_app(settings)
    async with app.lifespan():
        rt = app.runtime
        if rt is None:
            raise SystemExit("the runtime did not open")
        wallets = [os.urandom(32).hex() for _ in range(args.wallets)]
        now_ms = int(time.time() * 1000)
        await asyncio.gather(
            *(credit(rt.writer, rt.accounts, w, 10**9, f"bench-{w[:16]}", now_ms) for w in wallets)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://owner") as client:
            grid: list[dict[str, int | str]] = []
            while not grid:  # priced, and the breaker back to normal after the first ticks
                await asyncio.sleep(0.2)
                grid = (await client.get(f"/api/markets/{MARKET}/grid")).json()["cells"]
        far = max(cell["start_ms"] for cell in grid)
        cells = [(c["cell_id"], c["row"], c["col"]) for c in grid if c["start_ms"] == far]
        ours, theirs = socket.socketpair()
        plan = json.dumps({**vars(args), "wallets": wallets, "cells": cells})
        feeder = subprocess.Popen(
            [sys.executable, __file__, "--feed", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        theirs.close()
        link = WorkerLink(await Channel.open(ours), rt.admission, app.dispatch, time.time)
        serving = asyncio.create_task(link.run())
        started_cpu, started_threads = time.process_time(), thread_cpu()
        out, _ = await asyncio.to_thread(feeder.communicate, plan.encode())
        owner_cpu = time.process_time() - started_cpu
        ended_threads = thread_cpu()
        await serving
        report: dict[str, object] = json.loads(out)
        report["owner_cpu_s"] = round(owner_cpu, 2)
        admitted = max(1, int(str(report["admitted"])))
        report["owner_us_per_admitted_bet"] = round(owner_cpu / admitted * 1e6, 1)
        report["owner_us_per_admitted_bet_by_thread"] = {
            name: round((ended_threads[name] - started_threads.get(name, 0.0)) / admitted * 1e6, 1)
            for name in ended_threads
        }
        groups = {m.name: m for m in app.metrics.registry.collect()}
        size = _sum_count(groups["tapgate_batch_size"])
        flush = _sum_count(groups["tapgate_batch_flush_duration_seconds"])
        report["groups"] = {
            "committed": int(size[1]),
            "mean_size": round(size[0] / max(1.0, size[1]), 1),
            "mean_flush_ms": round(flush[0] / max(1.0, flush[1]) * 1000, 2),
        }
        report["settings"] = {
            "changed": changed or "none: shipped defaults",
            "synchronous": settings.synchronous,
            "batch_max": settings.batch_max,
            "switch_interval_ms": settings.switch_interval_ms,
            "cells": "one market's furthest column",
        }
    return report


def _sum_count(metric: Any) -> tuple[float, float]:
    """A histogram's _sum and _count over all its labels."""
    total = count = 0.0
    for sample in metric.samples:
        if sample.name.endswith("_sum"):
            total += sample.value
        elif sample.name.endswith("_count"):
            count += sample.value
    return total, count


def verified_bet(
    wallet: str, cell: tuple[str, int, int], nonce: str, now: float
) -> tuple[Any, ...]:
    """A bet's values as a worker sends them to ``admit`` once it has checked the signature
    (one unit on ``cell``, timestamped ``now``; the signature is not read again)."""
    cell_id, row, col = cell
    return (wallet, MARKET, cell_id, row, col, 1, nonce, int(now * 1000), None, "0" * 128)


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each of this process's threads by name; the event
    loop is MainThread, the group commits run on tapgate-writer."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        utime, stime = fields.rsplit(")", 1)[1].split()[11:13]
        name = re.sub(r"_\d+$", "", thread.name)  # a pool's threads under its prefix
        seconds[name] = seconds.get(name, 0.0) + (int(utime) + int(stime)) / ticks
    return seconds


async def feed(fd: int) -> None:
    plan = json.loads(sys.stdin.read())
    channel = await Channel.open(socket.socket(fileno=fd))
    wallets, cells, window = plan["wallets"], plan["cells"], plan["window"]
    outstanding = asyncio.Semaphore(window)
    codes: dict[str, int] = {}
    admitted = 0
    waiting: dict[int, float] = {}
    next_id = 0

    async def answers() -> None:
        nonlocal admitted
        async for frame in channel.frames():
            if frame[1] in waiting:
                del waiting[frame[1]]
                refused = frame[2]
                if refused is None:
                    admitted += 1
                else:
                    codes[refused[0]] = codes.get(refused[0], 0) + 1
                outstanding.release()

    reader = asyncio.create_task(answers())
    started = time.perf_counter()
    deadline = started + plan["seconds"]
    serial = 0
    while time.perf_counter() < deadline:
        await outstanding.acquire()
        serial += 1
        wallet = wallets[serial % len(wallets)]
        cell_id, row, col = cells[serial % len(cells)]
        now = time.time()
        client = f"10.{serial % 200}.{serial // 200 % 250}.1"
        fields = verified_bet(wallet, (cell_id, row, col), f"n{serial}", now)
        next_id += 2
        channel.send("take", next_id - 1, client, now)  # answered first, not counted
        channel.send("admit", next_id, fields, now)
        waiting[next_id] = now
    while waiting and time.perf_counter() < deadline + 30:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    channel.close()
    reader.cancel()
    rate = round(admitted / elapsed, 1)
    report = {
        "seconds": round(elapsed, 2),
        "admitted": admitted,
        "admitted_per_s": rate,
        "feeder_us_per_admitted_bet": round(time.process_time() / max(1, admitted) * 1e6, 1),
    }
    print(json.dumps({**report, "refused": codes}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--wallets", type=int, default=4000)
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument("--feed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.feed is not None:
        uvloop.run(feed(args.feed))
        return
    print(json.dumps(uvloop.run(owner(args)), indent=2))


if __name__ == "__main__":
    main()
