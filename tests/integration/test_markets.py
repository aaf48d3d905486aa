"""Markets over a real server and a scripted oracle: a full game, breaker, limits, stream."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from gateway.client.feeder import signed_tick
from gateway.client.wallet import Wallet, bet_body
from gateway.http.stream import subscribe_message
from gateway.protocol import cell_id
from gateway.store.invariants import ledger_violations
from tests.gatewayproc import (
    GatewayProcess,
    post_pooled,
    post_until_accepted,
    tapgate,
    wait_for,
)
from tests.integration.scripted import COLUMN_MS, MARKET_ENV, ORACLE, ScriptedFeed, priced, zigzag
from tests.schemas import stream_errors

ENV = {
    **MARKET_ENV,
    "TAPGATE_MARKET_CELL_LIABILITY_CAP": "200000",
    "TAPGATE_MARKET_WALLET_CELL_CAP": "20000",
    "TAPGATE_CORS_ORIGINS": "https://app.example",
}


@pytest.fixture(scope="module")
def market(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayProcess, ScriptedFeed]]:
    gw = GatewayProcess(tmp_path_factory.mktemp("mk") / "data", ENV)
    gw.start(markets_ready=False)
    feed = ScriptedFeed(gw).start()
    priced(gw)
    yield gw, feed
    feed.stop()
    gw.stop()


def _column(lead_ms: int) -> int:
    """The first column starting at least ``lead_ms`` from now."""
    return -(-(int(time.time() * 1000) + lead_ms) // COLUMN_MS)


def _bet(
    gw: GatewayProcess, wallet: Wallet, row: int, col: int, amount: int = 100
) -> httpx.Response:
    return gw.post_bet(bet_body(wallet, market="BTC-USD", cell_id=cell_id(row, col), amount=amount))


def _closed(r: httpx.Response) -> bool:
    """409 cell_closed: the bet came after its column closed (on a busy machine, late)."""
    return r.status_code == 409 and r.json()["error"]["code"] == "cell_closed"


def _bet_ahead(gw: GatewayProcess, wallet: Wallet, row: int) -> httpx.Response:
    """A bet on the first column a second ahead; on a busy machine the request can take
    longer than the column stays open, so a 409 cell_closed tries the next one (30 s)."""
    deadline = time.monotonic() + 30
    while True:
        r = _bet(gw, wallet, row, _column(1000))
        if not _closed(r):
            return r
        assert time.monotonic() < deadline, r.text


def _statuses(gw: GatewayProcess, ids: list[int]) -> dict[int, str]:
    with gw.database() as conn:
        rows = conn.execute(
            "SELECT id, status FROM bets WHERE id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(ids).decode(),),
        ).fetchall()
    return dict(rows)


# the full game's bets: (row, column after the first) -> what the script makes of them
_PLAN = {
    (99, 0): "lost",
    (101, 0): "won",  # crossed between two ticks
    (102, 0): "won",
    (104, 0): "lost",
    (99, 1): "void",
    (102, 1): "won",  # hit before the gap
    (104, 1): "void",
}


def _full_game(start: int) -> Callable[[int], int | None]:
    """The full game's price path, for the columns from ``start`` on."""

    def script(ts: int) -> int | None:
        if ts < start + 250:
            return zigzag(ts)  # row 100
        if ts < start + 560:
            return 10_240 if (ts // 50) % 2 else 10_260  # row 102: jumps over row 101
        if ts < start + 1000:
            return None  # a 440 ms gap in the next column's window
        return 10_240 if (ts // 50) % 2 else 10_260

    return script


def test_full_game_wins_loses_and_voids_exactly_the_right_bets(
    market: tuple[GatewayProcess, ScriptedFeed],
) -> None:
    """A scripted path: hits, a band jumped over, misses and a feed gap settle as the rule
    says. A bet the busy machine posts after its column closed (409 cell_closed) starts the
    game again on a later column with a new wallet (a 60 s bound, not a speed)."""
    gw, feed = market
    deadline = time.monotonic() + 60
    try:
        while True:
            col = _column(1500)
            feed.script = _full_game(col * COLUMN_MS)
            wallet = Wallet.generate()
            gw.fund(wallet, 100_000)
            placed: dict[int, tuple[tuple[int, int], dict[str, Any]]] = {}
            for row, offset in _PLAN:
                r = _bet(gw, wallet, row, col + offset)
                if _closed(r):
                    break
                assert r.status_code == 202, r.text
                placed[int(r.json()["bet_id"])] = ((row, offset), r.json())
            else:
                break
            assert time.monotonic() < deadline, r.text
        ids = list(placed)
        wait_for(lambda: "accepted" not in _statuses(gw, ids).values(), 30, "settlement")
    finally:
        feed.script = zigzag
    statuses = _statuses(gw, ids)
    assert {placed[i][0]: s for i, s in statuses.items()} == _PLAN
    expected = 100_000
    for cell, receipt in placed.values():
        expected -= receipt["amount"]
        if _PLAN[cell] == "won":
            expected += receipt["potential_payout"]
        elif _PLAN[cell] == "void":
            expected += receipt["amount"]
    with gw.database() as conn:
        assert ledger_violations(conn) == []
        (balance,) = conn.execute(
            "SELECT balance FROM accounts WHERE id = ?", (wallet.address,)
        ).fetchone()
        settlements = conn.execute(
            "SELECT bet_id, outcome, payout, tick_seq FROM settlements "
            "WHERE bet_id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(ids).decode(),),
        ).fetchall()
    assert balance == expected
    assert len(settlements) == len(ids)
    for bet_id, outcome, payout, tick_seq in settlements:
        assert (tick_seq is not None) == (outcome == "won")
        receipt = placed[bet_id][1]
        assert (
            payout
            == {"won": receipt["potential_payout"], "void": receipt["amount"], "lost": 0}[outcome]
        )


def test_ticks_need_the_oracle_signature(market: tuple[GatewayProcess, ScriptedFeed]) -> None:
    """A tick signed by another key, or altered after signing, is refused and not stored."""
    gw, _ = market
    with gw.client() as c:
        seq = c.get("/api/markets").json()["markets"][0]["seq"] + 1000
        ts = int(time.time() * 1000)
        forged = signed_tick(Wallet.generate(), "BTC-USD", seq, 10_050, ts)
        altered = {**signed_tick(ORACLE, "BTC-USD", seq, 10_050, ts), "price": 10_090}
        for tick in (forged, altered):
            r = c.post("/admin/markets/BTC-USD/ticks", json={"ticks": [tick]})
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature"
    with gw.database() as conn:
        assert conn.execute("SELECT count(*) FROM ticks WHERE seq = ?", (seq,)).fetchone() == (0,)


def test_cells_outside_the_open_columns_are_closed(
    market: tuple[GatewayProcess, ScriptedFeed],
) -> None:
    """Inside the lock-ahead, past the horizon, or far from the price: 409 cell_closed."""
    gw, _ = market
    wallet = Wallet.generate()
    gw.fund(wallet, 10_000)
    now_col = int(time.time() * 1000) // COLUMN_MS
    for row, col in ((100, now_col), (101, now_col + 10), (500, _column(1000))):
        r = _bet(gw, wallet, row, col)
        assert r.status_code == 409 and r.json()["error"]["code"] == "cell_closed", r.text
    with gw.client() as c:
        grid = c.get("/api/markets/BTC-USD/grid").json()
    assert grid["cells"], grid
    for cell in grid["cells"]:
        assert cell["start_ms"] - grid["server_time_ms"] >= 200


def test_limits_hold_under_concurrent_bets(market: tuple[GatewayProcess, ScriptedFeed]) -> None:
    """80 concurrent bets on one cell: accepted payouts stay within the cell's cap; an
    unfunded wallet then hears insufficient_funds, not whether the cell is full."""
    gw, _ = market
    deadline = time.monotonic() + 60
    while True:  # a round the column closed during (a busy machine) tries a later cell
        wallets = [Wallet.generate() for _ in range(8)]
        for w in wallets:
            gw.fund(w, 100_000)
        cell = f"cell-104-{_column(2500)}"
        bodies = [
            bet_body(w, market="BTC-USD", cell_id=cell, amount=1000)
            for w in wallets
            for _ in range(10)
        ]
        responses = asyncio.run(post_pooled(gw.url, bodies))
        accepted = [r.json() for r in responses if r.status_code == 202]
        refused = [r.json()["error"]["code"] for r in responses if r.status_code != 202]
        probe = gw.post_bet(
            bet_body(Wallet.generate(), market="BTC-USD", cell_id=cell, amount=1000)
        )
        if "cell_closed" not in [*refused, probe.json()["error"]["code"]]:
            break
        assert time.monotonic() < deadline, refused
    assert accepted and refused
    assert set(refused) == {"exposure_limit"}
    assert (probe.status_code, probe.json()["error"]["code"]) == (409, "insufficient_funds")
    assert sum(a["potential_payout"] for a in accepted) <= 200_000
    assert (
        sum(a["potential_payout"] for a in accepted) + max(a["potential_payout"] for a in accepted)
        > 200_000
    )
    with gw.database() as conn:
        (stored,) = conn.execute(
            "SELECT coalesce(sum(potential_payout), 0) FROM bets WHERE cell_id = ?", (cell,)
        ).fetchone()
        assert ledger_violations(conn) == []
    assert stored == sum(a["potential_payout"] for a in accepted)


def test_feed_outage_halts_and_recovery_resumes(
    market: tuple[GatewayProcess, ScriptedFeed],
) -> None:
    """No ticks: WARNING, then CRITICAL (503 market_halted, /readyz 503); then back to NORMAL."""
    gw, feed = market
    wallet = Wallet.generate()
    gw.fund(wallet, 10_000)
    feed.script = lambda ts: None
    try:
        wait_for(lambda: _breaker(gw) == 2, 30, "critical")
        r = _bet(gw, wallet, 101, _column(1000))
        assert r.status_code == 503 and r.json()["error"]["code"] == "market_halted", r.text
        assert "price feed" in r.json()["error"]["message"]
        with gw.client() as c:
            assert c.get("/readyz").status_code == 503
    finally:
        feed.script = zigzag
    wait_for(lambda: _breaker(gw) == 0, 30, "recovery")
    assert _bet_ahead(gw, wallet, 101).status_code == 202
    logs = gw.log_path.read_text()
    assert '"new":"critical"' in logs and '"new":"normal"' in logs


def _breaker(gw: GatewayProcess) -> int:
    with gw.client() as c:
        return int(c.get("/api/markets").json()["markets"][0]["breaker"]["state"])


def test_operator_halt_survives_a_restart_until_resumed(
    market: tuple[GatewayProcess, ScriptedFeed],
) -> None:
    """tapgate market halt refuses bets (503) even after a restart; resume lifts it."""
    gw, _ = market
    env = {"PATH": "/usr/bin:/bin", "TAPGATE_ADMIN_TOKEN": "test-admin-token-0123456789"}
    halted = tapgate(
        "market", "halt", "BTC-USD", "--reason", "exchange maintenance", "--url", gw.url, env=env
    )
    assert halted.returncode == 0, halted.stderr
    assert orjson.loads(halted.stdout)["breaker"]["state"] == 2
    wallet = Wallet.generate()
    gw.fund(wallet, 10_000)
    r = _bet(gw, wallet, 101, _column(1000))
    assert r.status_code == 503 and "exchange maintenance" in r.text
    gw.stop()
    gw.start(markets_ready=False)
    time.sleep(0.5)
    assert _breaker(gw) == 2
    resumed = tapgate("market", "resume", "BTC-USD", "--url", gw.url, env=env)
    assert resumed.returncode == 0, resumed.stderr
    priced(gw)
    assert _bet_ahead(gw, wallet, 101).status_code == 202


def _row_102_from(start: int) -> Callable[[int], int | None]:
    """Row 100 until ``start`` + 100 ms, then inside row 102."""
    return lambda ts: zigzag(ts) if ts < start + 100 else 10_240 if (ts // 50) % 2 else 10_260


def test_stream_sends_ticks_and_only_the_subscribers_own_results(
    market: tuple[GatewayProcess, ScriptedFeed],
) -> None:
    """A subscribed client gets its own bet results and never another wallet's."""
    gw, feed = market
    mine, other = Wallet.generate(), Wallet.generate()
    gw.fund(mine, 10_000)
    gw.fund(other, 10_000)
    try:
        with connect(gw.url.replace("http", "ws") + "/api/stream", open_timeout=5) as ws:
            hello = orjson.loads(ws.recv(timeout=5))
            assert hello["type"] == "hello" and hello["markets"][0]["market"] == "BTC-USD"
            assert hello["protocol"] == 2 and len(hello["challenge"]) == 32
            ws.send(orjson.dumps({"op": "watch", "markets": ["BTC-USD"]}).decode())
            ts = int(time.time() * 1000)
            ws.send(
                orjson.dumps(
                    {
                        "op": "subscribe",
                        "wallet": mine.address,
                        "timestamp": ts,
                        "signature": mine.sign(
                            subscribe_message(hello["challenge"], mine.address, ts)
                        ),
                    }
                ).decode()
            )
            deadline = time.monotonic() + 60
            others: list[str] = []
            while True:  # a bet the busy machine posts after its column closed: a later one
                col = _column(1000)
                feed.script = _row_102_from(col * COLUMN_MS)
                placed = _bet(gw, other, 102, col)
                if not _closed(placed):
                    others.append(placed.json()["bet_id"])
                    placed = _bet(gw, mine, 102, col)
                    if not _closed(placed):
                        mine_id = placed.json()["bet_id"]
                        break
                assert time.monotonic() < deadline, placed.text
            seen: dict[str, list[dict[str, Any]]] = {}
            deadline = time.monotonic() + 10
            while "bet_result" not in seen and time.monotonic() < deadline:
                message = orjson.loads(ws.recv(timeout=5))
                seen.setdefault(message["type"], []).append(message)
            drain_until = time.monotonic() + 1.0  # the other result settles in the same batch
            while time.monotonic() < drain_until:
                try:
                    message = orjson.loads(ws.recv(timeout=0.2))
                except TimeoutError:
                    continue
                seen.setdefault(message["type"], []).append(message)
    finally:
        feed.script = zigzag
    assert seen["subscribed"][0]["wallet"] == mine.address
    assert seen["snapshot"][0]["grid"]["market"] == "BTC-USD"
    assert seen["tick"] and seen["grid_delta"]
    numbered = [m for kind in ("snapshot", "tick", "grid_delta") for m in seen[kind]]
    sequence = sorted(m["stream_seq"] for m in numbered)
    assert sequence == list(range(sequence[0], sequence[0] + len(sequence)))  # no gap
    results = seen["bet_result"]
    assert all(stream_errors(m) == [] for kind in seen.values() for m in kind), seen.keys()
    assert [r["bet_id"] for r in results] == [mine_id]
    assert results[0]["status"] == "won" and results[0]["payout"] > 0
    assert others and all(r["bet_id"] not in others for r in results)


def _messages(ws: Any, seconds: float) -> list[dict[str, Any]]:
    """Every message ``ws`` receives in the next ``seconds``."""
    out: list[dict[str, Any]] = []
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        try:
            out.append(orjson.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return out


def test_stream_sends_a_market_only_to_the_connections_watching_it(
    market: tuple[GatewayProcess, ScriptedFeed],
) -> None:
    """An idle connection gets nothing public; watch sends a snapshot then the market's
    numbered events; an unknown market is refused; unwatch (in a binary frame) stops them.
    The client's permessage-deflate offer is answered without server context takeover
    (each message compressed once for every connection) and every message reads back."""
    gw, _ = market
    url = gw.url.replace("http", "ws") + "/api/stream"
    with connect(url, open_timeout=5) as idle, connect(url, open_timeout=5) as ws:
        for conn in (idle, ws):
            assert conn.response is not None
            agreed = conn.response.headers["Sec-WebSocket-Extensions"]
            assert (
                agreed.startswith("permessage-deflate") and "server_no_context_takeover" in agreed
            )
        assert orjson.loads(idle.recv(timeout=5))["type"] == "hello"
        assert orjson.loads(ws.recv(timeout=5))["type"] == "hello"
        ws.send(orjson.dumps({"op": "watch", "markets": ["NOPE"]}).decode())
        refused = orjson.loads(ws.recv(timeout=5))
        assert (refused["type"], refused["code"]) == ("error", "invalid_field")
        ws.send(orjson.dumps({"op": "watch", "markets": ["BTC-USD"]}).decode())
        watched = _messages(ws, 1.5)
        assert watched[0]["type"] == "snapshot" and watched[0]["summary"]["market"] == "BTC-USD"
        assert {m["type"] for m in watched[1:]} >= {"tick", "grid_delta"}
        assert [m["stream_seq"] for m in watched] == list(
            range(watched[0]["stream_seq"], watched[0]["stream_seq"] + len(watched))
        )
        assert [stream_errors(m) for m in [refused, *watched]] == [[]] * (1 + len(watched))
        ws.send(orjson.dumps({"op": "unwatch", "markets": ["BTC-USD"]}))  # a binary frame
        after = [m for m in _messages(ws, 1.0) if m["type"] != "tick" and m["type"] != "grid_delta"]
        assert [m["type"] for m in after] == ["unwatched"]
        assert _messages(ws, 0.5) == [] and _messages(idle, 0.1) == []


def test_stream_and_cors_refuse_foreign_origins(
    market: tuple[GatewayProcess, ScriptedFeed],
) -> None:
    """A WebSocket or a preflight from an origin outside the allowlist gets no grant."""
    gw, _ = market
    url = gw.url.replace("http", "ws") + "/api/stream"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin=Origin("https://evil.example"), open_timeout=5)
    denial = refused.value.response
    assert denial.status_code == 403
    assert orjson.loads(denial.body)["error"]["code"] == "forbidden"
    assert denial.headers["x-content-type-options"] == "nosniff"
    with connect(url, origin=Origin("https://app.example"), open_timeout=5) as ws:
        assert orjson.loads(ws.recv(timeout=5))["type"] == "hello"
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    with gw.client() as c:
        foreign = c.options("/api/bets", headers={"origin": "https://evil.example", **preflight})
        allowed = c.options("/api/bets", headers={"origin": "https://app.example", **preflight})
        simple = c.get("/api/markets", headers={"origin": "https://evil.example"})
        plain = c.get("/api/stream")  # not an upgrade
    assert plain.status_code == 426 and plain.json()["error"]["code"] == "upgrade_required"
    assert "access-control-allow-origin" not in foreign.headers
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in simple.headers


def test_stream_handshakes_and_tick_posts_are_rate_limited(make_gateway: Any) -> None:
    """The stream and feed-ingest families have their own per-address limits."""
    gw: GatewayProcess = make_gateway(
        {
            **MARKET_ENV,
            "TAPGATE_STREAM_RATE": "0.01",
            "TAPGATE_STREAM_BURST": "2",
            "TAPGATE_FEED_RATE": "0.01",
            "TAPGATE_FEED_BURST": "3",
        }
    )
    gw.start(markets_ready=False)
    url = gw.url.replace("http", "ws") + "/api/stream"
    for _ in range(2):
        with connect(url, open_timeout=5):
            pass
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=5)
    denial = refused.value.response
    assert denial.status_code == 429
    assert orjson.loads(denial.body)["error"]["code"] == "rate_limited"
    assert int(denial.headers["retry-after"]) >= 1
    assert denial.headers["ratelimit-policy"] == '"stream-address";q=2;w=200'
    ts = int(time.time() * 1000)
    codes = []
    with gw.client() as c:
        for seq in range(1, 5):
            tick = signed_tick(ORACLE, "BTC-USD", seq, 10_050, ts + seq)
            codes.append(c.post("/admin/markets/BTC-USD/ticks", json={"ticks": [tick]}))
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[-1].headers["retry-after"] and "ratelimit-policy" in codes[-1].headers


def test_ticks_are_rate_limited_per_oracle_key_across_addresses(make_gateway: Any) -> None:
    """One oracle posting from several allowlisted addresses shares one per-key bucket."""
    gw: GatewayProcess = make_gateway(
        {**MARKET_ENV, "TAPGATE_FEED_RATE": "0.01", "TAPGATE_FEED_BURST": "3"}
    )
    gw.start(markets_ready=False)
    ts = int(time.time() * 1000)
    codes = []
    for seq, source in enumerate(["127.0.0.51", "127.0.0.52", "127.0.0.53", "127.0.0.54"], 1):
        tick = signed_tick(ORACLE, "BTC-USD", seq, 10_050, ts + seq)
        with httpx.Client(
            base_url=gw.url, transport=httpx.HTTPTransport(local_address=source)
        ) as c:
            codes.append(c.post("/admin/markets/BTC-USD/ticks", json={"ticks": [tick]}))
    assert [r.status_code for r in codes] == [200, 200, 200, 429], codes[-1].text
    assert codes[-1].headers["ratelimit-policy"].startswith('"feed-wallet";q=3;')


def _stream_from(gw: GatewayProcess, source: str) -> Any:
    """A stream connection whose TCP socket comes from ``source`` (an address in 127/8)."""
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=5, source_address=(source, 0))
    return connect(gw.url.replace("http", "ws") + "/api/stream", sock=sock, open_timeout=5)


def _subscribe(ws: Any, wallet: Wallet, challenge: str) -> dict[str, Any]:
    """Send a subscribe signed over ``challenge``; the reply (subscribed or error)."""
    ts = int(time.time() * 1000)
    signature = wallet.sign(subscribe_message(challenge, wallet.address, ts))
    body = {"op": "subscribe", "wallet": wallet.address, "timestamp": ts, "signature": signature}
    ws.send(orjson.dumps(body).decode())
    while (reply := orjson.loads(ws.recv(timeout=5)))["type"] not in ("subscribed", "error"):
        pass
    return dict(reply)


def test_a_stream_message_naming_a_key_twice_is_refused(make_gateway: Any) -> None:
    """A subscribe naming ``wallet`` twice (a log or a proxy may read the other one) gets an
    invalid_field error naming the key and subscribes nobody; the same message written
    once subscribes; a watch naming ``op`` twice is refused the same way."""
    gw: GatewayProcess = make_gateway(MARKET_ENV)
    gw.start(markets_ready=False)
    mine, victim = Wallet.generate(), Wallet.generate()
    with _stream_from(gw, "127.0.0.53") as ws:
        challenge = orjson.loads(ws.recv(timeout=5))["challenge"]
        ts = int(time.time() * 1000)
        signature = mine.sign(subscribe_message(challenge, mine.address, ts))
        tail = f'"timestamp": {ts}, "signature": "{signature}"}}'
        ws.send(f'{{"op": "subscribe", "wallet": "{victim.address}", '
                f'"w\\u0061llet": "{mine.address}", {tail}')  # fmt: skip
        refused = orjson.loads(ws.recv(timeout=5))
        ws.send('{"op": "watch", "op": "unwatch", "markets": ["BTC-USD"]}')
        watch = orjson.loads(ws.recv(timeout=5))
        ws.send(f'{{"op": "subscribe", "wallet": "{mine.address}", {tail}')
        while (accepted := orjson.loads(ws.recv(timeout=5)))["type"] not in ("subscribed", "error"):
            pass
    assert (refused["type"], refused["code"]) == ("error", "invalid_field")
    assert refused["message"].startswith("wallet")
    assert (watch["type"], watch["code"]) == ("error", "invalid_field")
    assert watch["message"].startswith("op")
    assert accepted == {"type": "subscribed", "wallet": mine.address}


def test_a_subscribe_is_good_on_its_own_connection_only(make_gateway: Any) -> None:
    """A subscribe signed over one connection's challenge, replayed on another connection
    (a captured message), is refused there; on its own connection it works."""
    gw: GatewayProcess = make_gateway(MARKET_ENV)
    gw.start(markets_ready=False)
    wallet = Wallet.generate()
    with _stream_from(gw, "127.0.0.51") as mine, _stream_from(gw, "127.0.0.52") as thief:
        challenge = orjson.loads(mine.recv(timeout=5))["challenge"]
        assert orjson.loads(thief.recv(timeout=5))["challenge"] != challenge
        stolen = _subscribe(thief, wallet, challenge)
        assert (stolen["type"], stolen["code"]) == ("error", "invalid_signature")
        assert _subscribe(mine, wallet, challenge)["type"] == "subscribed"


def test_one_address_cannot_hold_the_stream_connection_cap(make_gateway: Any) -> None:
    """Past TAPGATE_STREAM_MAX_PER_ADDRESS an address gets 503; another address still
    connects, and a closed connection frees its place."""
    gw: GatewayProcess = make_gateway({**MARKET_ENV, "TAPGATE_STREAM_MAX_PER_ADDRESS": "2"})
    gw.start(markets_ready=False)
    with _stream_from(gw, "127.0.0.61") as one, _stream_from(gw, "127.0.0.61") as two:
        assert orjson.loads(one.recv(timeout=5))["type"] == "hello"
        assert orjson.loads(two.recv(timeout=5))["type"] == "hello"
        with pytest.raises(InvalidStatus) as refused:
            _stream_from(gw, "127.0.0.61")
        assert refused.value.response.status_code == 503
        with _stream_from(gw, "127.0.0.62") as other:
            assert orjson.loads(other.recv(timeout=5))["type"] == "hello"
    wait_for(lambda: _can_stream(gw, "127.0.0.61"), 30, "the closed connections to be freed")


def _can_stream(gw: GatewayProcess, source: str) -> bool:
    try:
        with _stream_from(gw, source) as ws:
            return bool(orjson.loads(ws.recv(timeout=5))["type"] == "hello")
    except InvalidStatus:
        return False


def test_subscribes_are_limited_before_any_signature_work(make_gateway: Any) -> None:
    """Subscribes take the address's bucket before the signature is checked, and a
    connection gets at most TAPGATE_STREAM_SUBSCRIBES_PER_CONNECTION of them."""
    env = {**MARKET_ENV, "TAPGATE_STREAM_RATE": "0.01", "TAPGATE_STREAM_BURST": "3"}
    gw: GatewayProcess = make_gateway(env)
    gw.start(markets_ready=False)
    forged = Wallet.generate()
    with _stream_from(gw, "127.0.0.71") as ws:  # the handshake took one token of three
        orjson.loads(ws.recv(timeout=5))
        codes = [_subscribe(ws, forged, "0" * 32)["code"] for _ in range(3)]
    assert codes == ["invalid_signature", "invalid_signature", "rate_limited"]
    roomy = {**MARKET_ENV, "TAPGATE_STREAM_SUBSCRIBES_PER_CONNECTION": "2"}
    gw2: GatewayProcess = make_gateway(roomy, name="second")
    gw2.start(markets_ready=False)
    with _stream_from(gw2, "127.0.0.72") as ws:
        orjson.loads(ws.recv(timeout=5))
        replies = [_subscribe(ws, forged, "0" * 32) for _ in range(3)]
    assert [r["code"] for r in replies] == [*codes[:2], "rate_limited"]
    assert "on this connection" in replies[2]["message"]


def test_stream_subscribes_are_rate_limited_per_wallet(make_gateway: Any) -> None:
    """One wallet subscribing from three addresses: past the stream burst (2) its third
    subscribe gets a rate_limited error, though each address is within its own limit."""
    gw: GatewayProcess = make_gateway(
        {**MARKET_ENV, "TAPGATE_STREAM_RATE": "0.01", "TAPGATE_STREAM_BURST": "2"}
    )
    gw.start(markets_ready=False)
    wallet = Wallet.generate()
    replies = []
    for source in ["127.0.0.21", "127.0.0.22", "127.0.0.23"]:
        with _stream_from(gw, source) as ws:
            hello = orjson.loads(ws.recv(timeout=5))
            ts = int(time.time() * 1000)
            signature = wallet.sign(subscribe_message(hello["challenge"], wallet.address, ts))
            ws.send(
                orjson.dumps(
                    {
                        "op": "subscribe",
                        "wallet": wallet.address,
                        "timestamp": ts,
                        "signature": signature,
                    }
                ).decode()
            )
            while (reply := orjson.loads(ws.recv(timeout=5)))["type"] not in (
                "subscribed",
                "error",
            ):
                pass
            replies.append(reply)
    assert [r["type"] for r in replies] == ["subscribed", "subscribed", "error"]
    assert replies[2]["code"] == "rate_limited"


def test_stream_connections_beyond_the_cap_get_503(make_gateway: Any) -> None:
    """Past TAPGATE_STREAM_MAX_CONNECTIONS a handshake gets 503 overloaded with Retry-After."""
    gw: GatewayProcess = make_gateway({**MARKET_ENV, "TAPGATE_STREAM_MAX_CONNECTIONS": "1"})
    gw.start(markets_ready=False)
    with _stream_from(gw, "127.0.0.31") as first:
        assert orjson.loads(first.recv(timeout=5))["type"] == "hello"
        with pytest.raises(InvalidStatus) as refused:
            _stream_from(gw, "127.0.0.32")
    denial = refused.value.response
    assert denial.status_code == 503
    assert orjson.loads(denial.body)["error"]["code"] == "overloaded"
    assert int(denial.headers["retry-after"]) >= 1


def test_settlement_killed_between_batches_settles_each_bet_once(
    make_gateway: Any, tmp_path: Path
) -> None:
    """SIGKILL while a settlement is half committed: after restart each bet has one entry.

    The column is 15 s ahead (the horizon raised for it) so that a slow machine posting 160
    bets does not see it close; the waits are bounds, not speeds. On a busy machine the
    scripted feed's ticks can come late, and the market then refuses bets for a moment
    (503 quote_stale or market_halted, as it should), or a bet reaches the gateway after
    its receive window (401): those bets are signed again and posted again until the column
    is accepted whole (``post_until_accepted``)."""
    gw: GatewayProcess = make_gateway(
        {**MARKET_ENV, "TAPGATE_SETTLE_BATCH": "1", "TAPGATE_MARKET_HORIZON_MS": "20000"}
    )
    gw.start(markets_ready=False)
    feed = ScriptedFeed(gw).start()
    try:
        priced(gw)
        wallets = [Wallet.generate() for _ in range(4)]
        for w in wallets:
            gw.fund(w, 1_000_000)
        col = _column(15_000)
        start = col * COLUMN_MS
        owners = [w for w in wallets for _ in range(40)]
        accepted = post_until_accepted(
            gw.url,
            len(owners),
            lambda todo: [
                bet_body(owners[i], market="BTC-USD", cell_id=f"cell-101-{col}", amount=10)
                for i in todo
            ],
        )
        ids = [int(r.json()["bet_id"]) for _, r in accepted]
        feed.script = lambda ts: zigzag(ts) if ts < start + 100 else 10_150
        deadline = time.monotonic() + 60
        while True:
            with gw.database() as conn:
                (done,) = conn.execute("SELECT count(*) FROM settlements").fetchone()
            if 0 < done < len(ids):
                break
            assert done == 0 and time.monotonic() < deadline, done
            time.sleep(0.002)
        gw.kill()
        gw.start(markets_ready=False)
        wait_for(
            lambda: "accepted" not in _statuses(gw, ids).values(), 60, "settlement after restart"
        )
    finally:
        feed.stop()
    with gw.database() as conn:
        rows = conn.execute("SELECT bet_id, outcome FROM settlements").fetchall()
        payouts = conn.execute("SELECT count(*) FROM ledger WHERE kind = 'payout'").fetchone()[0]
        assert ledger_violations(conn) == []
        balances = dict(
            conn.execute("SELECT id, balance FROM accounts WHERE kind = 'wallet'").fetchall()
        )
        won = dict(
            conn.execute(
                "SELECT wallet, sum(potential_payout - amount) FROM bets GROUP BY wallet"
            ).fetchall()
        )
    assert sorted(b for b, _ in rows) == sorted(ids)
    assert {o for _, o in rows} == {"won"}
    assert payouts == 2 * len(ids)
    for w in wallets:
        assert balances[w.address] == 1_000_000 + won[w.address]
    assert done < len(ids)


def test_a_stale_quote_is_refused_with_503_and_a_fresh_tick_lifts_it(make_gateway: Any) -> None:
    """Ticks dated 10 s ago: bets get 503 quote_stale with Retry-After and the breaker names
    the stale quote; a tick dated now prices the same cell again (the age only grows, so no
    request has to be quick)."""
    gw = make_gateway(
        {
            **MARKET_ENV,
            "TAPGATE_MARKET_FEED_WARNING_MS": "60000",
            "TAPGATE_MARKET_FEED_CRITICAL_MS": "120000",
            "TAPGATE_MARKET_RECOVER_MS": "0",
            "TAPGATE_MARKET_MAX_QUOTE_AGE_MS": "4000",
        }
    ).start(markets_ready=False)
    wallet = Wallet.generate()
    gw.fund(wallet, 10_000)
    old = int(time.time() * 1000) - 10_000
    ticks = [
        signed_tick(ORACLE, "BTC-USD", i + 1, zigzag(old + 50 * i), old + 50 * i) for i in range(20)
    ]
    with gw.client() as c:
        assert c.post("/admin/markets/BTC-USD/ticks", json={"ticks": ticks}).status_code == 200
        cells = c.get("/api/markets/BTC-USD/grid").json()["cells"]
    r = _bet(gw, wallet, 100, _column(1000))
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "quote_stale" and "retry-after" in r.headers
    with gw.client() as c:
        summary = c.get("/api/markets").json()["markets"][0]
        fresh = signed_tick(ORACLE, "BTC-USD", 21, 10_050, int(time.time() * 1000))
        assert c.post("/admin/markets/BTC-USD/ticks", json={"ticks": [fresh]}).status_code == 200
    assert any("quote stale" in reason for reason in summary["breaker"]["reasons"]), summary
    assert summary["quote_age_ms"] >= 8_000 and cells == []
    r = _bet(gw, wallet, 100, _column(1000))
    assert r.status_code in (202, 409), r.text  # priced again (409: not offered at this price)
