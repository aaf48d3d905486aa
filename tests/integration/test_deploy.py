"""The deployment: the release install.sh builds works outside the checkout, its units pass
systemd-analyze, the env file is complete, and the smoke test moves no money."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gateway.client.wallet import Wallet, post_bet
from gateway.market.config import MarketConfig
from tests.gatewayproc import (
    ADMIN_TOKEN,
    ROOT,
    TEST_MARKET_ENV,
    GatewayProcess,
    free_port,
    opened,
    shared_tls,
    signed,
    tapgate,
)

SYSTEMD = ROOT / "systemd"
UNITS = ["tapgate.service"] + [
    f"tapgate-{job}.{kind}" for job in ("backup", "check") for kind in ("service", "timer")
]


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is needed (Debian: apt-get install systemd)")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """install.sh --root: a real release (venv, compiled fastpath), units and settings."""
    root = tmp_path_factory.mktemp("root")
    result = subprocess.run(
        ["bash", str(SYSTEMD / "install.sh"), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the VM's own units (sysinit.target and friends) for the dependency checks
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    return root


@pytest.mark.once
def test_units_verify_cleanly(rendered: Path) -> None:
    """systemd-analyze verify prints nothing for any rendered unit."""
    units = [str(rendered / "etc/systemd/system" / u) for u in UNITS]
    result = subprocess.run(
        [_analyze(), "verify", f"--root={rendered}", *units],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


@pytest.mark.once
def test_service_exposure_is_2_or_lower(rendered: Path) -> None:
    """systemd-analyze security --offline rates tapgate.service 2.0 or lower."""
    result = subprocess.run(
        [
            _analyze(),
            "security",
            "--offline=yes",
            f"--root={rendered}",
            str(rendered / "etc/systemd/system/tapgate.service"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r"Overall exposure level for tapgate.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= 2.0


@pytest.mark.once
def test_render_installed_a_working_release(rendered: Path) -> None:
    """The release's venv runs the compiled gateway; settings and a private token exist."""
    current = rendered / "opt/tapgate/current"
    tapgate = current / "venv/bin/tapgate"
    assert tapgate.exists() and (current / "docs/OPERATIONS.md").exists()
    token = rendered / "etc/tapgate/admin.token"
    assert token.stat().st_mode & 0o077 == 0 and len(token.read_text().strip()) >= 32
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPGATE_")}
    probe = subprocess.run(
        [str(current / "venv/bin/python"), "-c", "import fastpath; print(fastpath.IMPLEMENTATION)"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert probe.stdout.strip() == "c"


def test_env_example_documents_every_setting() -> None:
    """Every TAPGATE_* variable the code reads appears in tapgate.env.example."""
    example = (SYSTEMD / "tapgate.env.example").read_text()
    source = "\n".join(p.read_text() for p in (ROOT / "gateway").rglob("*.py"))
    names = set(re.findall(r'"(TAPGATE_[A-Z_]+[A-Z])"', source)) - {"TAPGATE_MARKET_"}
    names |= {f"TAPGATE_MARKET_{f.upper()}" for f in MarketConfig.__dataclass_fields__} - {
        "TAPGATE_MARKET_SYMBOL"
    }
    missing = sorted(n for n in names if n not in example)
    assert not missing, missing


def test_smoke_test_passes_against_a_live_gateway_and_moves_no_money(
    gateway: GatewayProcess,
) -> None:
    """tapgate smoke (run after install, upgrade and rollback) passes on a healthy gateway
    without a token, and leaves no bet, deposit or ledger row behind."""
    with opened(gateway.data_dir / "tapgate.db") as conn:
        before = [conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in _MONEY]  # noqa: S608
    result = tapgate("smoke", "--url", gateway.url, "--timeout", "120", data=gateway.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("smoke: ok") and "balance check" in result.stdout
    with opened(gateway.data_dir / "tapgate.db") as conn:
        after = [conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in _MONEY]  # noqa: S608
    assert after == before


def test_smoke_test_fails_clearly_without_a_gateway(tmp_path: Path) -> None:
    """No gateway at the URL: exit 1 and one line on stderr naming the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    result = tapgate("smoke", "--url", url, "--timeout", "1", data=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("smoke: FAILED") and url in result.stderr


_MONEY = ("bets", "deposits", "ledger")


@pytest.mark.once
def test_the_release_imports_every_module_and_serves_a_bet(rendered: Path, tmp_path: Path) -> None:
    """The wheel install.sh built, in its own venv with only the runtime lock, outside the
    checkout: every module imports, ``tapgate serve`` takes a funded wallet's bet and
    serves the reference client and the explorer from the package."""
    python = rendered / "opt/tapgate/current/venv/bin/python"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    listing = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib, pkgutil, gateway, fastpath\n"
            "names = [m.name for p in (gateway, fastpath) for m in "
            "pkgutil.walk_packages(p.__path__, p.__name__ + '.') "
            "if not m.name.endswith('__main__')]\n"
            "for name in names: importlib.import_module(name)\n"
            "print(gateway.__file__); print(*names)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert listing.returncode == 0, listing.stderr
    where, *shipped = listing.stdout.split()
    assert str(rendered) in where and str(ROOT) not in where  # not the checkout's copy
    checkout = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "gateway").rglob("*.py")
        if path.name != "__main__.py"
    } - {"gateway"}
    # every module of the checkout, and none that it no longer has (a stale build/lib)
    assert {n for n in shipped if n.startswith("gateway.")} == checkout
    port = free_port()
    serve_env = {
        **env,
        **TEST_MARKET_ENV,
        "TAPGATE_DATA_DIR": str(tmp_path / "data"),
        "TAPGATE_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(python), "-m", "gateway", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=serve_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        gw = GatewayProcess(tmp_path / "data")
        gw.port = port
        deadline = time.monotonic() + 60
        while not _ready(gw.url):
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the release did not become ready"
            time.sleep(0.2)
        wallet = Wallet.generate()
        assert gw.fund(wallet, 1_000).status_code == 200
        with httpx.Client(base_url=gw.url) as client:
            placed = post_bet(client, signed(wallet, amount=10))
        assert placed.status_code == 202, placed.text
        # the browser's side ships too: the page, the module, the explorer's files
        for path in ("/", "/static/tapgate.mjs", "/docs", "/docs/assets/swagger-ui-bundle.js"):
            assert httpx.get(f"{gw.url}{path}", timeout=10).status_code == 200, path
    finally:
        server.terminate()
        server.wait(30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5, verify=shared_tls()).status_code == 200
    except httpx.HTTPError:
        return False
