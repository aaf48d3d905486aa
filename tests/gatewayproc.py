"""A real gateway: ``python -m gateway serve`` as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.client import Wallet, bet_body

ADMIN_TOKEN = "test-admin-token-0123456789"
ROOT = Path(__file__).resolve().parent.parent


def tapgate(
    *args: str, env: dict[str, str] | None = None, data: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a subprocess (coverage follows it through COVERAGE_PROCESS_START).

    ``env`` replaces the environment (default: a bare one); ``data`` sets TAPGATE_DATA_DIR.
    """
    run_env = dict(env) if env is not None else {"PATH": "/usr/bin:/bin"}
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


class GatewayProcess:
    """Starts, stops and kills a gateway; one data directory for its whole life."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPGATE_")}
        for key in ("TAPGATE_NO_EXTENSIONS", "TAPGATE_REQUIRE_EXTENSIONS"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(
            TAPGATE_DATA_DIR=str(self.data_dir),
            TAPGATE_ADMIN_TOKEN=ADMIN_TOKEN,
            TAPGATE_LOG_LEVEL="info",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        self.port = free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(self.port)],
            env=self.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}: {self.logs()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not become healthy: {self.logs()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path (coverage data is written)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)

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
    fields: dict[str, Any] = {"market": "BTC-USD", "cell_id": "cell-100-200", "amount": 100}
    fields.update(overrides)
    return bet_body(wallet, **fields)
