"""Serving: settings, the data directory's lock, logging, and uvicorn with systemd notify."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import sys
import warnings

import structlog
import uvicorn
from starlette.types import ASGIApp

from gateway.config import Settings, unknown_settings
from gateway.errors import ConfigError
from gateway.http.deadline import with_request_deadline
from gateway.http.stream_deflate import stream_protocol
from gateway.lockfile import hold_lock
from gateway.server.app import create_app
from gateway.server.sdnotify import Notifier
from gateway.telemetry import configure_logging

__all__ = ["NotifyingServer", "serve", "uvicorn_config"]


class NotifyingServer(uvicorn.Server):
    """uvicorn's server, telling systemd READY=1 once the sockets listen."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.notifier = Notifier()
        self.watchdog: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            scheme = "https" if self.config.is_ssl else "http"
            url = f"{scheme}://{self.config.host}:{self.config.port}"
            structlog.get_logger("tapgate.server").info("listening", url=url)
            self.notifier.notify("READY=1")
            self.watchdog = asyncio.get_running_loop().create_task(self.notifier.watchdog())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.notifier.notify("STOPPING=1")
        if self.watchdog is not None:
            self.watchdog.cancel()
        await super().shutdown(sockets)


def refuse_dev_funding_off_loopback(settings: Settings, host: str) -> None:
    """Development funding mints balances: a gateway that others can reach never has it."""
    if not settings.dev_funding:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(
            f"TAPGATE_DEV_FUNDING: only for a gateway on a loopback address, not --host {host}"
        )


def quiet_known_warnings() -> None:
    """uvicorn's legacy websockets protocol is deprecated in favour of websockets-sansio; the
    stream's denial responses (HTTP 403/429/503 on the handshake) are tested on the legacy
    one, and the move belongs with the stream's next protocol version (docs/OPERATIONS.md).
    Until then the warning is said there once, not on every start (of every worker)."""
    warnings.filterwarnings(
        "ignore", message="The `websockets` implementation is deprecated", module="uvicorn"
    )


def serve(host: str, port: int) -> int:
    """Serve until stopped; the exit status (0, 1 did not start, 130 Ctrl-C; a lifespan
    that fails, such as a database that cannot be read back, exits 3 from uvicorn or the
    owner). Raises ConfigError for bad settings and DataDirLocked when another gateway
    holds the data."""
    quiet_known_warnings()

    settings = Settings.from_env()  # ConfigError: the command line says which variable
    refuse_dev_funding_off_loopback(settings, host)
    hold_lock(settings.lock_path)  # DataDirLocked: another gateway serves this data directory
    configure_logging(settings.log_level)
    log = structlog.get_logger("tapgate.server")
    for name, guess in unknown_settings(os.environ):
        log.warning("unknown_setting", variable=name, did_you_mean=guess)
    # The writer (and verifier) threads hand the GIL back and forth with the event loop a
    # few times per group; a shorter switch interval bounds each wait (ADR 3).
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    if settings.workers > 1:
        from gateway.server.workers import run_owner

        return run_owner(settings, host, port)
    server = NotifyingServer(uvicorn_config(create_app(settings), settings, host, port))
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn has shut down gracefully by now (the writer drained, "stopped" logged) and
        # re-raises the captured SIGINT for the caller: a Ctrl-C, not an error
        return 130
    return 0 if server.started else 1


def uvicorn_config(app: ASGIApp, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """uvicorn as tapgate runs it, in one process or in each worker."""
    tls: dict[str, str] = {}
    if settings.tls_certfile is not None and settings.tls_keyfile is not None:
        tls = {"ssl_certfile": str(settings.tls_certfile), "ssl_keyfile": str(settings.tls_keyfile)}
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=with_request_deadline(settings.request_timeout_s),
        timeout_keep_alive=settings.keepalive_s,
        limit_concurrency=settings.limit_concurrency,
        # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 and rewrite the
        # client address; tapgate trusts only TAPGATE_TRUSTED_PROXIES (http/client_address.py)
        proxy_headers=False,
        h11_max_incomplete_event_size=16 * 1024,
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
        backlog=4096,
        ws=stream_protocol(),  # uvicorn's websockets, each message compressed once
        ws_max_size=4096,  # the stream takes only small subscribe messages
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        **tls,  # type: ignore[arg-type]
    )
