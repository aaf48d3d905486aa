"""Serving with workers (``TAPGATE_WORKERS`` > 1, ADR 12): the owner and its processes.

The owner binds the port, makes one socket pair per worker, and starts each worker as
``python -m gateway.server.workers LISTEN_FD CHANNEL_FD HOST PORT`` with both descriptors
inherited (nothing else can reach the channel). Each worker runs uvicorn on the shared
listening socket; the kernel hands each connection to one of them. The owner opens the
runtime, answers the channels, tells systemd READY=1 once every worker is connected, and
on SIGTERM or SIGINT stops the workers first (they finish their requests, which still need
the owner) and then closes the runtime (the writer drains). A worker that dies stops the
owner with exit status 1: systemd's Restart= brings the whole gateway back, which keeps
one rule for the state (nothing survives a half-restarted process group).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess  # nosec B404
import sys
import time
from collections.abc import Sequence

import structlog
import uvicorn
import uvloop

from gateway.config import Settings
from gateway.server.app import TapgateApp, create_app
from gateway.server.channel import Channel
from gateway.server.owner import WorkerLink
from gateway.server.sdnotify import Notifier

__all__ = ["run_owner", "worker_main"]

log = structlog.get_logger("tapgate.server")
START_TIMEOUT_S = 60.0  # a worker imports, connects and says ready well within this
STOP_TIMEOUT_S = 40.0  # uvicorn's graceful shutdown (30 s) plus the worker's own exit
STARTUP_FAILED = 3  # the lifespan failed: uvicorn's own status for it in one process


def run_owner(settings: Settings, host: str, port: int) -> int:
    """Serve with ``settings.workers`` workers until stopped; the exit status (0, 1 a
    worker failed, 3 the runtime did not open, 130 Ctrl-C)."""
    listener = socket.create_server(
        (host, port),
        family=socket.AF_INET6 if ":" in host else socket.AF_INET,
        backlog=4096,
    )
    pairs = [socket.socketpair() for _ in range(settings.workers)]
    workers = []
    for _, theirs in pairs:
        fds = (listener.fileno(), theirs.fileno())
        command = [sys.executable, "-m", "gateway.server.workers", *map(str, fds), host, str(port)]
        # the owner starts its own workers: sys.executable and a fixed argv
        workers.append(subprocess.Popen(command, pass_fds=fds))  # noqa: S603 # nosec B603
        theirs.close()
    listener.close()  # the workers hold it now
    try:
        owned = [ours for ours, _ in pairs]
        scheme = "https" if settings.tls_certfile is not None else "http"
        url = f"{scheme}://{host}:{port}"
        return uvloop.run(_owner(create_app(settings), owned, workers, url))
    except KeyboardInterrupt:
        return 130


async def _owner(
    app: TapgateApp,
    sockets: Sequence[socket.socket],
    workers: Sequence[subprocess.Popen[bytes]],
    url: str,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    notifier = Notifier()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_stop, workers)  # a failed start leaves them waiting
        try:
            await stack.enter_async_context(app.lifespan())
        except Exception:  # logged by the lifespan as startup_failed
            return STARTUP_FAILED
        runtime = app.runtime
        if runtime is None:  # the lifespan opens it or raises
            raise RuntimeError("the runtime did not open")
        links = [
            WorkerLink(await Channel.open(sock), runtime.admission, app.dispatch, time.time)
            for sock in sockets
        ]

        async def worker_metrics() -> list[bytes]:
            return list(await asyncio.gather(*(link.metrics() for link in links)))

        app.starlette.state.worker_metrics = worker_metrics
        serving = [asyncio.create_task(link.run()) for link in links]
        exited = asyncio.create_task(_first_exit(serving))
        ready = asyncio.create_task(_all_ready(links))
        started, _ = await asyncio.wait(
            {ready, exited}, timeout=START_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
        status = 0
        if ready not in started:
            log.error("worker_failed_to_start", workers=len(workers))
            ready.cancel()
            status = 1
        else:
            pids = [w.pid for w in workers]
            log.info("listening", url=url, workers=len(workers), pids=pids)
            notifier.notify("READY=1")
            watchdog = asyncio.create_task(notifier.watchdog())
            stopping = asyncio.create_task(_wait(stop))
            ended, _ = await asyncio.wait({stopping, exited}, return_when="FIRST_COMPLETED")
            if exited in ended:
                log.error("worker_exited", codes=[w.poll() for w in workers])
                status = 1
            watchdog.cancel()
            stopping.cancel()
        notifier.notify("STOPPING=1")
        await _stop(workers)
        await asyncio.gather(*serving, return_exceptions=True)
        exited.cancel()
    if status == 0 and received[:1] == [signal.SIGINT]:
        return 130  # a Ctrl-C, as in one process
    return status


async def _all_ready(links: Sequence[WorkerLink]) -> None:
    for link in links:
        await link.ready.wait()


async def _wait(event: asyncio.Event) -> None:
    await event.wait()


async def _first_exit(serving: Sequence[asyncio.Task[None]]) -> None:
    """Returns when the first worker's channel closes."""
    await asyncio.wait(serving, return_when="FIRST_COMPLETED")


async def _stop(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each worker, then wait for them (SIGKILL past STOP_TIMEOUT_S)."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for worker in workers:
        while worker.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def worker_main(argv: Sequence[str]) -> int:
    """A worker: uvicorn on the owner's listening socket, bets checked, the rest tunnelled."""
    from gateway.server.serve import quiet_known_warnings, uvicorn_config
    from gateway.telemetry import configure_logging

    quiet_known_warnings()
    listen_fd, channel_fd, host, port = int(argv[0]), int(argv[1]), argv[2], int(argv[3])
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    owner = socket.socket(fileno=channel_fd)
    listener = socket.socket(fileno=listen_fd)
    app = create_app(settings, lambda: Channel.open(owner))
    server = uvicorn.Server(uvicorn_config(app, settings, host, port))
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the owner decides
        return 0
    return 0 if server.started else 1


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
