"""tapgate load harness: open-loop scenarios and a closed-loop maximum-throughput mode.

    python bench/loadgen.py steady [--duration 60 | --long]   3,000 RPS
    python bench/loadgen.py spike                              0 -> 3,000 RPS in 10 s, then hold
    python bench/loadgen.py soak [--duration 600]              1,000 RPS, RSS sampled every 5 s
    python bench/loadgen.py max [--duration 20]                closed loop, as fast as it answers
    python bench/loadgen.py efficiency                         max, full route vs verify-only
    python bench/loadgen.py batching                           max, default batch vs batch of 1
    python bench/loadgen.py trivial                            open loop at 3x against a stub
    python bench/loadgen.py asgi                               max against an ASGI stub (uvicorn)
    python bench/loadgen.py live                               steady with 300 stream watchers
    python bench/loadgen.py peer                               max: naive peer, then the gateway
    python bench/loadgen.py scaling [--gateway-workers 2]      max: one process, then workers

Any scenario takes --subscribers N: N WebSocket stream clients (20 per loopback address,
the shipped per-address cap) watch the markets during the run, as open pages do; the
report counts what they received and any that were dropped. Bets settle during every run
longer than a few columns (the cells are a few columns ahead); the report counts the bets
the gateway resolved during the run.

The gateway runs as it ships (bench/shipped.env changes nothing) unless --env names a
scenario's settings; the settings are printed with the results. The cells come from the
live grid (CellPlan: the first column that opens far enough after each bet's due time,
rows in the middle of what that column offers on each side of the price), so any market
setup works. Every answer other than 202 is counted by its error code, and the report
accounts CPU: the server's per accepted bet, and the generator's own (signers included).

Every request is signed with timestamp = its scheduled send time and a cell open at that
time. The open loop signs each second of requests 2 s before it is due, on the rows the
grid offers then (RollingSigner: the price walks during a run); the closed loop signs
before the run on twelve rows and skips requests for rows the grid stopped offering.
Latency is measured from when a request was due, not when it was sent (no coordinated
omission). Traffic goes to loopback only, from 128 source addresses in
127.0.0.0/8 with the wallets partitioned across them, and every run is bounded in time.
The harness starts and stops the gateway itself unless --url points at a running one.
Exit status: the original floor (p95 < 100 ms, errors < 1%), or with --targets the table
in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from nacl.signing import SigningKey
from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.protocol import bet_message  # noqa: E402

ADDRESSES = [f"127.0.{i // 250}.{i % 250 + 2}" for i in range(128)]
MARKET = "BTC-USD"
# A bet may arrive this late after it was due and still find its cell open.
SLACK_MS = 1_500


@dataclass(frozen=True)
class CellPlan:
    """Where the harness bets, read from the live gateway: any market setup.

    A bet due at ``ts`` goes to the first column that opens at least the lock-ahead plus
    SLACK_MS after ``ts`` (so it is open when the bet arrives, even late), on one of the
    rows the grid offered when the plan was read (three, so that no one cell meets its
    caps). The price walks while a run goes on, so the open loop reads a plan for every
    second of requests just before it signs them (RollingSigner).
    """

    market: str
    column_ms: int
    lock_ahead_ms: int
    horizon_ms: int
    band: int
    rows: tuple[int, ...]

    @classmethod
    def read(
        cls, url: str, market: str = MARKET, at_ms: int | None = None, count: int = 3
    ) -> CellPlan:
        """The plan for bets due from ``at_ms`` (default: now) on, from the live grid, on
        ``count`` rows."""
        summary = next(
            m
            for m in httpx.get(f"{url}/api/markets", timeout=10).json()["markets"]
            if m["market"] == market
        )
        geometry = summary["grid"]
        grid = httpx.get(f"{url}/api/markets/{market}/grid", timeout=10).json()
        plan = cls(market, geometry["column_ms"], geometry["lock_ahead_ms"],
                   geometry["horizon_ms"], geometry["band"], ())  # fmt: skip
        if plan.lock_ahead_ms + SLACK_MS + plan.column_ms > plan.horizon_ms:
            raise SystemExit(f"{market}: no column stays open long enough to bet on")
        at_ms = int(time.time() * 1000) if at_ms is None else at_ms
        rows = plan.pick_rows(grid, at_ms, count)
        if not rows:
            raise SystemExit(f"{market} offers no cells now: {summary['breaker']}")
        return dataclasses.replace(plan, rows=rows)

    def column(self, ts_ms: int) -> int:
        return -(-(ts_ms + self.lock_ahead_ms + SLACK_MS) // self.column_ms)

    def offered(self, grid: dict[str, Any], at_ms: int) -> list[int]:
        """The rows offered in both columns that bets due at ``at_ms`` may go to."""
        first = self.column(at_ms)
        by_column: dict[int, set[int]] = {}
        for c in grid["cells"]:
            by_column.setdefault(c["col"], set()).add(c["row"])
        wanted = [by_column[col] for col in (first, first + 1) if col in by_column]
        return sorted(set.intersection(*(wanted or by_column.values()))) if by_column else []

    def pick_rows(self, grid: dict[str, Any], at_ms: int, count: int = 3) -> tuple[int, ...]:
        """``count`` rows offered in the columns that bets due at ``at_ms`` go to, each as far
        from the edges of what is offered as it can be: the price may walk either way
        before the column closes (towards it, the cell's multiplier falls below the
        minimum; away, it leaves the grid)."""
        offered = self.offered(grid, at_ms)
        if not offered:
            return ()
        price_row: int = grid["price"] // self.band
        below = [price_row - r for r in offered if r < price_row]
        above = [r - price_row for r in offered if r > price_row]

        def middle(distances: list[int]) -> float:
            return (min(distances) + max(distances)) / 2 if distances else 0.0

        centre = {-1: middle(below), 1: middle(above)}

        def key(row: int) -> float:
            side = -1 if row < price_row else 1
            return abs(abs(row - price_row) - centre[side])

        return tuple(sorted(sorted(offered, key=key)[:count]))

    def cell(self, ts_ms: int, serial: int) -> str:
        return f"cell-{self.rows[serial % len(self.rows)]}-{self.column(ts_ms)}"


# "<status> <code>" -> count for every answer other than 202 in the current run
REFUSALS: dict[str, int] = {}
REFUSAL_SAMPLES: list[str] = []  # the messages of its first few refusals
STUB_PLAN = CellPlan(MARKET, 5_000, 2_000, 60_000, 20, (1, 2, 3))  # shipped geometry, any rows


# ---------------------------------------------------------------------------------------
# Signing ahead of the run (in worker processes: Ed25519 signing is ~50 us a request)


def _sign_chunk(args: tuple[list[bytes], list[tuple[int, int, int]], CellPlan]) -> list[bytes]:
    seeds, jobs, plan = args
    market = plan.market
    keys = [SigningKey(s) for s in seeds]
    addresses = [k.verify_key.encode().hex() for k in keys]
    out = []
    for wallet_index, ts, serial in jobs:
        key, wallet = keys[wallet_index], addresses[wallet_index]
        cell = plan.cell(ts, serial)
        nonce = f"h{serial}"
        signature = key.sign(bet_message(wallet, market, cell, 1, nonce, ts, None)).signature
        body = (
            f'{{"wallet":"{wallet}","market":"{market}","cell_id":"{cell}","amount":1,'
            f'"nonce":"{nonce}","timestamp":{ts},"signature":"{signature.hex()}"}}'
        ).encode()
        out.append(
            b"POST /api/bets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
    return out


def sign_all(
    seeds: list[bytes], jobs: list[tuple[int, int, int]], workers: int, plan: CellPlan
) -> list[bytes]:
    chunk = 5_000
    parts = [(seeds, jobs[i : i + chunk], plan) for i in range(0, len(jobs), chunk)]
    with ProcessPoolExecutor(workers) as pool:
        return [req for part in pool.map(_sign_chunk, parts) for req in part]


def signing_rate(seeds: list[bytes]) -> float:
    """Requests signed per second in one process, measured."""
    jobs = [(i % len(seeds), 1_700_000_000_000, i) for i in range(400)]
    started = time.perf_counter()
    _sign_chunk((seeds, jobs, STUB_PLAN))
    return 400 / (time.perf_counter() - started)


# ---------------------------------------------------------------------------------------
# A minimal HTTP/1.1 client connection: one request at a time, keep-alive, callbacks only


class _Conn(asyncio.Protocol):
    def __init__(self, on_response: Callable[[_Conn, int], None]) -> None:
        self.on_response = on_response
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.current = -1
        self.address = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed and self.current >= 0:
            self.closed = True
            self.on_response(self, 0)
        self.closed = True

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, index: int, raw: bytes) -> None:
        self.current = index
        if not self.usable:  # closed by the server before we wrote: never seen by it
            self.closed = True
            asyncio.get_running_loop().call_soon(self.on_response, self, 0)
            return
        assert self.transport is not None
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end])
        marker = head.lower().find(b"content-length:")
        length = int(head[marker + 15 :].split(b"\r\n", 1)[0]) if marker >= 0 else 0
        if len(buf) < end + 4 + length:
            return
        status = int(head[9:12])
        if status != 202:  # which refusal: the body's error code (docs/API.md)
            body = bytes(buf[end + 4 : end + 4 + length])
            at = body.find(b'"code":"')
            code = body[at + 8 : body.find(b'"', at + 8)].decode() if at >= 0 else "-"
            REFUSALS[f"{status} {code}"] = REFUSALS.get(f"{status} {code}", 0) + 1
            at = body.find(b'"message":"')
            if len(REFUSAL_SAMPLES) < 5 and at >= 0:  # the first few messages say why
                REFUSAL_SAMPLES.append(body[at + 11 : body.find(b'"', at + 11)].decode())
        del buf[: end + 4 + length]
        if b"\r\nconnection: close" in head.lower():
            self.closed = True
        self.on_response(self, status)


async def _connect(
    host: str, port: int, source: str, on_response: Callable[[_Conn, int], None]
) -> _Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: _Conn(on_response), host, port, local_addr=(source, 0)
    )
    return conn


# ---------------------------------------------------------------------------------------
# Results


@dataclass
class Run:
    scenario: str
    offered: str
    due: array.array[float]  # seconds after start each request was due
    latency: array.array[float] = field(default_factory=lambda: array.array("d"))
    status: array.array[int] = field(default_factory=lambda: array.array("H"))
    started_wall: float = 0.0
    elapsed: float = 0.0
    samples: list[dict[str, float]] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)  # "<status> <code>" -> count
    audience: dict[str, int] = field(default_factory=dict)  # stream watchers' counts
    refusal_samples: list[str] = field(default_factory=list)  # the first refusals' messages
    signed_late: int = 0  # open loop: requests the harness signed only after they were due
    rows_seen: list[int] = field(default_factory=list)  # open loop: every row it bet on

    def first_errors(self, count: int = 5) -> list[tuple[float, int]]:
        """(due time, status) of the first few non-202 answers, to see when trouble began."""
        out = []
        for i in range(len(self.status)):
            if self.status[i] != 202:
                out.append((round(self.due[i], 3), self.status[i]))
                if len(out) == count:
                    break
        return out

    def summary(self, window: tuple[float, float] | None = None) -> dict[str, Any]:
        picks = [
            i
            for i in range(len(self.status))
            if self.status[i] != 0xFFFF and (window is None or window[0] <= self.due[i] < window[1])
        ]
        lat = sorted(self.latency[i] for i in picks)
        by_status: dict[str, int] = {}
        for i in picks:
            key = str(self.status[i]) if self.status[i] else "transport_error"
            by_status[key] = by_status.get(key, 0) + 1
        done = len(picks)
        errors = done - by_status.get("202", 0)
        span = (window[1] - window[0]) if window else max(self.elapsed, 1e-9)
        return {
            "requests": done,
            "rate_rps": round(by_status.get("202", 0) / span, 1),
            "p50_ms": round(_pct(lat, 50) * 1000, 2),
            "p95_ms": round(_pct(lat, 95) * 1000, 2),
            "p99_ms": round(_pct(lat, 99) * 1000, 2),
            "max_ms": round((lat[-1] if lat else 0) * 1000, 2),
            "errors": errors,
            "error_ratio": round(errors / done, 5) if done else 1.0,
            "by_status": by_status,
        }


def _pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, math.ceil(p / 100 * len(values)) - 1))
    return values[k]


# ---------------------------------------------------------------------------------------
# Drivers


SEND_TICK_S = 0.001  # the open loop sends what is due once per tick


def clock() -> float:
    """Monotonic seconds with sub-microsecond resolution (uvloop's loop.time() ticks in ms)."""
    return time.perf_counter()


async def open_loop(
    host: str,
    port: int,
    requests: list[bytes | None],
    due: array.array[float],
    addr_of: Sequence[int],
    per_address: int,
    start_at: float,
    deadline: float,
) -> tuple[array.array[float], array.array[int], float]:
    """Send each request at its due time on an idle connection of its address (or as soon
    as it is signed, when signing is late: RollingSigner counts those)."""
    loop = asyncio.get_running_loop()
    n = len(requests)
    latency = array.array("d", bytes(8 * n))
    status = array.array("H", [0xFFFF]) * n
    pending: list[deque[int]] = [deque() for _ in ADDRESSES]
    # FIFO rotation keeps every connection in use, so no server idle timeout closes one.
    idle: list[deque[_Conn]] = [deque() for _ in ADDRESSES]
    outstanding = 0
    mono_start = 0.0
    reconnects: list[int] = []

    async def replace(a: int) -> None:
        conn = await _connect(host, port, ADDRESSES[a], on_response)
        conn.address = a
        if pending[a]:
            dispatch(conn, pending[a].popleft())
        else:
            idle[a].append(conn)

    def dispatch(conn: _Conn, index: int) -> None:
        nonlocal outstanding
        if not conn.usable:  # the server closed it while idle: the request waits for a new one
            conn.closed = True
            pending[conn.address].appendleft(index)
            reconnects.append(conn.address)
            return
        outstanding += 1
        raw = requests[index]
        assert raw is not None  # the send loop waits for the signature
        conn.send(index, raw)

    def on_response(conn: _Conn, code: int) -> None:
        nonlocal outstanding
        i = conn.current
        conn.current = -1
        outstanding -= 1
        latency[i] = clock() - (mono_start + due[i])
        status[i] = code
        if conn.closed:
            reconnects.append(conn.address)
            return
        queue = pending[conn.address]
        if queue:
            dispatch(conn, queue.popleft())
        else:
            idle[conn.address].append(conn)

    await asyncio.sleep(max(0.0, start_at - 1.0 - time.time()))  # servers drop idle conns
    for a, source in enumerate(ADDRESSES):
        for _ in range(per_address):
            conn = await _connect(host, port, source, on_response)
            conn.address = a
            idle[a].append(conn)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    mono_start = clock()
    i = 0
    while i < n and time.time() < deadline:  # bounded even if signing stopped
        now = clock() - mono_start
        while i < n and due[i] <= now and requests[i] is not None:
            a = addr_of[i]
            if idle[a]:
                dispatch(idle[a].popleft(), i)
            else:
                pending[a].append(i)
            i += 1
        while reconnects:
            loop.create_task(replace(reconnects.pop()))
        if i < n:
            # never less than a tick: uvloop's timers count whole milliseconds, so a shorter
            # sleep returns at once and the generator spins (it took most of a core at
            # 3,000/s); a request sent up to a tick late counts that against the gateway
            await asyncio.sleep(max(SEND_TICK_S, due[i] - (clock() - mono_start)))
    while outstanding and time.time() < deadline:
        await asyncio.sleep(0.01)
    elapsed = clock() - mono_start
    for conns in idle:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
    return latency, status, elapsed


async def closed_loop(
    host: str,
    port: int,
    slots: list[list[list[tuple[int, bytes]]]],
    slot_seconds: float,
    per_address: int,
    start_at: float,
    duration: float,
    offered: set[int] | None,
) -> tuple[array.array[float], array.array[float], array.array[int], float]:
    """Each connection sends its next request as soon as the previous one is answered,
    taking requests from the time slot that matches the clock (timestamps stay fresh),
    skipping those for a row the live grid no longer offers (``offered``, kept current by
    ``follow_rows``; None: every row)."""
    loop = asyncio.get_running_loop()
    sent_at = array.array("d")
    latency = array.array("d")
    status = array.array("H")
    cursor = [[0] * len(ADDRESSES) for _ in slots]
    mono_start = 0.0
    stop_at = 0.0
    active = 0
    all_done = loop.create_future()

    def next_request(a: int) -> bytes | None:
        now = clock() - mono_start
        k = int(now / slot_seconds)
        for slot in range(k, min(k + 3, len(slots))):
            queue = slots[slot][a]
            c = cursor[slot][a]
            while c < len(queue):
                row, raw = queue[c]
                c += 1
                if offered is None or row in offered:
                    cursor[slot][a] = c
                    return raw
            cursor[slot][a] = c
        return None

    def fire(conn: _Conn) -> None:
        nonlocal active
        running = clock() < stop_at
        raw = next_request(conn.address) if running else None
        if raw is None and running and not conn.closed:  # none usable now: try again soon
            loop.call_later(0.01, fire, conn)
            return
        if raw is None or conn.closed:
            active -= 1
            if active == 0 and not all_done.done():
                all_done.set_result(None)
            return
        sent_at.append(clock() - mono_start)
        conn.send(len(sent_at) - 1, raw)

    def on_response(conn: _Conn, code: int) -> None:
        i = conn.current
        conn.current = -1
        latency.append(clock() - mono_start - sent_at[i])
        status.append(code)
        fire(conn)

    conns = []
    await asyncio.sleep(max(0.0, start_at - 1.0 - time.time()))  # servers drop idle conns
    for a, source in enumerate(ADDRESSES):
        for _ in range(per_address):
            conn = await _connect(host, port, source, on_response)
            conn.address = a
            conns.append(conn)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    mono_start = clock()
    stop_at = mono_start + duration
    active = len(conns)
    for conn in conns:
        fire(conn)
    await asyncio.wait_for(all_done, duration + 30)
    elapsed = clock() - mono_start
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return sent_at, latency, status, elapsed


# ---------------------------------------------------------------------------------------
# The server under test, and what it says about itself


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


class Server:
    def __init__(self, overrides: dict[str, str], port: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tapgate-bench-"))
        self.port = port
        self.token = overrides.get("TAPGATE_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TAPGATE_")},
            **overrides,
            "TAPGATE_DATA_DIR": str(self.dir / "data"),
            "TAPGATE_ADMIN_TOKEN": self.token,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, command: list[str] | None = None) -> None:
        log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "gateway", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {(self.dir / 'server.log').read_text()[-2000:]}")
            try:
                if command is not None:  # the trivial stub has no markets
                    httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=0.5)
                    return
                url = f"http://127.0.0.1:{self.port}/api/markets"
                markets = httpx.get(url, timeout=0.5).json()["markets"]
                if all(m["priced"] and m["breaker"]["state"] == 0 for m in markets):
                    return
                time.sleep(0.1)
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit("server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds used, RSS in MiB) of ``pid`` and its worker processes together."""
    per = tree_stats(pid)
    return sum(cpu for cpu, _ in per.values()), sum(rss for _, rss in per.values())


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used (OSError once it is gone)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_stats(pid: int) -> dict[int, tuple[float, float]]:
    """pid -> (CPU seconds, RSS MiB) for ``pid`` and its children (a gateway's workers)."""
    out = {}
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(child) for child in f.read().split()]
    for one in [pid, *children]:
        try:
            cpu = cpu_seconds(one)
            with open(f"/proc/{one}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            if one == pid:
                raise
            continue  # a worker that just exited
        out[one] = (cpu, rss / 1024)
    return out


def children_cpu(exclude: int | None) -> float:
    """CPU seconds of this process's living children but ``exclude`` (its signers)."""
    total = 0.0
    me = os.getpid()
    for task in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{task}/children") as f:
            for child in map(int, f.read().split()):
                if child == exclude:
                    continue
                with contextlib.suppress(OSError):  # one that just exited
                    total += cpu_seconds(child)
    return total


def scrape(url: str) -> dict[str, float]:
    try:
        text = httpx.get(f"{url}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    out = {"tapgate_bets_resolved_total": 0.0}
    for line in text.splitlines():
        if line.startswith("tapgate_bets_resolved_total{"):
            out["tapgate_bets_resolved_total"] += float(line.split()[-1])
        for name in (
            "tapgate_stream_connections",
            "tapgate_batch_queue_depth",
            "tapgate_batch_size_sum",
            "tapgate_batch_size_count",
        ):
            if line.startswith(name + " "):
                out[name] = float(line.split()[1])
    return out


async def sampler(
    url: str, pid: int | None, every: float, into: list[dict[str, float]], stop: asyncio.Event
) -> None:
    last_cpu = proc_stats(pid)[0] if pid else 0.0
    last_t = time.monotonic()
    started = last_t
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass
        now = time.monotonic()
        sample: dict[str, float] = {"t": round(now - started, 2), "wall": round(time.time(), 2)}
        # this process's own and its signers' (not the gateway's, when it started one)
        sample["generator_cpu_s"] = round(time.process_time() + children_cpu(exclude=pid), 3)
        if pid:
            try:
                cpu, rss = proc_stats(pid)
            except OSError:
                break
            sample["cpu_percent"] = round(100 * (cpu - last_cpu) / (now - last_t), 1)
            sample["cpu_s"] = round(cpu, 3)  # the server's (every process), since it started
            for one, (one_cpu, _) in tree_stats(pid).items():
                sample[f"cpu_s_{'owner' if one == pid else one}"] = round(one_cpu, 3)
            sample["rss_mib"] = round(rss, 1)
            last_cpu = cpu
        last_t = now
        sample.update(await asyncio.to_thread(scrape, url))
        into.append(sample)


_STREAM_SEQ = re.compile(r'"stream_seq":(\d+)\}$')


async def audience(url: str, count: int, counts: dict[str, int], stop: asyncio.Event) -> None:
    """``count`` stream clients watching the markets (alternately) until ``stop``."""
    if count == 0:
        return
    host, port = _host_port(url)
    ws_url = f"ws://{host}:{port}/api/stream"
    markets = [m["market"] for m in httpx.get(f"{url}/api/markets").json()["markets"]]
    counts.update(connected=0, messages=0, bytes=0, gaps=0, dropped=0)

    async def watcher(i: int) -> None:
        source = f"127.0.{100 + i // 20}.{1 + i % 20}"  # 20 per address: the shipped cap
        sock = socket.create_connection((host, port), source_address=(source, 0))
        async with ws_connect(ws_url, sock=sock, open_timeout=30, max_size=None) as ws:
            await ws.recv()  # hello
            watch = {"op": "watch", "markets": [markets[i % len(markets)]]}
            await ws.send(orjson.dumps(watch))  # a binary frame: the gateway reads both
            counts["connected"] += 1
            last: list[int] = []
            reader = asyncio.ensure_future(stop.wait())
            while True:
                frame = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({frame, reader}, return_when="FIRST_COMPLETED")
                if frame not in done:
                    frame.cancel()
                    return
                raw = frame.result()
                if isinstance(raw, bytes):  # the stream sends text frames
                    raw = raw.decode()
                counts["messages"] += 1
                counts["bytes"] += len(raw)
                # one watched market: its number ends each message; parsing every grid
                # delta (about 4 KB) for it would cost the generator a core at 300 watchers
                found = _STREAM_SEQ.search(raw, max(0, len(raw) - 40))
                if found is not None:
                    seq = int(found.group(1))
                    if last and seq != last[0] + 1:
                        counts["gaps"] += 1
                    last[:] = [seq]

    async def guarded(i: int) -> None:
        try:
            await watcher(i)
        except Exception:  # a closed or refused connection: counted, not fatal
            counts["dropped"] += 1

    await asyncio.gather(*(guarded(i) for i in range(count)))


def fund(url: str, token: str, wallets: list[str]) -> None:
    """Credit every wallet, spreading admin calls over the source addresses."""
    clients = [
        httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address=source))
        for source in ADDRESSES
    ]
    try:
        for i, wallet in enumerate(wallets):
            r = clients[i % len(clients)].post(
                f"/admin/wallets/{wallet}/credit",
                json={"amount": 10**12, "reference": f"bench-{wallet[:16]}-{i}"},
                headers={"authorization": f"Bearer {token}"},
            )
            if r.status_code != 200:
                raise SystemExit(f"funding failed: {r.status_code} {r.text}")
    finally:
        for c in clients:
            c.close()


