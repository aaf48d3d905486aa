"""Serving with workers (TAPGATE_WORKERS=2): an owner and two uvicorn processes, real sockets."""

from __future__ import annotations

import asyncio
import marshal
import os
import signal
import socket
import struct
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from gateway.bets.pending import credit
from gateway.client.wallet import Wallet, bet_body, read_headers
from gateway.config import Settings
from gateway.metrics import Metrics, merge_expositions
from gateway.protocol import parse_bet
from gateway.runtime import open_runtime
from gateway.server.channel import MAX_FRAME, Channel
from gateway.server.link import OwnerGone, OwnerLink
from gateway.server.owner import TunnelOutput, WorkerLink
from tests.gatewayproc import (
    IN_PROCESS,
    JSON_HEADERS,
    TEST_MARKET_ENV,
    GatewayProcess,
    markets_priced,
    open_cell,
    shared_tls,
    signed,
    wait_for,
)

pytestmark = pytest.mark.integration

WORKERS = {"TAPGATE_WORKERS": "2"}


def _post(url: str, body: bytes) -> httpx.Response:
    """One request on a connection of its own (the kernel picks the worker)."""
    with httpx.Client(base_url=url, timeout=30, verify=shared_tls()) as c:
        return c.post("/api/bets", content=body, headers=JSON_HEADERS)


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_workers_take_bets_reads_and_the_stream_through_one_owner(tmp_path: Path) -> None:
    """Bets on many connections all commit once, a replay answers the same receipt, reads
    and the stream come through the tunnel, and /metrics adds up every process's counts."""
    gw = GatewayProcess(tmp_path / "data", WORKERS).start()
    try:
        assert len(gw.pids()[1:]) == 2
        wallet = Wallet.generate()
        gw.fund(wallet, 10_000)
        bodies = [orjson.dumps(signed(wallet, cell_id=open_cell(), amount=10)) for _ in range(12)]
        answers = [_post(gw.url, body) for body in bodies]
        assert [a.status_code for a in answers] == [202] * 12, answers[0].text
        replay = _post(gw.url, bodies[0])
        assert replay.status_code == 202 and replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == answers[0].json()
        refused = _post(gw.url, b'{"amount": 1}')
        assert refused.json()["error"]["code"] == "invalid_field"  # refused in the worker
        target = f"/api/wallets/{wallet.address}"
        with gw.client() as c:
            balance = c.get(target, headers=read_headers(wallet, "GET", target)).json()
            metrics = c.get("/metrics").text
        assert balance["balance"] == 10_000 - 12 * 10 and balance["open_bets"] == 12
        assert _metric(metrics, "tapgate_bets_placed_total") == 12
        assert _metric(metrics, "tapgate_bets_replayed_total") == 1
        assert _metric(metrics, 'tapgate_http_requests_total{route="place_bet",status="202"}') == 13
        with gw.database() as db:
            assert db.execute("SELECT count(*) FROM bets").fetchone()[0] == 12
        with connect(gw.url.replace("http", "ws") + "/api/stream", open_timeout=30) as ws:
            assert orjson.loads(ws.recv(timeout=30))["type"] == "hello"
            ws.send(orjson.dumps({"op": "watch", "markets": ["BTC-USD"]}).decode())
            assert orjson.loads(ws.recv(timeout=30))["type"] == "snapshot"
    finally:
        assert gw.stop() == 0
    assert "stopped" in gw.logs()


def test_the_address_limit_holds_across_workers(tmp_path: Path) -> None:
    """Requests from one address on connections of their own (so on either worker) share
    one bucket: exactly the burst is admitted."""
    env = {**WORKERS, "TAPGATE_ADDRESS_BURST": "5", "TAPGATE_ADDRESS_RATE": "0.01"}
    gw = GatewayProcess(tmp_path / "data", env).start()
    try:
        wallet = Wallet.generate()
        gw.fund(wallet, 10_000)
        codes = [
            _post(gw.url, orjson.dumps(signed(wallet, cell_id=open_cell(), amount=1))).status_code
            for _ in range(12)
        ]
    finally:
        gw.stop()
    assert codes.count(202) == 5 and codes.count(429) == 7, codes


