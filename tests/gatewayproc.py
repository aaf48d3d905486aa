"""A real gateway: ``python -m gateway serve`` as a subprocess on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.client.wallet import Wallet, bet_body
from gateway.config import Settings
from gateway.runtime import Runtime

ADMIN_TOKEN = "test-admin-token-0123456789"
JSON_HEADERS = {"content-type": "application/json"}

# Markets for tests that are not about markets: ten-minute columns open for an hour and a
# quiet simulated feed, so ``TEST_ROW`` in the column after next is open and priced for
# the whole life of a test gateway (tests/market/ use sub-second settings instead).
COLUMN_MS = 600_000
TEST_ROW = 650
TEST_MARKET_ENV = {
    "TAPGATE_MARKET_TICK_INTERVAL_MS": "50",
    "TAPGATE_MARKET_MIN_TICKS": "10",
    "TAPGATE_MARKET_RECOVER_MS": "200",
    "TAPGATE_MARKET_COLUMN_MS": str(COLUMN_MS),
    "TAPGATE_MARKET_LOCK_AHEAD_MS": "1000",
    "TAPGATE_MARKET_HORIZON_MS": "3600000",
    "TAPGATE_MARKET_SIM_START_PRICE": "6500000",
    "TAPGATE_MARKET_SIM_VOLATILITY": "0.3",
    "TAPGATE_MARKET_BAND": "10000",
    "TAPGATE_MARKET_GRID_ROWS": "3",
    # a busy machine may commit a tick late: only the quote-age tests shorten this
    "TAPGATE_MARKET_MAX_QUOTE_AGE_MS": "5000",
    "TAPGATE_MARKET_SIM_SEED": "7",
}


def test_settings(data_dir: Path, **env: str) -> Settings:
    """In-process settings with TEST_MARKET_ENV (``env`` adds TAPGATE_* values)."""
    return Settings.from_env(
        {**TEST_MARKET_ENV, **IN_PROCESS, "TAPGATE_DATA_DIR": str(data_dir), **env}
    )


# In-process runtimes share pytest's interpreter: do not freeze its garbage collector.
IN_PROCESS = {"TAPGATE_GC_FREEZE": "0"}


async def markets_priced(rt: Runtime, timeout: float = 10.0) -> None:
    """Wait until an in-process runtime's markets are priced and their breakers normal."""
    deadline = time.monotonic() + timeout
    while not all(m.table and m.breaker.state == 0 for m in rt.markets):
        if time.monotonic() > deadline:
            raise AssertionError("markets did not become ready")
        await asyncio.sleep(0.02)


def client_markets_priced(client: Any, timeout: float = 10.0) -> None:
    """The same through a Starlette TestClient."""
    deadline = time.monotonic() + timeout
    while True:
        markets = client.get("/api/markets").json()["markets"]
        if all(m["priced"] and m["breaker"]["state"] == 0 for m in markets):
            return
        if time.monotonic() > deadline:
            raise AssertionError("markets did not become ready")
        time.sleep(0.02)


def open_cell() -> str:
    """A cell of TEST_MARKET_ENV that takes bets now."""
    return f"cell-{TEST_ROW}-{int(time.time() * 1000) // COLUMN_MS + 2}"


ROOT = Path(__file__).resolve().parent.parent


