"""The README's first-bet walk-through, with the project's own CLI against a real server."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.gatewayproc import ADMIN_TOKEN, ROOT, GatewayProcess, free_port, open_cell, tapgate


def test_keygen_credit_bet_show(gateway: GatewayProcess, tmp_path: Path) -> None:
    """keygen, wallet credit, bet and wallet show work end to end."""
    key = tmp_path / "alice.key"
    made = tapgate("keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    address = made.stdout.strip()
    assert len(address) == 64
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert f"address is {address}" in key.read_text()  # the seed line is labelled
    assert sum(line.startswith("ed25519-seed:") for line in key.read_text().splitlines()) == 1
    assert tapgate("keygen", "--out", str(key)).returncode == 1  # never overwrites a key

    env = {**gateway.env(), "TAPGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    credit = tapgate(
        "wallet",
        "credit",
        address,
        "1000",
        "--reference",
        "first-deposit",
        "--url",
        gateway.url,
        env=env,
    )
    assert credit.returncode == 0, credit.stdout + credit.stderr
    assert json.loads(credit.stdout)["balance"] == 1000

    bet = tapgate(
        "bet", "--key", str(key), "--cell", open_cell(), "--amount", "100", "--url", gateway.url
    )
    assert bet.returncode == 0, bet.stdout
    receipt = json.loads(bet.stdout)
    assert receipt["status"] == "accepted" and receipt["balance"] == 900

    show = tapgate("wallet", "show", "--key", str(key), "--bets", "--url", gateway.url)
    assert show.returncode == 0, show.stdout
    assert [b["bet_id"] for b in json.loads(show.stdout)["bets"]] == [receipt["bet_id"]]

    refused = tapgate(
        "bet", "--key", str(key), "--cell", open_cell(), "--amount", "5000", "--url", gateway.url
    )
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("tapgate: 409 insufficient_funds: ")
    assert len(refused.stderr.strip().splitlines()) == 1


def test_credit_without_token_explains(tmp_path: Path) -> None:
    """wallet credit with no token anywhere says which variable to set."""
    env = {"PATH": "/usr/bin:/bin", "TAPGATE_ADMIN_TOKEN_FILE": str(tmp_path / "none")}
    run = tapgate("wallet", "credit", "a" * 64, "1", "--reference", "r", env=env)
    assert run.returncode == 2
    assert "TAPGATE_ADMIN_TOKEN" in run.stderr


def test_common_mistakes_are_one_line_with_their_own_exit_code(tmp_path: Path) -> None:
    """No gateway, a missing key file, a file that is not a key, an address passed as a key:
    one line on stderr each, exit 4, 3, 3 and 3, never a traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    down = tapgate("market", "list", "--url", url)
    missing = tapgate("bet", "--key", str(tmp_path / "none.key"), "--cell", "cell-1-2",
                      "--amount", "1", "--url", url)  # fmt: skip
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    malformed = tapgate("bet", "--key", str(junk), "--cell", "cell-1-2", "--amount", "1",
                        "--url", url)  # fmt: skip
    address = tmp_path / "alice.addr"  # `tapgate keygen --out alice.key > alice.addr`
    address.write_text("6de3af41e781bef8b39951f02e12a24f21190901fb02687accae19502279b87e\n")
    public = tapgate("bet", "--key", str(address), "--cell", "cell-1-2", "--amount", "1",
                     "--url", url)  # fmt: skip
    for run, code, words in (
        (down, 4, f"no gateway answered at {url}"),
        (missing, 3, "no such key file"),
        (malformed, 3, "not a key file"),
        (public, 3, "the shape of a wallet address (public, not a key)"),
    ):
        assert run.returncode == code, run.stderr
        assert run.stderr.startswith("tapgate: ") and words in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_output_cut_short_by_a_pipe_is_not_an_error(gateway: GatewayProcess) -> None:
    """`tapgate market grid | head -c 20`: the reader leaving early is no traceback."""
    run = subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         f"{sys.executable} -m gateway market grid BTC-USD --url {gateway.url} | head -c 20"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0 and len(run.stdout) == 20, run.stderr
    assert run.stderr == ""


def _on_a_terminal(*args: str) -> str:
    """The CLI's output with stdout a pseudo-terminal, as in an operator's shell."""
    main, side = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "gateway", *args], cwd=ROOT, stdout=side, stderr=subprocess.PIPE
    ) as proc:
        os.close(side)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    os.close(main)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_tables_on_a_terminal_json_into_a_pipe(gateway: GatewayProcess) -> None:
    """A terminal gets a table and a pipe JSON; --json and --table override either."""
    url = ("--url", gateway.url)
    on_tty = _on_a_terminal("market", "list", *url)
    assert on_tty.splitlines()[0].split()[:3] == ["market", "price", "breaker"]
    assert json.loads(_on_a_terminal("market", "list", "--json", *url))["markets"]
    piped = tapgate("market", "list", *url)
    assert json.loads(piped.stdout)["markets"]
    forced = tapgate("market", "grid", "BTC-USD", "--table", *url)
    assert forced.stdout.startswith("BTC-USD  price ")
    assert "cell id: cell-<row>-<col>" in forced.stdout