def test_a_worker_that_dies_stops_the_whole_gateway(tmp_path: Path) -> None:
    """SIGKILL to a worker: the owner stops the other worker and exits 1 (systemd restarts
    the gateway as a whole)."""
    gw = GatewayProcess(tmp_path / "data", WORKERS).start(markets_ready=False)
    wait_for(lambda: '"listening"' in gw.log_path.read_text(), 60, "every worker to connect")
    first, second = gw.pids()[1:]
    os.kill(first, signal.SIGKILL)
    assert gw.proc is not None
    assert gw.proc.wait(60) == 1
    wait_for(lambda: not _alive(second), 60, "the other worker to exit")
    gw.proc = None
    assert '"worker_exited"' in gw.log_path.read_text()


def test_workers_leave_when_the_owner_is_killed(tmp_path: Path) -> None:
    """SIGKILL to the owner: each worker sees its channel close and exits by itself."""
    gw = GatewayProcess(tmp_path / "data", WORKERS).start(markets_ready=False)
    pids = gw.pids()[1:]
    gw.kill()
    wait_for(lambda: not any(_alive(pid) for pid in pids), 60, "the workers to exit")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_channel_frames_cross_whole_and_in_order() -> None:
    """Frames queued in one loop turn arrive whole and in order; a closed end ends them."""

    async def scenario() -> list[tuple[object, ...]]:
        left, right = socket.socketpair()
        a, b = await Channel.open(left), await Channel.open(right)
        for i in range(200):
            a.send("frame", i, b"x" * i, {"k": [i, None]})
        a.send("big", b"y" * 1_000_000)
        a.close()
        received = [frame async for frame in b.frames()]
        b.close()
        return received

    frames = asyncio.run(scenario())
    assert frames[:200] == [("frame", i, b"x" * i, {"k": [i, None]}) for i in range(200)]
    assert frames[200] == ("big", b"y" * 1_000_000) and len(frames) == 201


def test_channel_frames_survive_any_split_and_refuse_an_oversized_length() -> None:
    """Frames arriving a byte at a time come out whole; a frame cut short by the peer's end
    is not yielded; a length past MAX_FRAME ends the channel with ConnectionError."""

    def encoded(*frame: Any) -> bytes:
        data = marshal.dumps(frame)
        return struct.pack("!I", len(data)) + data

    async def read(raw: bytes) -> tuple[list[tuple[object, ...]], BaseException | None]:
        left, right = socket.socketpair()
        channel = await Channel.open(right)
        received: list[tuple[object, ...]] = []

        async def dribble() -> None:
            for i in range(len(raw)):
                left.send(raw[i : i + 1])
                await asyncio.sleep(0)
            left.close()

        writing = asyncio.create_task(dribble())
        error = None
        try:
            async for frame in channel.frames():
                received.append(frame)
        except ConnectionError as exc:
            error = exc
        await writing
        channel.close()
        return received, error

    whole = encoded("a", 1, b"xy") + encoded("b", {"k": [None]})
    assert asyncio.run(read(whole + encoded("c", 2)[:-1])) == (
        [("a", 1, b"xy"), ("b", {"k": [None]})],
        None,
    )
    received, error = asyncio.run(read(whole + struct.pack("!I", MAX_FRAME + 1)))
    assert received == [("a", 1, b"xy"), ("b", {"k": [None]})]
    assert isinstance(error, ConnectionError)