# ---------------------------------------------------------------------------------------
# Scenarios


def schedule(kind: str, rate: float, duration: float, ramp: float = 10.0) -> array.array[float]:
    """Due times (s) of a constant-rate or a linear-ramp-then-hold arrival schedule."""
    due = array.array("d")
    if kind == "spike":
        ramp_count = int(rate * ramp / 2)
        for i in range(ramp_count):
            due.append(math.sqrt(2 * ramp * i / rate))
        hold = int(rate * (duration - ramp))
        for i in range(hold):
            due.append(ramp + i / rate)
    else:
        for i in range(int(rate * duration)):
            due.append(i / rate)
    return due


@dataclass
class Options:
    scenario: str
    rate: float
    duration: float
    wallets: int
    url: str | None
    out: Path
    targets: bool
    env_file: Path
    per_address: int
    workers: int
    subscribers: int = 0
    gateway_workers: int = 2


# Each second of the open loop's requests is signed this long before the first of them is
# due, on a plan read just before: time enough for a busy machine to sign a second's worth
# (about 0.1 s on two niced processes here), little enough that the price has not walked
# off the plan's rows (the sim's walk is ~0.9 bands a root-second; at 4 s ahead, three of
# eight 60 s runs had seconds-long bursts of cell_closed, most likely such a row).
SIGN_AHEAD_S = 2.0
SLICE_S = 1.0


