"""The owner's work a bet, in instructions, by thread: where its event loop's time goes.

Opens the owner's app and runtime as ``bench/owner_alone.py`` does (shipped defaults,
``synchronous=FULL``, logs at warning), funds --bets wallets and, with no socket in
between, gives its ``WorkerLink`` what a worker sends for each bet (``take``, then
``admit`` of a verified bet on the furthest column's cells), each answer marshalled as the
channel would. Two sections, each counted alone under valgrind's callgrind with one count
per thread:

- admit: every ``take`` and ``admit``, one after another, the loop not turning (so
  nothing else runs on it);
- commit: the loop turning until every bet is answered: the writer's groups (its thread),
  the outcomes, receipts and answers (the loop).

Each thread is named by what it spent its instructions in: SQLite (the heaviest is the
writer; the reader and the checkpointer barely show), numpy (the markets' pricing),
thread 1 the event loop. The markets' pricing runs on its own schedule and lands in whichever
section is running, so read the event loop's and the writer's lines. Valgrind counts a
``rep stosb`` once per byte it stores (a 64 KiB memset: 65,536), so the writer's zeroing of
SQLite pages (memset, a fifth of its count) weighs far more here than in time.

    .venv/bin/python bench/owner_layers.py [--bets 400]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import marshal
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.bets.pending import credit  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.server.app import create_app  # noqa: E402
from gateway.server.owner import WorkerLink  # noqa: E402
from gateway.telemetry import configure_logging  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from owner_alone import MARKET, verified_bet  # noqa: E402


class Answers:
    """The worker's end of the channel: each frame marshalled, as ``Channel.send`` does."""

    def __init__(self) -> None:
        self.count = 0

    def send(self, *frame: Any) -> None:
        marshal.dumps(frame)
        self.count += 1


def control(*words: str) -> None:
    command = ["callgrind_control", *words, str(os.getpid())]
    subprocess.run(command, check=True, capture_output=True)  # nosec B603


async def sections(bets: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="tapgate-owner-layers-"))
    settings = Settings.from_env({"TAPGATE_DATA_DIR": str(data), "TAPGATE_LOG_LEVEL": "warning"})
    configure_logging("warning", console=False)
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    app = create_app(settings)
    async with app.lifespan():
        rt = app.runtime
        if rt is None:
            raise SystemExit("the runtime did not open")
        wallets = [os.urandom(32).hex() for _ in range(bets)]
        now_ms = int(time.time() * 1000)
        await asyncio.gather(
            *(credit(rt.writer, rt.accounts, w, 10**9, f"b-{w[:16]}", now_ms) for w in wallets)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://owner") as client:
            grid: list[dict[str, Any]] = []
            while not grid:  # priced, and the breaker back to normal after the first ticks
                await asyncio.sleep(0.2)
                grid = (await client.get(f"/api/markets/{MARKET}/grid")).json()["cells"]
        far = max(cell["start_ms"] for cell in grid)
        cells = [(c["cell_id"], c["row"], c["col"]) for c in grid if c["start_ms"] == far]
        answers = Answers()
        link = WorkerLink(answers, rt.admission, app.dispatch, time.time)  # type: ignore[arg-type]
        now = time.time()
        frames = []
        for i, wallet in enumerate(wallets):
            bet = verified_bet(wallet, cells[i % len(cells)], f"n{i}", now)
            take = ("take", 2 * i + 1, f"10.0.{i % 250}.1", now)
            frames.append((take, ("admit", 2 * i + 2, bet, now)))
        gc.collect(1)
        gc.freeze()  # as the runtime's housekeeping does each second
        control("-i", "on")
        for take, admit in frames:
            link._take(take)
            link._admit(admit)
        control("-d", "admit")
        control("-i", "off")
        gc.collect(1)
        gc.freeze()
        control("-i", "on")
        while answers.count < 2 * bets:
            await asyncio.sleep(0.001)
        control("-d", "commit")
        control("-i", "off")


def report(out: Path, bets: int) -> dict[str, Any]:
    """Instructions a bet for each section and thread, from the dumps in ``out``."""
    by_section: dict[str, dict[str, int]] = {}
    for dump in sorted(out.glob("callgrind.*")):
        text = dump.read_text(errors="replace")
        name = re.search(r"^desc: Trigger: dump (\w+)$", text, re.M)
        total = re.search(r"^totals: (\d+)$", text, re.M)
        thread = re.search(r"-(\d+)$", dump.name)
        if not (name and total and thread) or int(total[1]) < bets * 100:
            continue
        annotate = ["callgrind_annotate", str(dump)]
        top = subprocess.run(annotate, check=True, capture_output=True, text=True).stdout  # nosec
        label = f"thread {int(thread[1])}: {_role(int(thread[1]), top)}"
        by_section.setdefault(name[1], {})[label] = round(int(total[1]) / bets)
    return {"bets": bets, "instructions_per_bet": by_section}


def _role(thread: int, annotated: str) -> str:
    """What a thread is, from the libraries it spent the most instructions in."""
    if thread == 1:
        return "the event loop"
    spent = {"SQLite": 0, "numpy (pricing)": 0}
    for line in annotated.split("file:function", 1)[-1].splitlines():
        count = re.match(r"\s*([\d,]+) ", line)
        if count is None:
            continue
        if "libsqlite3" in line:
            spent["SQLite"] += int(count[1].replace(",", ""))
        elif "numpy" in line or "libm.so" in line:
            spent["numpy (pricing)"] += int(count[1].replace(",", ""))
    role, most = max(spent.items(), key=lambda item: item[1])
    return role if most else "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bets", type=int, default=400)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        uvloop.run(sections(args.bets))
        return
    out = Path(tempfile.mkdtemp(prefix="tapgate-callgrind-"))
    command = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}/callgrind.%p",
        sys.executable,
        __file__,
        "--inside",
        "--bets",
        str(args.bets),
    ]
    subprocess.run(command, check=True, capture_output=True)  # nosec B603
    print(json.dumps(report(out, args.bets), indent=1))


if __name__ == "__main__":
    main()