def test_an_owner_killed_with_frames_unread_ends_the_link() -> None:
    """The owner dies with this worker's frames unread (the kernel resets the socket, not
    a clean end): the link is gone, a waiting ask and any later ask raise OwnerGone."""

    async def scenario() -> tuple[bool, bool, bool]:
        left, right = socket.socketpair()
        link = OwnerLink(await Channel.open(left), buffer=8)
        reading = asyncio.create_task(link.run())
        waiting = asyncio.create_task(link.ask("take", "127.0.0.1", 0.0))
        await asyncio.sleep(0.05)  # the frame is in the owner's buffer, never read
        right.close()
        await asyncio.wait_for(reading, 30)
        with pytest.raises(OwnerGone):
            await waiting
        with pytest.raises(OwnerGone):
            await link.ask("take", "127.0.0.1", 0.0)
        return link.gone.is_set(), reading.exception() is None, waiting.done()

    assert asyncio.run(scenario()) == (True, True, True)


class _Frames:
    """A channel that only records what it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[object, ...]] = []

    def send(self, *frame: object) -> None:
        self.sent.append(frame)


def test_a_stream_message_crosses_the_channel_once_per_worker_in_order() -> None:
    """One text sent on many tunnels in a turn is one fan frame; each tunnel's frames keep
    their order (a send that would overtake its tunnel's later frame gets its own)."""

    async def scenario() -> list[tuple[object, ...]]:
        frames = _Frames()
        out = TunnelOutput(frames)  # type: ignore[arg-type]
        tick, result = "tick text", "result text"
        for ident in (1, 2, 3):
            out.send(ident, {"type": "websocket.send", "text": tick})
        out.send(1, {"type": "websocket.send", "text": result})
        out.send(4, {"type": "websocket.send", "text": result})
        out.send(4, {"type": "websocket.send", "text": tick})  # after its result: no join
        out.send(5, {"type": "http.response.body", "body": b"x"})
        out.end(5, {}, None, "markets")
        await asyncio.sleep(0)
        return frames.sent

    tick = {"type": "websocket.send", "text": "tick text"}
    result = {"type": "websocket.send", "text": "result text"}
    assert asyncio.run(scenario()) == [
        ("fan", [1, 2, 3], tick),
        ("fan", [1, 4], result),
        ("send", 4, tick),
        ("send", 5, {"type": "http.response.body", "body": b"x"}),
        ("end", 5, {}, None, "markets"),
    ]


def _exposition(count: int, seconds: list[float], created: float) -> bytes:
    """A real registry's exposition, its counter's creation time set to ``created``."""
    registry = CollectorRegistry()
    Counter("t", "t", ["a"], registry=registry).labels("x").inc(count)
    histogram = Histogram("h", "h", buckets=(1.0,), registry=registry)
    for value in seconds:
        histogram.observe(value)
    lines = generate_latest(registry).decode().splitlines()
    return "".join(
        f"{line.rsplit(' ', 1)[0]} {created}\n" if line.startswith("t_created") else line + "\n"
        for line in lines
    ).encode()


def test_merged_metrics_add_counts_and_keep_the_earliest_creation() -> None:
    """Counters and histogram buckets add up across processes; *_created takes the minimum."""
    owner = _exposition(2, [0.5], created=100.0)
    worker = _exposition(5, [0.5, 3.0], created=50.0)
    merged = merge_expositions([owner, worker]).decode()
    assert 't_total{a="x"} 7.0' in merged
    assert 't_created{a="x"} 50.0' in merged
    assert 'h_bucket{le="1.0"} 2.0' in merged and 'h_bucket{le="+Inf"} 3.0' in merged
    assert "h_count 3.0" in merged and "h_sum 4.0" in merged
    assert merged.count("# TYPE t_total counter") == 1


def test_bets_refused_before_the_signature_cost_the_owner_nothing_more(tmp_path: Path) -> None:
    """A bad signature through a worker is refused 401 and leaves no row or reservation."""
    gw = GatewayProcess(tmp_path / "data", WORKERS).start()
    try:
        wallet = Wallet.generate()
        gw.fund(wallet, 100)
        body = signed(wallet, cell_id=open_cell(), amount=100)
        body["signature"] = ("0" if body["signature"][0] != "0" else "1") + body["signature"][1:]
        answer = _post(gw.url, orjson.dumps(body))
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_signature"
        good = _post(gw.url, orjson.dumps(signed(wallet, cell_id=open_cell(), amount=100)))
        assert good.status_code == 202  # the whole balance was still free
    finally:
        gw.stop()


def test_the_owner_answers_each_admit_once_from_the_commit(tmp_path: Path) -> None:
    """A bet, its replay while in flight, another bet reusing its nonce and its replay
    after the commit are each answered once, in the frame the worker reads."""
    settings = Settings.from_env(
        {**TEST_MARKET_ENV, **IN_PROCESS, "TAPGATE_DATA_DIR": str(tmp_path)}
    )
    wallet = Wallet.generate()

    def fields(amount: int) -> object:
        body = bet_body(wallet, market="BTC-USD", cell_id=open_cell(), amount=amount, nonce="n1")
        return tuple(parse_bet(orjson.dumps(body), {"BTC-USD"}))  # as a worker sends it

    async def scenario() -> dict[object, tuple[Any, ...]]:
        rt = await open_runtime(settings)
        rt.start()
        await markets_priced(rt)
        try:
            await credit(rt.writer, rt.accounts, wallet.address, 1000, "d-1", 0)
            frames = _Frames()
            link = WorkerLink(frames, rt.admission, _no_app, time.time)  # type: ignore[arg-type]
            bet, other, now = fields(100), fields(50), time.time()
            link._admit(("admit", 1, bet, now))
            link._admit(("admit", 2, bet, now))  # the same bet, its group not yet written
            link._admit(("admit", 3, other, now))  # the same nonce, another bet
            for _ in range(3000):  # the group commit answers 1 and 2; bounded, not timed
                if len(frames.sent) == 3:
                    break
                await asyncio.sleep(0.01)
            link._admit(("admit", 4, bet, time.time()))  # after the commit: the stored receipt
            return {frame[1]: frame[2:] for frame in frames.sent}
        finally:
            await rt.close()

    answers = asyncio.run(scenario())
    assert set(answers) == {1, 2, 3, 4}
    error, receipt, bet_id, replayed, log_fields = answers[1]
    assert (error, replayed) == (None, False) and orjson.loads(receipt)["balance"] == 900
    assert log_fields == {"batch_id": 1} and bet_id == int(orjson.loads(receipt)["bet_id"])
    assert answers[2] == (None, receipt, bet_id, True, {})
    assert answers[4] == (None, receipt, bet_id, True, {})
    assert answers[3][0][0] == "nonce_reused" and answers[3][1:] == (None, 0, False, {})


async def _no_app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("admits are not tunnelled")


def test_merged_gateway_expositions_read_back_as_the_sum_of_the_processes() -> None:
    """Real gateway registries, merged line by line, read back with the client's own parser
    as the sum of each process's samples (creation times: the earliest), one TYPE each."""
    texts = []
    for scale in (1, 2, 3):
        metrics = Metrics(CollectorRegistry(), process=False)
        metrics.bets_resolved.labels("won").inc(scale)
        metrics.payout.inc(100 * scale)
        for _ in range(scale):
            metrics.batch_size.observe(7 * scale)
            metrics.queue_wait_seconds.observe(0.003 * scale)
        texts.append(generate_latest(metrics.registry))
    merged = merge_expositions(texts).decode()
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode()):
            for s in family.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                old = expected.get(key)
                if old is None:
                    expected[key] = s.value
                else:
                    expected[key] = (
                        min(old, s.value) if s.name.endswith("_created") else old + s.value
                    )
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(merged)
        for s in family.samples
    }
    assert got == expected
    assert got[("tapgate_bets_resolved_total", (("outcome", "won"),))] == 6
    types = [line for line in merged.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)) == len(list(text_string_to_metric_families(merged)))
