"""``tapgate``: serve the gateway, make keys, fund wallets, place and read bets."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson

from gateway import __version__

if TYPE_CHECKING:
    from gateway.client.wallet import Wallet
    from gateway.config import Settings

__all__ = ["EXIT_KEY", "EXIT_REFUSED", "EXIT_UNREACHABLE", "EXIT_USAGE", "main"]

DEFAULT_URL = "http://127.0.0.1:8080"
# Exit codes (README, "Exit codes"): each failure is one line on stderr, never a traceback.
EXIT_REFUSED = 1  # the gateway (or a check) said no
EXIT_USAGE = 2  # bad arguments or settings
EXIT_KEY = 3  # a key file is missing or is not a key
EXIT_UNREACHABLE = 4  # no gateway answered at the URL


class CliError(Exception):
    """A failure the CLI reports as one line with its exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _load_key(path_text: str) -> Wallet:
    from gateway.client.wallet import KeyFileError, Wallet

    path = Path(path_text)
    try:
        return Wallet.load(path)
    except FileNotFoundError as exc:
        raise CliError(
            EXIT_KEY, f"{path}: no such key file (make one: tapgate keygen --out {path})"
        ) from exc
    except KeyFileError as exc:
        raise CliError(EXIT_KEY, f"{path}: {exc}") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(EXIT_KEY, f"{path}: not a key file written by tapgate keygen") from exc


