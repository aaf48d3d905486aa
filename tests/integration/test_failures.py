"""Crash, shutdown, double spend, replays and nonce reuse against real servers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import httpx
import orjson
import pytest

from gateway.client.wallet import Wallet
from tests.gatewayproc import GatewayProcess, async_client, opened, post_all, signed, tapgate
from tests.load import (
    OPEN_LIMITS,
    Outcomes,
    check_acknowledged_stored_once,
    check_database,
    drive,
    kill_under_load,
    stored_bets,
)

MakeGateway = Callable[..., GatewayProcess]
PURE = os.environ.get("TAPGATE_NO_EXTENSIONS") == "1"


def test_double_spend_exactly_ten_of_fifty(make_gateway: MakeGateway) -> None:
    """50 bets of 100 against a balance of 1000, all at once: 10 accepted, 40 refused, 0 left."""
    gw = make_gateway({"TAPGATE_WALLET_BURST": "50"}).start()
    wallet = Wallet.generate()
    gw.fund(wallet, 1000)
    bodies = [signed(wallet, amount=100) for _ in range(50)]
    responses = asyncio.run(post_all(gw.url, bodies))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 10 + [409] * 40
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "insufficient_funds"
    }
    assert sorted(r.json()["balance"] for r in responses if r.status_code == 202) == list(
        range(0, 1000, 100)
    )
    with opened(gw.data_dir / "tapgate.db") as conn:
        assert conn.execute(
            "SELECT balance FROM accounts WHERE id = ?", (wallet.address,)
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM bets").fetchone() == (10,)
    check_database(gw.data_dir / "tapgate.db")


@pytest.mark.parametrize("spread", [False, True], ids=["one-address", "ten-addresses"])
def test_concurrent_identical_bets_store_one(make_gateway: MakeGateway, spread: bool) -> None:
    """The same signed bet sent ten times at once, from one source address or from ten, is
    one bet; all ten get its receipt."""
    gw = make_gateway({"TAPGATE_BATCH_WAIT_MS": "50"}).start()
    wallet = Wallet.generate()
    gw.fund(wallet, 1000)
    body = signed(wallet, amount=100)
    sources = [f"127.0.0.{10 + i}" for i in range(10)] if spread else None
    responses = asyncio.run(post_all(gw.url, [body] * 10, sources))
    assert [r.status_code for r in responses] == [202] * 10
    assert len({r.content for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    assert responses[0].json()["balance"] == 900
    with opened(gw.data_dir / "tapgate.db") as conn:
        assert conn.execute("SELECT count(*) FROM bets").fetchone() == (1,)
    check_database(gw.data_dir / "tapgate.db")


def test_replay_sequential_and_after_restart(make_gateway: MakeGateway) -> None:
    """A captured bet resent from any address gets the stored 202 byte for byte, before and
    after a restart, and never charges its owner's wallet limit."""
    gw = make_gateway(
        {
            "TAPGATE_RECEIVE_WINDOW_MS": "30000",
            "TAPGATE_WALLET_BURST": "2",
            "TAPGATE_WALLET_RATE": "0.01",  # no refill within the test
        }
    )
    gw.start()
    wallet = Wallet.generate()
    gw.fund(wallet, 1000)
    body = orjson.dumps(signed(wallet, amount=100))
    headers = {"content-type": "application/json"}
    with gw.client() as c:
        first = c.post("/api/bets", content=body, headers=headers)
    assert first.status_code == 202
    for source in ["127.0.0.1", "127.0.0.2", "127.0.0.3"]:  # captured and resent elsewhere
        with httpx.Client(
            base_url=gw.url, transport=httpx.HTTPTransport(local_address=source)
        ) as c:
            again = c.post("/api/bets", content=body, headers=headers)
        assert again.status_code == 202, (source, again.text)
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"]
    with gw.client() as c:  # the wallet's second token: the replays took none
        fresh = c.post(
            "/api/bets", content=orjson.dumps(signed(wallet, amount=50)), headers=headers
        )
    assert fresh.status_code == 202, fresh.text
    gw.stop()
    gw.start()
    with httpx.Client(
        base_url=gw.url, transport=httpx.HTTPTransport(local_address="127.0.0.9")
    ) as c:
        after = c.post("/api/bets", content=body, headers=headers)
    assert after.status_code == 202
    assert after.content == first.content
    assert after.headers["idempotent-replayed"] == "true"
    with opened(gw.data_dir / "tapgate.db") as conn:
        assert conn.execute("SELECT count(*), sum(amount) FROM bets").fetchone() == (2, 150)
        assert conn.execute(
            "SELECT balance FROM accounts WHERE id = ?", (wallet.address,)
        ).fetchone() == (850,)


