"""systemd notify: READY=1 when serving, watchdog pings that stop while the loop is blocked."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

from gateway.server.sdnotify import Notifier
from tests.gatewayproc import GatewayProcess


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    return sock


def test_gateway_notifies_ready_pings_and_stopping(tmp_path: Path) -> None:
    """Under a fake NOTIFY_SOCKET: READY=1 once /healthz answers, WATCHDOG=1 often, STOPPING=1."""
    sock = _listen(tmp_path / "notify")
    gw = GatewayProcess(
        tmp_path / "data",
        {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"},
    )
    try:
        gw.start(markets_ready=False)
        received = [sock.recv(256).decode() for _ in range(4)]
        assert received[0] == "READY=1"
        assert received[1:] == ["WATCHDOG=1"] * 3
        gw.stop()
        rest = []
        sock.settimeout(2)
        while "STOPPING=1" not in rest:
            rest.append(sock.recv(256).decode())
    finally:
        if gw.proc is not None:
            gw.stop()
        sock.close()


def test_watchdog_pings_stop_while_the_event_loop_is_blocked(tmp_path: Path) -> None:
    """Pings come from the loop: a 1 s block leaves a hole, then they resume (a ping sent
    just before the block may be read up to 0.25 s late on a busy machine)."""
    sock = _listen(tmp_path / "n")
    stamps: list[float] = []
    done = threading.Event()

    def collect() -> None:
        sock.settimeout(0.1)
        while not done.is_set():
            try:
                sock.recv(64)
            except TimeoutError:
                continue
            stamps.append(time.monotonic())

    reader = threading.Thread(target=collect)
    reader.start()
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "100000"})
    assert notifier.watchdog_interval == 0.05

    async def scenario() -> tuple[float, float]:
        task = asyncio.create_task(notifier.watchdog())
        await asyncio.sleep(0.5)
        blocked_at = time.monotonic()
        time.sleep(1.0)  # the loop is stuck: no pings may go out
        unblocked_at = time.monotonic()
        await asyncio.sleep(0.5)
        task.cancel()
        return blocked_at, unblocked_at

    blocked_at, unblocked_at = asyncio.run(scenario())
    done.set()
    reader.join()
    sock.close()
    assert not [t for t in stamps if blocked_at + 0.25 < t < unblocked_at]
    assert len([t for t in stamps if t < blocked_at]) >= 4
    assert len([t for t in stamps if t > unblocked_at]) >= 4


def test_without_notify_socket_nothing_is_sent() -> None:
    """Outside systemd the notifier is a no-op and the watchdog returns at once."""
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.notify("READY=1")
    asyncio.run(asyncio.wait_for(notifier.watchdog(), 1))