def _serve(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError
    from gateway.lockfile import DataDirLocked
    from gateway.server.serve import serve

    try:
        return serve(args.host, args.port)
    except ConfigError as exc:
        raise CliError(EXIT_USAGE, f"configuration error: {exc}") from exc
    except DataDirLocked as exc:
        raise CliError(EXIT_REFUSED, str(exc)) from exc


def _keygen(args: argparse.Namespace) -> int:
    from gateway.client.wallet import Wallet

    wallet = Wallet.generate()
    path = Path(args.out)
    try:
        wallet.save(path)
    except FileExistsError:
        print(f"tapgate: {path} exists; not overwriting a key", file=sys.stderr)
        return 1
    print(wallet.address)
    return 0


def _print_response(response: httpx.Response, args: argparse.Namespace) -> int:
    """A success on stdout (a table on a terminal, else JSON: ``--json``/``--table`` choose);
    a refusal as one line on stderr (exit 1)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.is_success:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        what = error.get("code", response.reason_phrase)
        detail = error.get("message", response.text[:200])
        raise CliError(EXIT_REFUSED, f"{response.status_code} {what}: {detail}")
    if body is None:
        print(response.text)
    else:
        _print(body, args)
    return 0


def _print(body: object, args: argparse.Namespace) -> None:
    """A table on a terminal, else JSON; ``--json``/``--table`` choose."""
    if args.output == "table" or (args.output is None and sys.stdout.isatty()):
        from gateway.client.render import render

        print(render(body))
    else:
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


def _admin_token() -> str | None:
    """The server's rule (config.admin_token), falling back to make run's token file."""
    from gateway.config import DEV_ADMIN_FILE, ConfigError, admin_token

    try:
        return admin_token(os.environ, fallback_file=DEV_ADMIN_FILE)
    except ConfigError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from exc


def _credit(args: argparse.Namespace) -> int:
    return _admin_post(
        args,
        f"/admin/wallets/{args.wallet}/credit",
        {"amount": args.amount, "reference": args.reference},
    )


def _bet(args: argparse.Namespace) -> int:
    from gateway.client.wallet import bet_body, post_bet

    wallet = _load_key(args.key)
    body = bet_body(
        wallet,
        market=args.market,
        cell_id=args.cell,
        amount=args.amount,
        nonce=args.nonce,
        min_multiplier=args.min_multiplier,
    )
    with httpx.Client(base_url=args.url, timeout=10) as client:
        return _print_response(post_bet(client, body), args)


def _admin_post(args: argparse.Namespace, path: str, body: dict[str, object]) -> int:
    token = _admin_token()
    if not token:
        print(
            "tapgate: set TAPGATE_ADMIN_TOKEN (or TAPGATE_ADMIN_TOKEN_FILE) to the gateway's "
            "admin token",
            file=sys.stderr,
        )
        return 2
    with httpx.Client(base_url=args.url, timeout=10) as client:
        response = client.post(path, json=body, headers={"authorization": f"Bearer {token}"})
    return _print_response(response, args)


def _pick(args: argparse.Namespace) -> int:
    """Print a cell that stays open for ``--lead-s``: the likeliest one of the earliest such
    column, waiting up to ``--wait-s`` for the market to take bets."""
    deadline = time.monotonic() + args.wait_s
    with httpx.Client(base_url=args.url, timeout=10) as client:
        while True:
            grid = client.get(f"/api/markets/{args.symbol}/grid")
            if grid.status_code == 404:
                raise CliError(EXIT_USAGE, f"no market {args.symbol} at {args.url}")
            body = grid.json() if grid.is_success else {}
            now = body.get("server_time_ms", 0)
            later = [c for c in body.get("cells", []) if c["start_ms"] - now >= args.lead_s * 1000]
            if later:
                first = min(c["col"] for c in later)
                cell = min(
                    (c for c in later if c["col"] == first), key=lambda c: float(c["multiplier"])
                )
                print(cell["cell_id"])
                return 0
            if time.monotonic() > deadline:
                raise CliError(EXIT_REFUSED, f"{args.symbol} took no bets within {args.wait_s:g} s")
            time.sleep(0.5)


def _market(args: argparse.Namespace) -> int:
    action = args.market_command
    if action == "pick":
        return _pick(args)
    if action == "halt":
        return _admin_post(args, f"/admin/markets/{args.symbol}/halt", {"reason": args.reason})
    if action == "resume":
        return _admin_post(args, f"/admin/markets/{args.symbol}/resume", {})
    with httpx.Client(base_url=args.url, timeout=10) as client:
        if action == "grid":
            return _print_response(client.get(f"/api/markets/{args.symbol}/grid"), args)
        return _print_response(client.get("/api/markets"), args)


def _feed(args: argparse.Namespace) -> int:
    """Post ``<price> [<ts_ms>]`` lines from stdin as signed ticks (an exchange adapter's end)."""
    from gateway.client.feeder import Feeder

    feeder = Feeder(args.url, args.market, _load_key(args.key))
    failures = 0
    try:
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            try:
                price = int(parts[0])
                ts = int(parts[1]) if len(parts) > 1 else None
            except ValueError:
                print(
                    f"tapgate feed: skipped {line.strip()!r}: not '<price> [<ts_ms>]'",
                    file=sys.stderr,
                )
                continue
            response = feeder.send(price, ts)
            if response.status_code != 200:
                failures += 1
                print(f"tapgate feed: {response.status_code} {response.text}", file=sys.stderr)
    finally:
        feeder.close()
    return 0 if failures == 0 else 1


def _show(args: argparse.Namespace) -> int:
    from gateway.client.wallet import read_headers

    wallet = _load_key(args.key)
    target = f"/api/wallets/{wallet.address}"
    if args.bets:
        target += "/bets"
    with httpx.Client(base_url=args.url, timeout=10) as client:
        response = client.get(target, headers=read_headers(wallet, "GET", target))
    return _print_response(response, args)


def _check(args: argparse.Namespace) -> int:
    from gateway.ops.check import run_check
    from gateway.ops.runs import record_run

    settings = _settings_or_exit()
    started = time.time()
    report = run_check(settings.db_path, settings.markets)
    for name in report.passed:
        print(f"ok      {name}")
    for problem in report.failed:
        print(f"FAILED  {problem}")
    if settings.db_path.exists():
        record_run(settings.db_path, "check", started, report.ok, "; ".join(report.failed))
    return 0 if report.ok else 1


def _smoke(args: argparse.Namespace) -> int:
    from gateway.client.smoke import smoke

    result = smoke(args.url, args.market, args.timeout)
    if result.ok:
        print(f"smoke: ok ({result.detail})")
        return 0
    print(f"smoke: FAILED: {result.detail}", file=sys.stderr)
    return 1


def _settings_or_exit() -> Settings:
    from gateway.config import ConfigError, Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"tapgate: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def _backup(args: argparse.Namespace) -> int:
    from gateway.ops.backup import BackupError, backup
    from gateway.ops.runs import record_run

    settings = _settings_or_exit()
    directory = Path(
        args.dir or os.environ.get("TAPGATE_BACKUP_DIR") or settings.data_dir / "backups"
    )
    started = time.time()
    try:
        path = backup(settings.db_path, directory, args.keep, args.post_command)
    except BackupError as exc:
        print(f"tapgate: backup failed: {exc}", file=sys.stderr)
        if settings.db_path.exists():
            record_run(settings.db_path, "backup", started, False, str(exc))
        return 1
    record_run(settings.db_path, "backup", started, True, str(path))
    print(path)
    return 0


def _archive(args: argparse.Namespace) -> int:
    """Through the running gateway's writer, or, when none runs, under the data dir's lock."""
    import sqlite3

    from gateway.lockfile import DataDirLocked, hold_lock
    from gateway.ops.archive import (
        ARCHIVE_NAME,
        ArchiveError,
        archive_all,
        archive_cutoff,
        parse_age,
    )
    from gateway.ops.runs import record_run
    from gateway.ops.tick_retention import ticks_all
    from gateway.store.database import prepare
    from gateway.store.schema import connect_pragmas

    settings = _settings_or_exit()
    try:
        age = parse_age(args.older_than)
    except ValueError as exc:
        print(f"tapgate archive: {exc}", file=sys.stderr)
        return 2
    started = time.time()
    try:
        fd = hold_lock(settings.lock_path)
    except DataDirLocked:
        code = _admin_post(args, "/admin/archive", {"older_than_s": age})
        record_run(settings.db_path, "archive", started, code == 0, "through the gateway")
        return code
    try:
        prepare(settings.db_path, settings.synchronous)
        conn = sqlite3.connect(settings.db_path, isolation_level=None)
        conn.executescript(connect_pragmas(settings.synchronous))
        try:
            now_ms = int(started * 1000)
            cutoff = archive_cutoff(now_ms, age, settings)
            path = settings.data_dir / ARCHIVE_NAME
            moved = archive_all(conn, path, cutoff)
            keep = {m.symbol: m.vol_window for m in settings.markets}
            ticks = ticks_all(conn, path, cutoff, keep, now_ms)
        finally:
            conn.close()
    except (ArchiveError, sqlite3.Error) as exc:
        print(f"tapgate archive: {exc}", file=sys.stderr)
        record_run(settings.db_path, "archive", started, False, str(exc))
        return 1
    finally:
        os.close(fd)
    record_run(settings.db_path, "archive", started, True, f"moved {moved} bets, {ticks} ticks")
    body = {"moved": moved, "ticks_moved": ticks, "archive": str(path), "cutoff_ms": cutoff}
    _print(body, args)
    return 0


def _restore(args: argparse.Namespace) -> int:
    from gateway.lockfile import DataDirLocked
    from gateway.ops.backup import BackupError, restore

    settings = _settings_or_exit()
    try:
        aside = restore(Path(args.file), settings.db_path, settings.lock_path)
    except DataDirLocked as exc:
        print(f"tapgate: {exc}; stop the gateway before restoring", file=sys.stderr)
        return 1
    except BackupError as exc:
        print(f"tapgate: restore refused: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.file} to {settings.db_path}")
    if aside is not None:
        print(f"the replaced database is kept at {aside}")
    return 0


def _output_options(parser: argparse.ArgumentParser) -> None:
    """--json / --table; without either, a table on a terminal and JSON otherwise."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", dest="output", action="store_const", const="json",
                       help="JSON even on a terminal")  # fmt: skip
    group.add_argument("--table", dest="output", action="store_const", const="table",
                       help="a table even into a pipe")  # fmt: skip
    parser.set_defaults(output=None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tapgate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tapgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the gateway (settings from TAPGATE_* variables)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(func=_serve)

    keygen = sub.add_parser("keygen", help="make a wallet key; prints the wallet address")
    keygen.add_argument("--out", default="wallet.key", help="where to write the secret seed")
    keygen.set_defaults(func=_keygen)

    bet = sub.add_parser("bet", help="sign and place a bet")
    bet.add_argument("--key", default="wallet.key")
    bet.add_argument("--market", default="BTC-USD")
    bet.add_argument("--cell", required=True, help="cell-<row>-<col>")
    bet.add_argument("--amount", type=int, required=True, help="minor units")
    bet.add_argument("--nonce", default=None, help="default: random")
    bet.add_argument("--min-multiplier", default=None)
    bet.add_argument("--url", default=DEFAULT_URL)
    _output_options(bet)
    bet.set_defaults(func=_bet)

    check = sub.add_parser(
        "check", help="integrity, foreign keys, ledger invariants and query plans of the database"
    )
    check.set_defaults(func=_check)

    backup = sub.add_parser("backup", help="a checked, consistent copy of the database")
    backup.add_argument("--dir", help="default: $TAPGATE_BACKUP_DIR or $TAPGATE_DATA_DIR/backups")
    backup.add_argument("--keep", type=int, default=48, help="newest backups to keep")
    backup.add_argument("--post-command", help="run with the new file's path appended")
    backup.set_defaults(func=_backup)

    archive = sub.add_parser(
        "archive", help="move settled bets older than an age into archive.db (stubs stay)"
    )
    archive.add_argument("--older-than", required=True, help="e.g. 30d, 12h, 90m")
    archive.add_argument("--url", default=DEFAULT_URL, help="the gateway, when it runs")
    _output_options(archive)
    archive.set_defaults(func=_archive)

    smoke = sub.add_parser(
        "smoke", help="after install, upgrade or rollback: a signed bet reaches the balance check"
    )
    smoke.add_argument("--url", default=DEFAULT_URL)
    smoke.add_argument("--market", default="BTC-USD")
    smoke.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for readiness")
    smoke.set_defaults(func=_smoke)

    restore = sub.add_parser("restore", help="replace the database by a backup (gateway stopped)")
    restore.add_argument("file")
    restore.set_defaults(func=_restore)

    market = sub.add_parser("market", help="market operations")
    msub = market.add_subparsers(dest="market_command", required=True)
    msub.add_parser("list", help="markets with price, breaker state and grid geometry")
    grid = msub.add_parser("grid", help="the cells open for betting, with multipliers")
    grid.add_argument("symbol")
    pick = msub.add_parser(
        "pick", help="print a cell that stays open a while (waits for the market to open)"
    )
    pick.add_argument("symbol")
    pick.add_argument("--lead-s", type=float, default=5.0, help="open at least this long")
    pick.add_argument("--wait-s", type=float, default=60.0, help="wait this long for bets")
    halt = msub.add_parser("halt", help="operator halt: refuse new bets until resumed (admin)")
    halt.add_argument("symbol")
    halt.add_argument("--reason", required=True)
    resume = msub.add_parser("resume", help="lift an operator halt (admin)")
    resume.add_argument("symbol")
    for p in msub.choices.values():
        p.add_argument("--url", default=DEFAULT_URL)
        if p is not pick:
            _output_options(p)
    market.set_defaults(func=_market)

    feed = sub.add_parser(
        "feed", help="post '<price> [<ts_ms>]' lines from stdin as ticks signed by the oracle key"
    )
    feed.add_argument("--key", default="oracle.key", help="the oracle's key (tapgate keygen)")
    feed.add_argument("--market", default="BTC-USD")
    feed.add_argument("--url", default=DEFAULT_URL)
    feed.set_defaults(func=_feed)

    wallet = sub.add_parser("wallet", help="wallet operations")
    wsub = wallet.add_subparsers(dest="wallet_command", required=True)
    credit = wsub.add_parser(
        "credit", help="fund a wallet (admin token from TAPGATE_ADMIN_TOKEN[_FILE])"
    )
    credit.add_argument("wallet")
    credit.add_argument("amount", type=int)
    credit.add_argument("--reference", required=True, help="unique deposit id (idempotency)")
    credit.add_argument("--url", default=DEFAULT_URL)
    _output_options(credit)
    credit.set_defaults(func=_credit)
    show = wsub.add_parser("show", help="balance and open bets of your wallet (signed read)")
    show.add_argument("--key", default="wallet.key")
    show.add_argument("--bets", action="store_true", help="list the wallet's bets")
    show.add_argument("--url", default=DEFAULT_URL)
    _output_options(show)
    show.set_defaults(func=_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(f"tapgate: {exc.message}", file=sys.stderr)
        return exc.code
    except httpx.TransportError as exc:  # refused, reset, timed out
        url = getattr(args, "url", DEFAULT_URL)
        print(f"tapgate: no gateway answered at {url} ({exc.__class__.__name__})", file=sys.stderr)
        return EXIT_UNREACHABLE
    except BrokenPipeError:  # `tapgate market grid | head`: the reader is gone, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return 0
    return code
