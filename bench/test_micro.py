"""Microbenchmarks (make bench). Each benchmarked call loops to amortise call overhead."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.bets.pending import PendingBet, credit
from gateway.client.wallet import Wallet, bet_body
from gateway.config import Settings
from gateway.market.pricing import Quote
from gateway.protocol import BetRequest, parse_bet, verify
from gateway.runtime import Runtime, open_runtime

LOOP = 1000


@pytest.mark.benchmark(group="buckets.take x1000")
def test_buckets_take(benchmark: Any, impl: str) -> None:
    buckets = importlib.import_module(f"fastpath._buckets_{impl}").TokenBuckets(
        100.0, 200.0, 100_000
    )
    keys = [f"127.0.0.{i % 250}" for i in range(LOOP)]
    clock = itertools.count()

    def run() -> None:
        base = next(clock)
        for i, key in enumerate(keys):
            buckets.take(key, base + i * 1e-4)

    benchmark(run)


@pytest.mark.benchmark(group="buckets.take new keys x1000")
def test_buckets_take_new_keys(benchmark: Any, impl: str) -> None:
    """Every take a key not seen for a while (many players' addresses): the table turns
    over, the oldest idle key leaves for each new one."""
    buckets = importlib.import_module(f"fastpath._buckets_{impl}").TokenBuckets(
        100.0, 200.0, 100_000
    )
    keys = [f"10.{i % 200}.{i // 200 % 250}.1" for i in range(50_000)]
    clock = itertools.count()

    def run() -> None:
        start = next(clock) * LOOP
        for i in range(start, start + LOOP):
            buckets.take(keys[i % len(keys)], i / 7000)

    benchmark(run)


@pytest.mark.benchmark(group="queue.push+drain x1000")
def test_queue_push_drain(benchmark: Any, impl: str) -> None:
    queue = importlib.import_module(f"fastpath._queue_{impl}").BatchQueue(4096)
    items = list(range(LOOP))

    def run() -> None:
        for item in items:
            queue.push(item)
        while len(queue):
            queue.drain(256)

    benchmark(run)


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    wallet = Wallet.generate()
    return [
        orjson.dumps(bet_body(wallet, market="BTC-USD", cell_id="cell-1-2", amount=100))
        for _ in range(100)
    ]


@pytest.mark.benchmark(group="protocol x100")
def test_parse_and_validate(benchmark: Any, bodies: list[bytes]) -> None:
    markets = frozenset({"BTC-USD"})
    benchmark(lambda: [parse_bet(b, markets) for b in bodies])


@pytest.mark.benchmark(group="protocol x100")
def test_canonical_and_verify(benchmark: Any, bodies: list[bytes]) -> None:
    bets = [parse_bet(b, frozenset({"BTC-USD"})) for b in bodies]

    def verify_all() -> None:
        for b in bets:
            verify(b.wallet, b.message, b.signature)

    benchmark(verify_all)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Runtime]]:
    settings = Settings.from_env(
        {
            "TAPGATE_DATA_DIR": str(tmp_path),
            "TAPGATE_WALLET_RATE": "1e7",
            "TAPGATE_WALLET_BURST": "1e7",
            "TAPGATE_ADDRESS_RATE": "1e7",
            "TAPGATE_ADDRESS_BURST": "1e7",
            "TAPGATE_BATCH_WAIT_MS": "0",
        }
    )
    loop = asyncio.new_event_loop()
    rt = loop.run_until_complete(open_runtime(settings))
    loop.run_until_complete(_start(rt))
    yield loop, rt
    loop.run_until_complete(rt.close())
    loop.close()


async def _start(rt: Runtime) -> None:
    rt.start()


@pytest.fixture
def funded(runtime: tuple[asyncio.AbstractEventLoop, Runtime]) -> Wallet:
    loop, rt = runtime
    wallet = Wallet.generate()
    loop.run_until_complete(credit(rt.writer, rt.accounts, wallet.address, 10**15, "bench", 0))
    return wallet


async def _post(app: Any, body: bytes) -> int:
    """One POST /api/bets through ``app`` in process; the response status."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/bets",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


@pytest.mark.parametrize("size", [1, 10, 100, 256, 1000])
@pytest.mark.benchmark(group="writer: flush one batch of N bets (synchronous=FULL)")
def test_flush_batch(
    benchmark: Any,
    runtime: tuple[asyncio.AbstractEventLoop, Runtime],
    funded: Wallet,
    size: int,
) -> None:
    loop, rt = runtime
    wallet = funded
    counter = itertools.count()

    def batch() -> list[PendingBet]:
        out = []
        for _ in range(size):
            nonce = f"n{next(counter)}"
            request = BetRequest(
                wallet=wallet.address,
                market="BTC-USD",
                cell_id="cell-1-2",
                row=1,
                col=2,
                amount=1,
                nonce=nonce,
                timestamp=0,
                min_multiplier=None,
                signature="00" * 64,
            )
            key = f"{wallet.address}:{nonce}"
            bet = PendingBet(
                request,
                quote=Quote(190, 0.5, 1, 1e-4, 1e-4),
                accepted_at=0,
                key=key,
                future=loop.create_future(),
            )
            bet.bet_id = rt.writer.next_bet_id
            rt.writer.next_bet_id += 1
            rt.accounts.reserve(wallet.address, 1)
            rt.recent.begin(key, b"", bet.future)
            out.append(bet)
        return out

    def setup() -> tuple[tuple[list[PendingBet]], dict[str, Any]]:
        return (batch(),), {}

    benchmark.pedantic(
        lambda b: loop.run_until_complete(rt.writer._commit_bets(b)),
        setup=setup,
        rounds=30 if size <= 256 else 10,
    )
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["bets_per_second"] = size / benchmark.stats.stats.mean


@pytest.mark.benchmark(group="one request through the ASGI app (in-process)")
def test_whole_request(
    benchmark: Any, runtime: tuple[asyncio.AbstractEventLoop, Runtime], funded: Wallet
) -> None:
    from gateway.http.bets import PlaceBet
    from gateway.http.context import RequestContext

    loop, rt = runtime
    app = RequestContext(PlaceBet(rt.admission, frozenset({"BTC-USD"}), rt.metrics), (), rt.metrics)

    async def one() -> int:
        now = int(time.time() * 1000)
        body = bet_body(funded, market="BTC-USD", cell_id="cell-1-2", amount=1, timestamp=now)
        return await _post(app, orjson.dumps(body))

    assert loop.run_until_complete(one()) == 202
    benchmark(lambda: loop.run_until_complete(one()))


@pytest.mark.parametrize("routing", ["raw", "starlette"])
@pytest.mark.benchmark(group="hot route dispatch: raw ASGI vs Starlette routing (422 path)")
def test_route_dispatch(
    benchmark: Any, runtime: tuple[asyncio.AbstractEventLoop, Runtime], routing: str
) -> None:
    """What the lean raw-ASGI route saves: the same handler, with and without Starlette."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from gateway.http.bets import PlaceBet
    from gateway.http.context import RequestContext

    loop, rt = runtime
    handler = PlaceBet(rt.admission, frozenset({"BTC-USD"}), rt.metrics)
    inner: Any = handler
    if routing == "starlette":
        inner = Starlette(routes=[Route("/api/bets", handler, methods=["POST"])])
    app = RequestContext(inner, (), rt.metrics)

    async def many() -> int:
        statuses = {await _post(app, b'{"unknown": 1}') for _ in range(100)}
        (status,) = statuses
        return status

    assert loop.run_until_complete(many()) == 422
    benchmark(lambda: loop.run_until_complete(many()))