def test_replay_after_the_window_is_401_from_any_address(make_gateway: MakeGateway) -> None:
    """A captured bet resent after its receive window is 401 from any address: still one
    bet and one debit, and the owner's wallet limit is not charged."""
    gw = make_gateway(
        {
            "TAPGATE_RECEIVE_WINDOW_MS": "5000",  # production's: a loaded machine is slow
            "TAPGATE_FUTURE_SKEW_MS": "100",
            "TAPGATE_WALLET_BURST": "2",
            "TAPGATE_WALLET_RATE": "0.01",  # no refill within the test
        }
    ).start()
    wallet = Wallet.generate()
    gw.fund(wallet, 1000)
    body = orjson.dumps(signed(wallet, amount=100))
    headers = {"content-type": "application/json"}
    with gw.client() as c:
        assert c.post("/api/bets", content=body, headers=headers).status_code == 202
    time.sleep(5.3)  # past the receive window
    for source in ["127.0.0.1", "127.0.0.4", "127.0.0.5"]:
        with httpx.Client(
            base_url=gw.url, transport=httpx.HTTPTransport(local_address=source)
        ) as c:
            late = c.post("/api/bets", content=body, headers=headers)
        assert late.status_code == 401, late.text
        assert late.json()["error"]["code"] == "timestamp_out_of_window"
    with gw.client() as c:  # the wallet's second token is still there
        fresh = c.post(
            "/api/bets", content=orjson.dumps(signed(wallet, amount=50)), headers=headers
        )
    assert fresh.status_code == 202, fresh.text
    with opened(gw.data_dir / "tapgate.db") as conn:
        assert conn.execute("SELECT count(*), sum(amount) FROM bets").fetchone() == (2, 150)
        assert conn.execute(
            "SELECT balance FROM accounts WHERE id = ?", (wallet.address,)
        ).fetchone() == (850,)
    check_database(gw.data_dir / "tapgate.db")