def _yield_cpu() -> None:
    os.nice(10)  # the signers run during the run: the gateway under test comes first


class RollingSigner:
    """Signs the open loop's requests a second at a time, SIGN_AHEAD_S before they are
    due, each second on the rows the live grid offers just before (the price walks during
    a run: rows fixed when the run is planned fall out of the grid). The signers' CPU is
    the generator's, and a second signed after it was due is counted, not hidden."""

    def __init__(
        self,
        plan_at: Callable[[int], CellPlan],
        seeds: list[bytes],
        jobs: list[tuple[int, int, int]],
        due: array.array[float],
        workers: int,
    ) -> None:
        self.plan_at = plan_at  # the plan for bets due from a time (ms) on
        self.seeds = seeds
        self.jobs = jobs
        self.workers = workers
        self.requests: list[bytes | None] = [None] * len(jobs)
        self.slices: list[tuple[int, int]] = []  # [first, end) indices of each second
        first = 0
        for i in range(1, len(due) + 1):
            if i == len(due) or int(due[i] / SLICE_S) != int(due[first] / SLICE_S):
                self.slices.append((first, i))
                first = i
        self.ready_wall = [0.0] * len(self.slices)  # when each second was signed
        self.plans: list[CellPlan] = []  # each second's, in order
        self.pool = ProcessPoolExecutor(workers, initializer=_yield_cpu)

    def _parts(self, k: int, plan: CellPlan) -> list[tuple[Any, ...]]:
        lo, hi = self.slices[k]
        step = -(-(hi - lo) // self.workers)
        return [(self.seeds, self.jobs[a : min(a + step, hi)], plan) for a in range(lo, hi, step)]

    def _fill(self, k: int, plan: CellPlan, parts: list[list[bytes]]) -> None:
        lo, _ = self.slices[k]
        for j, raw in enumerate(req for part in parts for req in part):
            self.requests[lo + j] = raw
        self.ready_wall[k] = time.time()
        self.plans.append(plan)

    def sign_before_run(self, seconds: float) -> int:
        """Sign the first ``seconds`` of requests now; the number of slices signed."""
        k = 0
        while k < len(self.slices) and k * SLICE_S < seconds:
            plan = self.plan_at(self.jobs[self.slices[k][0]][1])
            self._fill(k, plan, list(self.pool.map(_sign_chunk, self._parts(k, plan))))
            k += 1
        return k

    async def keep_signing(self, start_wall: float, first: int) -> None:
        loop = asyncio.get_running_loop()
        for k in range(first, len(self.slices)):
            await asyncio.sleep(max(0.0, start_wall + k * SLICE_S - SIGN_AHEAD_S - time.time()))
            try:
                plan = await asyncio.to_thread(self.plan_at, self.jobs[self.slices[k][0]][1])
            except (SystemExit, Exception) as exc:  # nothing offered, or no answer in time
                print(f"second {k}: {exc!r}; the previous second's cells again")
                plan = self.plans[-1]
            parts = self._parts(k, plan)
            signed = await asyncio.gather(
                *(loop.run_in_executor(self.pool, _sign_chunk, part) for part in parts)
            )
            self._fill(k, plan, list(signed))

    def late(self, start_wall: float, due: array.array[float]) -> int:
        """How many requests were signed only after they were due (sent late by us), or
        never (the run ended first)."""
        return sum(
            1
            for k, (lo, hi) in enumerate(self.slices)
            for i in range(lo, hi)
            if not self.ready_wall[k] or self.ready_wall[k] > start_wall + due[i]
        )

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


# An open-loop run's signers must outpace its rate by this much, measured before the run:
# during it they get what the gateway leaves of the cores (niced). At 1.14x (3,433/s for
# 3,000/s, 2026-11-30 11:22) they fell behind as soon as the gateway took 1.44 cores.
SIGNING_MARGIN = 1.5


def prepare(
    opts: Options, count: int, url: str, token: str | None, rate: float | None = None
) -> tuple[list[bytes], list[str], float]:
    """Make and fund the wallets, then pick a start time that leaves room to sign; at an
    open-loop ``rate`` the signers too slow for it stop the run before it starts (exit 2,
    as a run they fell behind in does): it would measure the generator."""
    seeds = [secrets.token_bytes(32) for _ in range(opts.wallets)]
    wallets = [SigningKey(s).verify_key.encode().hex() for s in seeds]
    per_second = signing_rate(seeds) * opts.workers
    if rate is not None and per_second < SIGNING_MARGIN * rate:
        print(
            f"INVALID: {opts.workers} signers manage ~{per_second:.0f}/s before the run, "
            f"under {SIGNING_MARGIN}x the {rate:.0f}/s asked: they would fall behind once "
            "the gateway takes its share of the cores (more --workers, or a lower --rate)"
        )
        raise SystemExit(2)
    if token:
        fund(url, token, wallets)
    lead = count / per_second * 1.4 + 5.0
    print(f"signing {count} requests ahead (~{per_second:.0f}/s); the run starts in {lead:.0f} s")
    return [bytes(s) for s in seeds], wallets, time.time() + lead


def run_open(opts: Options, url: str, pid: int | None, token: str | None) -> Run:
    if opts.scenario == "spike":
        due = schedule("spike", opts.rate, opts.duration)
    else:
        due = schedule("steady", opts.rate, opts.duration)
    ahead = sum(1 for d in due if d < SIGN_AHEAD_S)
    seeds, _wallets, start_wall = prepare(opts, ahead, url, token, opts.rate)
    wallet_of = [i % opts.wallets for i in range(len(due))]
    jobs = [(wallet_of[i], int((start_wall + due[i]) * 1000), i) for i in range(len(due))]
    addr_of = [w % len(ADDRESSES) for w in wallet_of]
    # the stub answers without reading a body: any cell will do
    signer = RollingSigner(
        (lambda at_ms: STUB_PLAN)
        if opts.scenario == "trivial"
        else (lambda at_ms: CellPlan.read(url, MARKET, at_ms)),
        seeds,
        jobs,
        due,
        opts.workers,
    )
    first = signer.sign_before_run(SIGN_AHEAD_S)
    print("cells, first second:", signer.plans[0])
    if time.time() > start_wall - 1:
        raise SystemExit("signing took longer than planned; the timestamps would be stale")
    run = Run(opts.scenario, f"{opts.rate:.0f} rps", due, started_wall=start_wall)
    host, port = _host_port(url)

    async def go() -> None:
        stop = asyncio.Event()
        every = 5.0 if opts.scenario == "soak" else 1.0
        task = asyncio.create_task(sampler(url, pid, every, run.samples, stop))
        watchers = asyncio.create_task(audience(url, opts.subscribers, run.audience, stop))
        signing = asyncio.create_task(signer.keep_signing(start_wall, first))
        lat, st, elapsed = await open_loop(
            host,
            port,
            signer.requests,
            due,
            addr_of,
            opts.per_address,
            start_wall,
            start_wall + opts.duration + 30,
        )
        run.latency, run.status, run.elapsed = lat, st, elapsed
        stop.set()
        signing.cancel()  # done already, unless the run hit its deadline waiting for it
        with contextlib.suppress(asyncio.CancelledError):
            await signing
        await task
        await watchers

    REFUSALS.clear()
    REFUSAL_SAMPLES.clear()
    try:
        uvloop.run(go())
    finally:
        signer.close()
    run.refusals = dict(REFUSALS)
    run.refusal_samples = list(REFUSAL_SAMPLES)
    run.signed_late = signer.late(start_wall, due)
    run.rows_seen = sorted({row for plan in signer.plans for row in plan.rows})
    return run


async def follow_rows(url: str, plan: CellPlan, into: set[int], stop: asyncio.Event) -> None:
    """Keep ``into`` the rows the live grid offers now, five times a second, until ``stop``
    (a row that stops being offered costs refusals until the next look)."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while not stop.is_set():
            try:
                grid = (await client.get(f"/api/markets/{plan.market}/grid")).json()
                rows = plan.offered(grid, int(time.time() * 1000))
                into.clear()
                into.update(rows)
            except (httpx.HTTPError, KeyError, ValueError):
                pass  # the gateway is busy or refused the read: the last rows stand
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass


def run_closed(
    opts: Options, url: str, pid: int | None, token: str | None, assumed_max: float = 10_000.0
) -> Run:
    """Signed before the run (a closed loop runs faster than signing could keep up with),
    on twelve rows around the price (the price walks for the whole run: with six, runs
    lost thousands of requests to rows no longer offered); during the run, requests for
    rows the grid stopped offering are skipped, so the walk does not turn into refusals."""
    slot_seconds = 0.1
    nslots = int(opts.duration / slot_seconds) + 3
    per_slot = int(assumed_max * slot_seconds)
    seeds, _wallets, start_wall = prepare(opts, nslots * per_slot, url, token)
    jobs = []
    for k in range(nslots):
        ts = int((start_wall + k * slot_seconds) * 1000)
        for j in range(per_slot):
            jobs.append(((k * per_slot + j) % opts.wallets, ts, k * per_slot + j))
    stub = opts.scenario in ("asgi", "peer")
    plan = STUB_PLAN if stub else CellPlan.read(url, MARKET, int(start_wall * 1000), count=12)
    print("cells:", plan)
    flat = sign_all(seeds, jobs, opts.workers, plan)
    slots: list[list[list[tuple[int, bytes]]]] = []
    for k in range(nslots):
        by_address: list[list[tuple[int, bytes]]] = [[] for _ in ADDRESSES]
        for j in range(per_slot):
            serial = k * per_slot + j
            row = plan.rows[serial % len(plan.rows)]
            by_address[(serial % opts.wallets) % len(ADDRESSES)].append((row, flat[serial]))
        slots.append(by_address)
    if time.time() > start_wall - 1:
        raise SystemExit("signing took longer than planned; the timestamps would be stale")
    host, port = _host_port(url)
    run = Run(opts.scenario, "closed loop", array.array("d"), started_wall=start_wall)
    offered: set[int] | None = None if stub else set(plan.rows)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(sampler(url, pid, 1.0, run.samples, stop))
        watchers = asyncio.create_task(audience(url, opts.subscribers, run.audience, stop))
        rows = (
            None if offered is None else asyncio.create_task(follow_rows(url, plan, offered, stop))
        )
        sent, lat, st, elapsed = await closed_loop(
            host, port, slots, slot_seconds, opts.per_address, start_wall, opts.duration, offered
        )
        run.due, run.latency, run.status, run.elapsed = sent, lat, st, elapsed
        stop.set()
        await task
        await watchers
        if rows is not None:
            await rows

    REFUSALS.clear()
    REFUSAL_SAMPLES.clear()

    uvloop.run(go())
    run.refusals = dict(REFUSALS)
    run.refusal_samples = list(REFUSAL_SAMPLES)
    run.rows_seen = list(plan.rows)
    return run


def _host_port(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    if parsed.host not in ("127.0.0.1", "localhost") and not parsed.host.startswith("127."):
        raise SystemExit("the harness sends traffic to loopback only")
    return parsed.host, parsed.port or 80


def with_server(
    opts: Options, overrides: dict[str, str], body: Callable[[str, int | None, str | None], Run]
) -> tuple[Run, dict[str, str]]:
    settings = {**read_env_file(opts.env_file), **overrides}
    if opts.url:
        return body(opts.url, None, settings.get("TAPGATE_ADMIN_TOKEN")), settings
    server = Server(settings, _free_port())
    print(
        "gateway settings:",
        json.dumps({k: v for k, v in settings.items() if k != "TAPGATE_ADMIN_TOKEN"}),
    )
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        assert server.proc is not None
        run = body(url, server.proc.pid, server.token)
        # the gateway's own histograms (request time, queue wait, flush, loop lag) of the
        # run, beside its report: where the latency went
        opts.out.mkdir(parents=True, exist_ok=True)
        (opts.out / f"{run.scenario}-metrics.txt").write_text(httpx.get(f"{url}/metrics").text)
        return run, settings
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------
# Reporting


def rss_growth_mib_per_min(samples: list[dict[str, float]]) -> float:
    """Least-squares slope of RSS over the last 80% of the run."""
    points = [(s["t"], s["rss_mib"]) for s in samples if "rss_mib" in s]
    points = points[len(points) // 5 :]
    if len(points) < 3:
        return float("nan")
    mean_t = sum(t for t, _ in points) / len(points)
    mean_r = sum(r for _, r in points) / len(points)
    num = sum((t - mean_t) * (r - mean_r) for t, r in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return num / den * 60 if den else float("nan")


def describe(run: Run, settings: dict[str, str]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "scenario": run.scenario,
        "offered": run.offered,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}",
        "command": " ".join(sys.argv),
        "settings": {k: v for k, v in settings.items() if k != "TAPGATE_ADMIN_TOKEN"},
        "elapsed_s": round(run.elapsed, 2),
        "summary": run.summary(),
        "first_errors": run.first_errors(),
        "signed_late": run.signed_late,
        "rows_bet_on": run.rows_seen,
    }
    if run.scenario == "spike":
        report["ramp"] = run.summary((0.0, 10.0))
    during = [s for s in run.samples if s.get("wall", 0) >= run.started_wall]
    cpu = [s["cpu_percent"] for s in during if "cpu_percent" in s]
    rss = [s["rss_mib"] for s in run.samples if "rss_mib" in s]
    depth = [s.get("tapgate_batch_queue_depth", 0.0) for s in run.samples]
    counts = [s.get("tapgate_batch_size_count", 0.0) for s in run.samples]
    sums = [s.get("tapgate_batch_size_sum", 0.0) for s in run.samples]
    report["server"] = {
        "cpu_percent_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
        "cpu_percent_max": max(cpu) if cpu else None,
        "rss_mib_max": max(rss) if rss else None,
        "rss_growth_mib_per_min": round(rss_growth_mib_per_min(run.samples), 3),
        "queue_depth_max": max(depth) if depth else None,
        "batches": counts[-1] if counts else None,
        "mean_batch_size": round(sums[-1] / counts[-1], 2) if counts and counts[-1] else None,
    }
    answered = report["summary"]["by_status"].get("202", 0)
    timed = [s for s in during if "cpu_s" in s]
    if len(timed) >= 2 and answered:
        server_s = timed[-1]["cpu_s"] - timed[0]["cpu_s"]
        generator_s = timed[-1]["generator_cpu_s"] - timed[0]["generator_cpu_s"]
        span = timed[-1]["t"] - timed[0]["t"]
        # where the time went: the server's CPU per accepted bet, and the generator's own
        processes = {
            key[len("cpu_s_") :]: round(
                (timed[-1][key] - timed[0].get(key, 0.0)) / answered * 1e6, 1
            )
            for key in timed[-1]
            if key.startswith("cpu_s_")
        }
        report["cpu"] = {
            "server_us_per_bet_by_process": processes,
            "server_cpu_s": round(server_s, 2),
            "server_us_per_bet": round(server_s / answered * 1e6, 1),
            "generator_cpu_s": round(generator_s, 2),
            "generator_cores": round(generator_s / span, 2) if span else None,
            "server_cores": round(server_s / span, 2) if span else None,
        }
    resolved = [
        s["tapgate_bets_resolved_total"] for s in during if "tapgate_bets_resolved_total" in s
    ]
    report["settled_during_run"] = int(resolved[-1] - resolved[0]) if len(resolved) >= 2 else None
    streams = [s.get("tapgate_stream_connections", 0.0) for s in during]
    report["stream"] = {**run.audience, "server_connections_max": max(streams, default=0.0)}
    report["refusals"] = run.refusals
    report["refusal_samples"] = run.refusal_samples
    report["samples"] = run.samples
    return report


def print_table(report: dict[str, Any]) -> None:
    s, srv = report["summary"], report["server"]
    print(f"\n== {report['scenario']} ({report['offered']}, {report['elapsed_s']} s) ==")
    print(f"{'rate':>10} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'errors':>8}  by status")
    print(
        f"{s['rate_rps']:>10} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['p99_ms']:>8} "
        f"{s['max_ms']:>8} {s['errors']:>8}  {s['by_status']}"
    )
    if "ramp" in report:
        r = report["ramp"]
        print(f"ramp (0-10 s): p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']}")
    print(
        f"server: CPU mean {srv['cpu_percent_mean']}% max {srv['cpu_percent_max']}%, "
        f"RSS max {srv['rss_mib_max']} MiB (growth {srv['rss_growth_mib_per_min']} MiB/min), "
        f"queue depth max {srv['queue_depth_max']}, mean batch {srv['mean_batch_size']} "
        f"over {srv['batches']} batches"
    )
    if "cpu" in report:
        c = report["cpu"]
        print(
            f"CPU: server {c['server_cores']} cores, {c['server_us_per_bet']} us per accepted bet; "
            f"generator {c['generator_cores']} cores (signers included)"
        )
        if len(c["server_us_per_bet_by_process"]) > 1:
            print("server CPU per bet by process (us):", c["server_us_per_bet_by_process"])
    if report["rows_bet_on"]:
        print(f"rows bet on: {report['rows_bet_on']}")
    if report["signed_late"]:
        print(f"SIGNED LATE: {report['signed_late']} requests (the generator's lateness)")
    print(f"bets resolved by the gateway during the run: {report['settled_during_run']}")
    if report["stream"].get("connected") is not None:
        print("stream watchers:", report["stream"])
    if report["refusals"]:
        print("refusals:", report["refusals"], "first:", report["refusal_samples"])


def plot(run: Run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets: dict[int, list[float]] = {}
    for i in range(len(run.status)):
        if run.status[i] == 202:
            buckets.setdefault(int(run.due[i]), []).append(run.latency[i] * 1000)
    seconds = sorted(buckets)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for p in (50, 95, 99):
        ax1.plot(seconds, [_pct(sorted(buckets[t]), p) for t in seconds], label=f"p{p}")
    ax1.set_ylabel("latency from due time (ms)")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(seconds, [len(buckets[t]) for t in seconds], label="202 per second")
    ax2.set_ylabel("throughput (202/s)")
    ax2.set_xlabel("seconds into the run")
    ax2.grid(True, alpha=0.3)
    fig.suptitle(f"tapgate {run.scenario} ({run.offered})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save(report: dict[str, Any], run: Run, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{report['scenario']}-{time.strftime('%Y%m%dT%H%M%S')}"
    n = 1
    while (out / f"{stem}.json").exists():  # two runs of one command can end in one second
        n += 1
        stem = f"{report['scenario']}-{time.strftime('%Y%m%dT%H%M%S')}-{n}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    plot(run, out / f"{stem}.png")
    print(f"wrote {out / stem}.json and .png")


TARGETS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "steady": lambda r: _check(r["summary"], p95=10, p99=20, errors=0),
    "spike": lambda r: _check(r["ramp"], p99=50, errors=0) + _check(r["summary"], errors=0),
    "soak": lambda r: (
        _check(r["summary"], p95=10, p99=20, errors=0)
        + (
            []
            if r["server"]["rss_growth_mib_per_min"] < 1 and r["server"]["rss_mib_max"] < 2048
            else [
                f"RSS growth {r['server']['rss_growth_mib_per_min']} MiB/min or max "
                f"{r['server']['rss_mib_max']} MiB"
            ]
        )
    ),
    # the performance issue's target for the gateway as it ships, under its audience
    "live": lambda r: (
        _check(r["summary"], p95=25, p99=50, errors=0)
        + ([] if r["stream"].get("dropped") == 0 else [f"stream: {r['stream']}"])
    ),
    "max": lambda r: (
        []
        if r["summary"]["rate_rps"] >= 6000
        else [f"throughput {r['summary']['rate_rps']} < 6000"]
    ),
}


def _check(
    s: dict[str, Any], p95: float | None = None, p99: float | None = None, errors: int | None = None
) -> list[str]:
    failed = []
    if p95 is not None and not s["p95_ms"] <= p95:
        failed.append(f"p95 {s['p95_ms']} ms > {p95}")
    if p99 is not None and not s["p99_ms"] <= p99:
        failed.append(f"p99 {s['p99_ms']} ms > {p99}")
    if errors is not None and s["errors"] > errors:
        failed.append(f"{s['errors']} errors > {errors}")
    return failed


def floor(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    failed = []
    if report["scenario"] != "max" and not s["p95_ms"] < 100:
        failed.append(f"p95 {s['p95_ms']} ms >= 100")
    if not s["error_ratio"] < 0.01:
        failed.append(f"error ratio {s['error_ratio']} >= 1%")
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "scenario",
        choices=[
            "steady",
            "spike",
            "soak",
            "max",
            "efficiency",
            "batching",
            "trivial",
            "asgi",
            "live",
            "peer",
            "scaling",
        ],
    )
    parser.add_argument("--rate", type=float, help="requests per second (open loop)")
    parser.add_argument("--duration", type=float, help="seconds")
    parser.add_argument("--long", action="store_true", help="steady for 5 minutes")
    parser.add_argument("--wallets", type=int, default=1000)
    parser.add_argument("--url", help="a running gateway (default: start one)")
    parser.add_argument("--targets", action="store_true", help="apply the performance targets")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--env", type=Path, default=ROOT / "bench" / "shipped.env")
    parser.add_argument("--per-address", type=int, default=2, help="connections per address")
    parser.add_argument(
        "--gateway-workers", type=int, default=2, help="TAPGATE_WORKERS for scaling's second run"
    )
    parser.add_argument(
        "--subscribers", type=int, help="stream clients watching during the run (live: 300)"
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="signing processes"
    )
    args = parser.parse_args(argv)
    defaults = {
        "steady": (3000, 300 if args.long else 60),
        "spike": (3000, 40),
        "soak": (1000, 600),
        "max": (0, 20),
        "efficiency": (0, 15),
        "batching": (0, 15),
        "trivial": (9000, 20),
        "asgi": (0, 10),
        "live": (3000, 60),
        "peer": (0, 15),
        "scaling": (0, 15),
    }
    rate, duration = defaults[args.scenario]
    opts = Options(
        args.scenario,
        args.rate or rate,
        args.duration or duration,
        args.wallets,
        args.url,
        args.out,
        args.targets,
        args.env,
        args.per_address,
        args.workers,
        args.subscribers
        if args.subscribers is not None
        else (300 if args.scenario == "live" else 0),
        args.gateway_workers,
    )
    if opts.scenario in ("max", "efficiency", "batching", "scaling"):
        opts.wallets = max(opts.wallets, 2000)

    if opts.scenario == "trivial":
        server = Server({}, _free_port())
        server.start([sys.executable, str(ROOT / "bench" / "trivial_server.py"), str(server.port)])
        try:
            assert server.proc is not None
            run = run_open(opts, f"http://127.0.0.1:{server.port}", server.proc.pid, None)
        finally:
            server.stop()
        report = describe(run, {})
        print_table(report)
        save(report, run, opts.out)
        achieved = report["summary"]["rate_rps"] / opts.rate
        print(f"achieved {achieved:.1%} of the offered {opts.rate:.0f} rps")
        return 0 if achieved >= 0.99 and report["summary"]["errors"] == 0 else 1

    if opts.scenario == "asgi":  # closed loop against the ASGI stub under uvicorn
        opts.wallets = max(opts.wallets, 2000)
        server = Server({}, _free_port())
        server.start([sys.executable, str(ROOT / "bench" / "asgi_stub.py"), str(server.port)])
        try:
            assert server.proc is not None
            url = f"http://127.0.0.1:{server.port}"
            run = run_closed(opts, url, server.proc.pid, None, assumed_max=40_000.0)
        finally:
            server.stop()
        report = describe(run, {"server": "bench/asgi_stub.py"})
        print_table(report)
        save(report, run, opts.out)
        return 0

    if opts.scenario == "peer":  # bench/naive_peer.py, then the gateway, closed loop
        opts.wallets = max(opts.wallets, 2000)
        server = Server({}, _free_port())
        peer_cmd = [sys.executable, str(ROOT / "bench" / "naive_peer.py"), str(server.port)]
        server.start([*peer_cmd, str(server.dir)])
        try:
            assert server.proc is not None
            url = f"http://127.0.0.1:{server.port}"
            peer = run_closed(opts, url, server.proc.pid, None)
        finally:
            server.stop()
        opts.scenario = "max"
        full, settings = with_server(opts, {}, lambda u, p, t: run_closed(opts, u, p, t))
        reports = [describe(peer, {"server": "bench/naive_peer.py"}), describe(full, settings)]
        for report, run in zip(reports, (peer, full), strict=True):
            print_table(report)
            save(report, run, opts.out)
        ratio = reports[1]["summary"]["rate_rps"] / max(reports[0]["summary"]["rate_rps"], 1e-9)
        print(f"peer: full gateway / naive peer = {ratio:.2f} (target >= 5)")
        return 0 if ratio >= 5 or not opts.targets else 1

    if opts.scenario == "scaling":  # one process, then the owner with N workers
        opts.scenario = "max"
        runs = []
        for workers in (1, opts.gateway_workers):
            overrides = {"TAPGATE_WORKERS": str(workers)}
            run, settings = with_server(opts, overrides, lambda u, p, t: run_closed(opts, u, p, t))
            runs.append((describe(run, settings), run))
        for report, run in runs:
            print_table(report)
            save(report, run, opts.out)
        single, many = (report["summary"]["rate_rps"] for report, _ in runs)
        ratio = many / max(single, 1e-9)
        print(
            f"scaling: {opts.gateway_workers} workers / one process = {ratio:.2f} (target >= 1.5)"
        )
        return 0 if ratio >= 1.5 or not opts.targets else 1

    if opts.scenario in ("efficiency", "batching"):
        other = (
            {"TAPGATE_BENCH_VERIFY_ONLY": "1"}
            if opts.scenario == "efficiency"
            else {"TAPGATE_BATCH_MAX": "1"}
        )
        opts.scenario = "max"
        full, settings = with_server(opts, {}, lambda u, p, t: run_closed(opts, u, p, t))
        alt, alt_settings = with_server(opts, other, lambda u, p, t: run_closed(opts, u, p, t))
        reports = [describe(full, settings), describe(alt, alt_settings)]
        for report, run in zip(reports, (full, alt), strict=True):
            print_table(report)
            save(report, run, opts.out)
        ratio = reports[0]["summary"]["rate_rps"] / max(reports[1]["summary"]["rate_rps"], 1e-9)
        name = "efficiency" if "TAPGATE_BENCH_VERIFY_ONLY" in other else "batching"
        print(f"{name}: full gateway / {other} = {ratio:.3f}")
        if name == "efficiency" and opts.targets:
            return 0 if ratio >= 0.85 else 1
        return 0

    body = run_closed if opts.scenario == "max" else run_open
    run, settings = with_server(opts, {}, lambda u, p, t: body(opts, u, p, t))
    report = describe(run, settings)
    print_table(report)
    save(report, run, opts.out)
    failed = floor(report)
    if opts.targets and opts.scenario in TARGETS:
        failed += TARGETS[opts.scenario](report)
    for line in failed:
        print("FAILED:", line)
    if report["signed_late"]:  # a late signature ages its bet: the figures are our own lag
        print(
            f"INVALID: {report['signed_late']} requests were signed after they were due; "
            "this run measured the generator, not the gateway"
        )
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
