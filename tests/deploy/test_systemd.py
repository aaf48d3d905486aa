"""The deployment under a real systemd: install.sh in a booted Debian container.

A bookworm root (mmdebstrap, cached in /var/cache/tapgate-nspawn) boots with systemd as
PID 1 under ``systemd-nspawn`` (host network, the checkout and the wheels bound read-only,
the host's CA bundle for pip); commands enter it with ``nsenter``. In order, the module
proves: install.sh installs the release and its units, the service comes up by
``Type=notify`` and the smoke test passes; ``kill -9`` of the main process is restarted by
systemd and every acknowledged bet is stored once; the backup, check and archive jobs
succeed under their own sandboxing; an upgrade takes a backup before it switches; a
rollback brings the previous release back; a rollback past a migration is refused with the
recovery steps, leaving the service as it was; old releases are pruned; an uninstall keeps
the data unless ``--purge``.

What it cannot prove: cgroup limits (``MemoryMax``, ``TasksMax``) are not enforced in this
container, and the host's network is shared (the gateway listens on the host's 127.0.0.1:8080).

Slow (about 4 minutes here) and root only: marked ``systemd`` and run once by
``make test-systemd``, not in both fastpath modes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.client.wallet import Wallet, bet_body, post_bet
from gateway.store.schema import SCHEMA_VERSION
from tests.gatewayproc import ROOT, opened
from tests.load import Outcomes, check_acknowledged_stored_once, drive

pytestmark = pytest.mark.systemd

CACHE = Path(os.environ.get("TAPGATE_NSPAWN_CACHE", "/var/cache/tapgate-nspawn"))
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,procps,sqlite3"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
URL = "http://127.0.0.1:8080"


@dataclass
class Machine:
    """A booted container: its root on the host, and commands run inside it."""

    root: Path
    nspawn: subprocess.Popen[bytes]
    init: int

    def run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
               f"PIP_CERT={CA_BUNDLE}", "KEEP_RELEASES=3"]  # fmt: skip
        result = subprocess.run(
            ["nsenter", "-t", str(self.init), "-a", *env, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
        return result

    def unit(self, name: str, *props: str) -> dict[str, str]:
        shown = self.run("systemctl", "show", name, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)

    def releases(self) -> list[str]:
        return sorted(p.name for p in (self.root / "opt/tapgate/releases").iterdir())

    def current(self) -> str:
        return os.readlink(self.root / "opt/tapgate/current").rsplit("/", 1)[-1]

    def backups(self) -> list[Path]:
        return sorted((self.root / "var/backups/tapgate").glob("tapgate-*.db"))

    def db(self) -> Path:
        return self.root / "var/lib/tapgate/tapgate.db"


def _image() -> Path:
    """The cached bookworm root as a tarball, made once (about a minute).

    mmdebstrap picks its output format from the file name unless told: the partial file's
    name made it write a directory, which an older version of this helper cached as the
    tarball (removed here)."""
    tar = CACHE / "bookworm-root.tar"
    if tar.is_dir():
        shutil.rmtree(tar)
    if not tar.is_file():
        if shutil.which("mmdebstrap") is None:
            pytest.fail("mmdebstrap is needed (Debian: apt-get install mmdebstrap)")
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = CACHE / "bookworm-root.partial"
        if partial.is_dir():
            shutil.rmtree(partial)
        partial.unlink(missing_ok=True)
        subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--format=tar", f"--include={PACKAGES}",
             "bookworm", str(partial)],
            check=True,
            capture_output=True,
            timeout=900,
        )  # fmt: skip
        partial.rename(tar)
    return tar


def _wheel(source: Path, out: Path) -> Path:
    """The wheel install.sh would build, from ``source`` with the checkout's toolchain."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    subprocess.run(
        [str(ROOT / ".venv/bin/pip"), "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    (made,) = set(out.glob("*.whl")) - before or set(out.glob("*.whl"))
    return made


def _variant(tmp: Path, name: str, change: str) -> Path:
    """A clone of the checkout with one more commit: ``change`` appended to schema.py."""
    clone = tmp / name
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    schema = clone / "gateway/store/schema.py"
    schema.write_text(schema.read_text() + change)
    return clone


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    if os.geteuid() != 0 or shutil.which("systemd-nspawn") is None:
        pytest.fail("needs root and systemd-nspawn (Debian: apt-get install systemd-container)")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8080)) == 0:
            pytest.fail("127.0.0.1:8080 is taken: the container's gateway listens there")
    tmp = tmp_path_factory.mktemp("nspawn")
    root = tmp / "root"
    root.mkdir()
    with tarfile.open(_image()) as tar:
        tar.extractall(root, filter="fully_trusted")  # noqa: S202 # our own image
    wheels = tmp / "wheels"
    wheels.mkdir()
    nspawn = subprocess.Popen(
        ["systemd-nspawn", "-D", str(root), "--boot", "--register=no", "--keep-unit",
         f"--bind-ro={ROOT}:/src", f"--bind-ro={wheels}:/wheels",
         f"--bind-ro={CA_BUNDLE}:{CA_BUNDLE}", "--console=pipe"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        init = None
        while init is None:
            assert nspawn.poll() is None, "systemd-nspawn exited"
            assert time.monotonic() < deadline, "the container did not boot"
            children = subprocess.run(
                ["pgrep", "-P", str(nspawn.pid)], capture_output=True, text=True
            ).stdout.split()
            init = int(children[0]) if children else None
            time.sleep(0.2)
        vm = Machine(root, nspawn, init)
        while vm.run("systemctl", "is-system-running", check=False).stdout.strip() not in (
            "running",
            "degraded",
        ):
            assert time.monotonic() < deadline, "systemd did not finish booting"
            time.sleep(0.5)
        yield vm
    finally:
        nspawn.send_signal(signal.SIGTERM)  # powers the container off
        try:
            nspawn.wait(60)
        except subprocess.TimeoutExpired:
            nspawn.kill()
            nspawn.wait(30)


@pytest.fixture(scope="module")
def wheels(machine: Machine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three releases: this checkout; a later commit; and one more with a migration."""
    tmp = tmp_path_factory.mktemp("builds")
    out = machine.root.parent / "wheels"
    later = _variant(tmp, "later", "\n# a later release without a migration\n")
    migrating = _variant(
        tmp,
        "migrating",
        '\n_PROBE = "CREATE TABLE upgrade_probe (id INTEGER PRIMARY KEY);"\n'
        "MIGRATIONS = (*MIGRATIONS, _PROBE)\nSCHEMA_VERSION = len(MIGRATIONS)\n",
    )
    return {
        "first": _wheel(ROOT, out / "first"),
        "later": _wheel(later, out / "later"),
        "migrating": _wheel(migrating, out / "migrating"),
    }


def _install(machine: Machine, wheel: Path) -> subprocess.CompletedProcess[str]:
    relative = wheel.relative_to(machine.root.parent / "wheels")
    return machine.run("bash", "/src/systemd/install.sh", "--wheel", f"/wheels/{relative}")


def _token(machine: Machine) -> str:
    return (machine.root / "etc/tapgate/admin.token").read_text().strip()


def _latest_cell() -> str:
    """The cheapest cell of the furthest column, once the market is priced (a gateway
    just (re)started needs a few ticks first)."""
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=URL, timeout=10) as client:
        while not (cells := client.get("/api/markets/BTC-USD/grid").json()["cells"]):
            assert time.monotonic() < deadline, "the market was not priced within 60 s"
            time.sleep(0.5)
    last = max(c["col"] for c in cells)
    return str(
        min((c for c in cells if c["col"] == last), key=lambda c: float(c["multiplier"]))["cell_id"]
    )


def _fund(machine: Machine, wallets: list[Wallet]) -> None:
    with httpx.Client(base_url=URL, timeout=10) as client:
        for wallet in wallets:
            r = client.post(
                f"/admin/wallets/{wallet.address}/credit",
                json={"amount": 10**9, "reference": os.urandom(8).hex()},
                headers={"authorization": f"Bearer {_token(machine)}"},
            )
            assert r.status_code == 200, r.text


def test_install_comes_up_by_notify_and_passes_the_smoke_test(
    machine: Machine, wheels: dict[str, Path]
) -> None:
    """install.sh as root: user, units, release; the service is active by Type=notify, the
    timers are enabled, and the smoke test passed."""
    result = _install(machine, wheels["first"])
    assert "smoke: ok" in result.stdout, result.stdout
    service = machine.unit("tapgate.service", "Type", "ActiveState", "User")
    assert service == {"Type": "notify", "ActiveState": "active", "User": "tapgate"}
    for timer in ("backup", "check", "archive"):
        assert machine.unit(f"tapgate-{timer}.timer", "ActiveState")["ActiveState"] == "active"


def test_kill_9_is_restarted_by_systemd_and_loses_no_acknowledged_bet(machine: Machine) -> None:
    """SIGKILL of the main process under load: systemd restarts it, and every bet that was
    acknowledged is stored exactly once."""
    wallets = [Wallet.generate() for _ in range(20)]
    _fund(machine, wallets)
    cell = _latest_cell()
    before = machine.unit("tapgate.service", "MainPID", "NRestarts")

    async def scenario() -> Outcomes:
        outcomes = Outcomes()
        stop = asyncio.Event()
        traffic = asyncio.create_task(drive(URL, wallets, outcomes, stop, 8, 11, lambda: cell))
        await asyncio.sleep(1.0)
        machine.run("kill", "-9", before["MainPID"])
        await asyncio.sleep(1.0)
        stop.set()
        await traffic
        return outcomes

    outcomes = asyncio.run(scenario())
    after = _restarted(machine, before)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert outcomes.acked
    check_acknowledged_stored_once(machine.db(), outcomes)


def _restarted(machine: Machine, before: dict[str, str]) -> dict[str, str]:
    """The service's state once systemd has brought it back under a new main process."""
    deadline = time.monotonic() + 60
    while (after := machine.unit("tapgate.service", "MainPID", "NRestarts", "ActiveState"))[
        "ActiveState"
    ] != "active" or after["MainPID"] == before["MainPID"]:
        assert time.monotonic() < deadline, after
        time.sleep(0.5)
    return after


def test_workers_run_under_the_unit_and_a_dead_worker_restarts_the_service(
    machine: Machine,
) -> None:
    """TAPGATE_WORKERS=2 under the shipped unit's sandbox: ready by notify with two workers
    in the service, a bet commits, and a worker killed by SIGKILL makes systemd restart the
    whole service, workers included."""
    env = machine.root / "etc/tapgate/tapgate.env"
    shipped = env.read_text()
    env.write_text(shipped + "\nTAPGATE_WORKERS=2\n")
    try:
        machine.run("systemctl", "restart", "tapgate.service")
        before = machine.unit("tapgate.service", "MainPID", "NRestarts", "ActiveState")
        assert before["ActiveState"] == "active"
        workers = machine.run("pgrep", "-P", before["MainPID"]).stdout.split()
        assert len(workers) == 2, workers
        wallet = Wallet.generate()
        _fund(machine, [wallet])
        with httpx.Client(base_url=URL, timeout=10) as client:
            body = bet_body(wallet, market="BTC-USD", cell_id=_latest_cell(), amount=5)
            placed = post_bet(client, body)
        assert placed.status_code == 202, placed.text
        machine.run("kill", "-9", workers[0])
        after = _restarted(machine, before)
        assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
        assert len(machine.run("pgrep", "-P", after["MainPID"]).stdout.split()) == 2
        with opened(machine.db()) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM bets WHERE id = ?", (int(placed.json()["bet_id"]),)
            ).fetchone()
        assert stored == (1,)
    finally:
        env.write_text(shipped)
        machine.run("systemctl", "restart", "tapgate.service")


def test_backup_check_and_archive_jobs_succeed_under_their_sandboxes(machine: Machine) -> None:
    """Each job's service, started as its timer would, finishes with success."""
    for job in ("backup", "check", "archive"):
        machine.run("systemctl", "start", f"tapgate-{job}.service")
        shown = machine.unit(f"tapgate-{job}.service", "Result", "ExecMainStatus")
        assert shown == {"Result": "success", "ExecMainStatus": "0"}, (job, shown)
    assert machine.backups()


def test_upgrade_backs_up_first_and_rollback_brings_the_previous_release_back(
    machine: Machine, wheels: dict[str, Path]
) -> None:
    """An upgrade takes a backup before it switches; --rollback returns to the release
    before it, which passes the smoke test."""
    first = machine.current()
    backups = len(machine.backups())
    _install(machine, wheels["later"])
    later = machine.current()
    assert later != first and len(machine.backups()) == backups + 1
    result = machine.run("bash", "/src/systemd/install.sh", "--rollback")
    assert "smoke: ok" in result.stdout and machine.current() == first
    assert machine.unit("tapgate.service", "ActiveState")["ActiveState"] == "active"


def test_rollback_past_a_migration_is_refused_with_the_recovery_steps(
    machine: Machine, wheels: dict[str, Path]
) -> None:
    """After an upgrade that migrates the schema, --rollback changes nothing and says which
    migration stands in the way and how to recover; the new release keeps serving."""
    _install(machine, wheels["migrating"])
    migrated = machine.current()
    with opened(f"file:{machine.db()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
    refused = machine.run("bash", "/src/systemd/install.sh", "--rollback", check=False)
    assert refused.returncode == 3
    assert f"schema version {SCHEMA_VERSION + 1}" in refused.stderr
    assert "tapgate restore" in refused.stderr
    assert machine.current() == migrated
    with httpx.Client(base_url=URL, timeout=10) as client:
        wallet = Wallet.generate()
        body = bet_body(wallet, market="BTC-USD", cell_id=_latest_cell(), amount=1)
        assert post_bet(client, body).json()["error"]["code"] == "insufficient_funds"


def test_old_releases_are_pruned_never_the_live_one_or_the_rollback_target(
    machine: Machine,
) -> None:
    """With three releases kept, the installs so far left at most three, and the live
    release and the rollback target among them."""
    kept = machine.releases()
    assert len(kept) <= 3
    assert machine.current() in kept
    previous = os.readlink(machine.root / "opt/tapgate/previous").rsplit("/", 1)[-1]
    assert previous in kept


def test_uninstall_keeps_the_data_unless_purged(machine: Machine) -> None:
    """--uninstall stops and removes the service and releases but keeps settings, data and
    backups; --purge removes those too."""
    kept = machine.run("bash", "/src/systemd/install.sh", "--uninstall")
    assert "kept" in kept.stdout
    assert not (machine.root / "opt/tapgate").exists()
    assert not (machine.root / "etc/systemd/system/tapgate.service").exists()
    assert machine.db().exists() and machine.backups()
    assert machine.run("systemctl", "is-active", "tapgate", check=False).stdout.strip() != "active"
    machine.run("bash", "/src/systemd/install.sh", "--uninstall", "--purge")
    assert not (machine.root / "var/lib/tapgate").exists()
    assert not (machine.root / "etc/tapgate").exists()