def test_nonce_reused_after_window_refused_in_its_batch(make_gateway: MakeGateway) -> None:
    """An old nonce reused once its window passed is caught by the writer: only it gets 409."""
    gw = make_gateway(
        {
            "TAPGATE_RECEIVE_WINDOW_MS": "5000",  # production's: a loaded machine is slow
            "TAPGATE_FUTURE_SKEW_MS": "100",
            "TAPGATE_BATCH_WAIT_MS": "300",
            "TAPGATE_CHECKPOINT_INTERVAL_S": "0.1",
        }
    ).start()
    reuser = Wallet.generate()
    gw.fund(reuser, 1000)
    others = [Wallet.generate() for _ in range(5)]
    for w in others:
        gw.fund(w, 1000)
    with gw.client() as c:
        first = c.post(
            "/api/bets",
            content=orjson.dumps(signed(reuser, nonce="once")),
            headers={"content-type": "application/json"},
        )
    assert first.status_code == 202
    time.sleep(5.3)  # the first bet leaves the receive window and the replay map
    bodies = [signed(reuser, nonce="once", amount=7)] + [signed(w, amount=9) for w in others]
    responses = asyncio.run(post_all(gw.url, bodies))
    assert responses[0].status_code == 409
    assert responses[0].json()["error"]["code"] == "nonce_reused"
    assert [r.status_code for r in responses[1:]] == [202] * 5
    with opened(gw.data_dir / "tapgate.db") as conn:
        batches = {b for (b,) in conn.execute("SELECT batch_id FROM bets WHERE amount = 9")}
        assert len(batches) == 1, "the five bets were meant to share one batch"
        assert conn.execute(
            "SELECT balance FROM accounts WHERE id = ?", (reuser.address,)
        ).fetchone() == (900,)
    check_database(gw.data_dir / "tapgate.db")
    # The nonce stays unusable, and the wallet's reservation was released.
    with gw.client() as c:
        r = c.post(
            "/api/bets",
            content=orjson.dumps(signed(reuser, amount=900)),
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 202, r.text


CRASH_SEEDS = [3, 4] if PURE else [1, 2]


@pytest.mark.parametrize("seed", CRASH_SEEDS)
def test_sigkill_under_load_loses_nothing_acknowledged(
    make_gateway: MakeGateway, seed: int
) -> None:
    """SIGKILL with 100+ bets outstanding: every 202 is stored once, refusals never are."""
    gw = make_gateway({**OPEN_LIMITS, "TAPGATE_BATCH_WAIT_MS": "40"}).start()
    wallets = [Wallet.generate() for _ in range(20)]
    for w in wallets:
        gw.fund(w, 10**9)
    outcomes = Outcomes()
    run = kill_under_load(gw, wallets, outcomes, clients=160, seed=seed, acked=200, jitter_s=0.5)
    outstanding = asyncio.run(run)
    assert outstanding >= 100, outstanding
    assert outcomes.acked, "no bet was acknowledged before the kill"
    assert outcomes.unknown, "the kill should leave some outcomes unknown to clients"
    check_acknowledged_stored_once(gw.data_dir / "tapgate.db", outcomes)
    gw.start()  # restart rebuilds state from the database
    with gw.client() as c:
        key, receipt = next(iter(outcomes.acked.items()))
        wallet = next(w for w in wallets if w.address == key[0])
        r = c.post(
            "/api/bets",
            content=orjson.dumps(signed(wallet, nonce=key[1], amount=51)),
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 409 and r.json()["error"]["code"] == "nonce_reused"


# uvicorn re-raises SIGTERM once it has shut down cleanly (systemd counts that clean); a
# Ctrl-C (SIGINT) ends with 130 and no traceback.
STOP_SIGNALS = [(signal.SIGTERM, (0, -signal.SIGTERM)), (signal.SIGINT, (130,))]


@pytest.mark.parametrize(("stop_signal", "exits"), STOP_SIGNALS, ids=["SIGTERM", "Ctrl-C"])
def test_stop_signal_under_load_leaves_nothing_unknown(
    make_gateway: MakeGateway, stop_signal: signal.Signals, exits: tuple[int, ...]
) -> None:
    """SIGTERM or Ctrl-C drains: every bet taken is answered, exactly the 202s are stored."""
    gw = make_gateway({**OPEN_LIMITS, "TAPGATE_BATCH_WAIT_MS": "20"}).start()
    wallets = [Wallet.generate() for _ in range(10)]
    for w in wallets:
        gw.fund(w, 10**9)
    outcomes = Outcomes()

    async def scenario() -> int:
        stop = asyncio.Event()
        traffic = asyncio.create_task(drive(gw.url, wallets, outcomes, stop, 60, 7))
        deadline = time.monotonic() + 20
        while len(outcomes.acked) < 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert gw.proc is not None
        gw.proc.send_signal(stop_signal)
        code = await asyncio.to_thread(gw.proc.wait, 30)
        stop.set()
        await asyncio.wait_for(traffic, 30)
        return code

    assert asyncio.run(scenario()) in exits
    assert '"event":"stopped"' in gw.logs() and "Traceback" not in gw.logs()
    gw.proc = None
    stored = stored_bets(gw.data_dir / "tapgate.db")
    assert outcomes.acked
    assert set(stored) == set(outcomes.acked), "a bet was stored without its 202, or lost"
    assert all(code == 503 for code in outcomes.refused.values())
    check_database(gw.data_dir / "tapgate.db")


def test_second_server_on_same_data_refused(make_gateway: MakeGateway) -> None:
    """A second serve on a locked data directory exits non-zero and says why."""
    gw = make_gateway().start()
    second = tapgate("serve", "--port", "0", env=gw.env())
    assert second.returncode != 0
    assert "locked" in second.stderr
    with gw.client() as c:
        assert c.get("/healthz").status_code == 200


def test_bad_setting_fails_fast(make_gateway: MakeGateway) -> None:
    """A bad TAPGATE_* value stops start-up with a message naming the variable."""
    gw = make_gateway({"TAPGATE_BATCH_MAX": "many"})
    run = tapgate("serve", "--port", "0", env=gw.env())
    assert run.returncode == 2
    assert "TAPGATE_BATCH_MAX" in run.stderr


def test_verify_thread_mode_accepts_and_refuses(make_gateway: MakeGateway) -> None:
    """With TAPGATE_VERIFY_THREAD=1, good bets are accepted and forged ones still get 401."""
    gw = make_gateway({"TAPGATE_VERIFY_THREAD": "1"}).start()
    wallet = Wallet.generate()
    gw.fund(wallet, 1000)
    good = signed(wallet, amount=100)
    forged = signed(wallet, amount=100)
    forged["signature"] = Wallet.generate().sign(b"x")
    responses = asyncio.run(post_all(gw.url, [good, forged, signed(wallet, amount=50)]))
    assert [r.status_code for r in responses] == [202, 401, 202]
    assert responses[1].json()["error"]["code"] == "invalid_signature"


def test_full_queue_is_503_and_releases_everything(make_gateway: MakeGateway) -> None:
    """A bet that finds the queue full gets 503 with Retry-After; its funds and nonce stay free."""
    gw = make_gateway(
        {"TAPGATE_QUEUE_CAPACITY": "1", "TAPGATE_BATCH_WAIT_MS": "1500", "TAPGATE_BATCH_MAX": "50"}
    ).start()
    first, second = Wallet.generate(), Wallet.generate()
    gw.fund(first, 100)
    gw.fund(second, 100)
    waiting = signed(first, amount=100)
    refused = signed(second, amount=100, nonce="kept")

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with async_client(gw.url) as c:
            headers = {"content-type": "application/json"}
            queued = asyncio.create_task(
                c.post("/api/bets", content=orjson.dumps(waiting), headers=headers)
            )
            await asyncio.sleep(0.5)  # the first bet now sits in the queue for its group
            full = await c.post("/api/bets", content=orjson.dumps(refused), headers=headers)
            return await queued, full

    ok, full = asyncio.run(scenario())
    assert ok.status_code == 202
    assert full.status_code == 503
    assert full.json()["error"]["code"] == "overloaded"
    assert int(full.headers["retry-after"]) >= 1
    retry = signed(second, amount=100, nonce="kept")
    with gw.client() as c:
        again = c.post(
            "/api/bets", content=orjson.dumps(retry), headers={"content-type": "application/json"}
        )
    assert again.status_code == 202, again.text
    assert again.json()["balance"] == 0