def tapgate(
    *args: str, env: dict[str, str] | None = None, data: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a subprocess (coverage follows it through COVERAGE_PROCESS_START).

    ``env`` replaces the environment (default: a bare one); ``data`` sets TAPGATE_DATA_DIR.
    """
    run_env = dict(env) if env is not None else {"PATH": "/usr/bin:/bin", **TEST_MARKET_ENV}
    for key in ("COVERAGE_PROCESS_START", "COVERAGE_FILE"):
        if key in os.environ:
            run_env.setdefault(key, os.environ[key])
    if data is not None:
        run_env["TAPGATE_DATA_DIR"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def opened(database: str | Path, **kwargs: Any) -> Iterator[sqlite3.Connection]:
    """A SQLite connection that commits on success (as ``with sqlite3.connect()`` does) and,
    unlike it, is closed afterwards."""
    conn = sqlite3.connect(database, **kwargs)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def _default_sigint() -> None:
    """In the child: SIGINT as on a terminal, even when the suite runs in the background
    (a shell starts background jobs with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class GatewayProcess:
    """Starts, stops and kills a gateway; one data directory for its whole life."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.verify: ssl.SSLContext | bool = True  # trusts a TLS gateway's certificate

    @property
    def url(self) -> str:
        scheme = "https" if "TAPGATE_TLS_CERTFILE" in self.extra_env else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPGATE_")}
        for key in ("TAPGATE_NO_EXTENSIONS", "TAPGATE_REQUIRE_EXTENSIONS", "TAPGATE_WORKERS"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(TEST_MARKET_ENV)
        env.update(
            TAPGATE_DATA_DIR=str(self.data_dir),
            TAPGATE_ADMIN_TOKEN=ADMIN_TOKEN,
            TAPGATE_LOG_LEVEL="info",
        )
        env.update(self.extra_env)
        return env

    def start(
        self, timeout: float = 60.0, markets_ready: bool = True, same_port: bool = False
    ) -> GatewayProcess:
        """Start and wait until healthy (``timeout`` is a bound for a stuck start on a busy
        machine, not a speed the test expects); ``same_port`` restarts where clients (a
        browser page) expect the gateway to come back."""
        if not same_port:
            self.port = free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(self.port)],
            env=self.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_sigint,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}: {self.logs()}")
            try:
                with self.client() as client:  # one shared TLS context, not one a poll
                    health = client.get("/healthz", timeout=5)
                if health.status_code == 200 and (not markets_ready or self.markets_ready()):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.proc.kill()  # never left running past its test (an owner whose start failed hung)
        self.proc.wait(30)
        raise RuntimeError(f"gateway did not become healthy: {self.logs()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path (coverage data is written)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def markets_ready(self) -> bool:
        """Every market priced and its breaker normal."""
        with self.client() as client:
            markets = client.get("/api/markets", timeout=5).json()["markets"]
        return all(m["priced"] and m["breaker"]["state"] == 0 for m in markets)

    def quote(self, market: str, cell: str) -> str:
        """The multiplier the grid offers for ``cell`` now."""
        with self.client() as client:
            grid = client.get(f"/api/markets/{market}/grid", timeout=5).json()
        return str(next(c["multiplier"] for c in grid["cells"] if c["cell_id"] == cell))

    def kill(self) -> None:
        """SIGKILL the owner (its workers, if any, see the channel close and leave)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def pids(self) -> list[int]:
        """The owner's process id and its workers' (none in one process)."""
        assert self.proc is not None
        pid = self.proc.pid
        return [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]

    def freeze(self) -> list[int]:
        """SIGSTOP the owner and its workers: time stops for the gateway, whatever it has
        not answered stays unanswered; returns the frozen process ids."""
        pids = self.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def crash(self, pids: list[int]) -> None:
        """SIGKILL every process in ``pids`` at once, as a crash of the whole service."""
        assert self.proc is not None
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def client(self, **kwargs: Any) -> httpx.Client:
        verify = shared_tls() if self.verify is True else self.verify
        return httpx.Client(base_url=self.url, timeout=10, verify=verify, **kwargs)

    @contextlib.contextmanager
    def database(self) -> Iterator[sqlite3.Connection]:
        """The gateway's database, read-only, closed afterwards."""
        conn = sqlite3.connect(f"file:{self.data_dir / 'tapgate.db'}?mode=ro", uri=True)
        try:
            yield conn
        finally:
            conn.close()

    def post_bet(self, body: dict[str, Any]) -> httpx.Response:
        """POST one bet body as JSON."""
        with self.client() as c:
            return c.post("/api/bets", content=orjson.dumps(body), headers=JSON_HEADERS)

    def fund(self, wallet: Wallet, amount: int, reference: str | None = None) -> httpx.Response:
        with self.client() as c:
            r = c.post(
                f"/admin/wallets/{wallet.address}/credit",
                json={"amount": amount, "reference": reference or os.urandom(8).hex()},
                headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        assert r.status_code == 200, r.text
        return r


def signed(wallet: Wallet, **overrides: Any) -> dict[str, Any]:
    """A valid signed bet body; overrides go into the signed values."""
    fields: dict[str, Any] = {"market": "BTC-USD", "cell_id": open_cell(), "amount": 100}
    fields.update(overrides)
    return bet_body(wallet, **fields)


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """The default TLS context, built once for every test client (see async_client)."""
    return ssl.create_default_context()


def async_client(
    url: str, *, timeout: float = 30, local_address: str | None = None
) -> httpx.AsyncClient:
    """A client of a plain-HTTP test gateway, made in well under a millisecond.

    httpx builds a TLS context (loading the CA bundle) for every client it is not given
    one: 50-90 ms each on a slow machine. Sixty clients made after bets were signed aged
    those bets past the five-second receive window (401 in a drain test); every test
    client shares one context instead."""
    transport = httpx.AsyncHTTPTransport(verify=shared_tls(), local_address=local_address)
    return httpx.AsyncClient(base_url=url, timeout=timeout, transport=transport)


async def post_all(
    url: str, bodies: list[dict[str, Any]], sources: list[str] | None = None
) -> list[httpx.Response]:
    """Post each body on its own warmed-up connection (from ``sources[i]`` when given), all
    released together."""
    clients = [
        async_client(url, local_address=sources[i] if sources else None) for i in range(len(bodies))
    ]
    try:
        await asyncio.gather(*(c.get("/healthz") for c in clients))
        barrier = asyncio.Event()

        async def send(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
            await barrier.wait()
            return await client.post("/api/bets", content=orjson.dumps(body), headers=JSON_HEADERS)

        tasks = [asyncio.create_task(send(c, b)) for c, b in zip(clients, bodies, strict=True)]
        await asyncio.sleep(0.05)
        barrier.set()
        return list(await asyncio.gather(*tasks))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def post_pooled(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Post every body at once through one client's pool: no warm-up, so the bets arrive
    soon after the call (tests on sub-second columns); post_all releases them together."""
    async with async_client(url) as client:
        return list(
            await asyncio.gather(
                *(client.post("/api/bets", content=orjson.dumps(b), headers=JSON_HEADERS)
                  for b in bodies)
            )
        )  # fmt: skip


# refusals that say the machine was slow, not that the gateway was wrong: the bet reached
# the gateway after its timestamp left the receive window, the scripted feed's ticks came
# late (the market then refuses for a moment, as it should), or the queue was full
SLOW_MACHINE = frozenset({"timestamp_out_of_window", "quote_stale", "market_halted", "overloaded"})


def post_until_accepted(
    url: str,
    count: int,
    sign: Callable[[list[int]], list[dict[str, Any]]],
    *,
    retry: frozenset[str] = SLOW_MACHINE,
    deadline_s: float = 60,
) -> list[tuple[dict[str, Any], httpx.Response]]:
    """``count`` bets, each 202 in the end: each round ``sign(indices)`` signs the bets
    still missing afresh and posts them at once; a bet refused with a code in ``retry`` goes
    again until ``deadline_s`` (a bound, not a speed), and any other refusal fails at once,
    naming it. The accepted bodies with their responses, in index order."""
    deadline = time.monotonic() + deadline_s
    done: dict[int, tuple[dict[str, Any], httpx.Response]] = {}
    while len(done) < count:
        todo = [i for i in range(count) if i not in done]
        bodies = sign(todo)
        refused = []
        for i, body, r in zip(todo, bodies, asyncio.run(post_pooled(url, bodies)), strict=True):
            if r.status_code == 202:
                done[i] = (body, r)
            else:
                refused.append(r)
        other = [r.text for r in refused if r.json()["error"]["code"] not in retry]
        assert not other, other[:3]
        assert not refused or time.monotonic() < deadline, [r.text for r in refused[:3]]
        if refused:
            time.sleep(0.1)  # a busy gateway gets a moment; the next round signs afresh
    return [done[i] for i in range(count)]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; ``timeout`` bounds a stuck run, it is not a speed."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
