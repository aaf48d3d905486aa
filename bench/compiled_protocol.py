"""Measured attempt: per-request validation and canonicalisation compiled with Cython.

Compiles ``gateway/protocol.py`` unchanged with Cython into a temporary directory and times
``parse_bet`` (parse + validate) and the canonical message against the interpreted module,
on the same 100 signed bodies.

    .venv/bin/python bench/compiled_protocol.py
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path
from types import ModuleType

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import protocol  # noqa: E402
from gateway.client.wallet import Wallet, bet_body  # noqa: E402

_SETUP = """
from Cython.Build import cythonize
from setuptools import Extension, setup
setup(ext_modules=cythonize([Extension("protocol_cy", ["protocol_cy.py"])],
                            language_level=3, quiet=True),
      script_args=["build_ext", "--inplace", "-q"])
"""


def compiled(workdir: Path) -> ModuleType:
    shutil.copyfile(ROOT / "gateway" / "protocol.py", workdir / "protocol_cy.py")
    (workdir / "setup_cy.py").write_text(_SETUP)
    subprocess.run(
        [sys.executable, "setup_cy.py"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    (built,) = workdir.glob("protocol_cy*.so")
    spec = importlib.util.spec_from_file_location("protocol_cy", built)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    wallet = Wallet.generate()
    bodies = [
        orjson.dumps(bet_body(wallet, market="BTC-USD", cell_id="cell-1-2", amount=100))
        for _ in range(100)
    ]
    markets = frozenset({"BTC-USD"})
    with tempfile.TemporaryDirectory() as tmp:
        for name, module in (("interpreted", protocol), ("cython", compiled(Path(tmp)))):
            parse, canon = _time(module, bodies, markets)
            print(
                f"{name:12} parse + validate {parse:.2f} us/bet, "
                f"canonical message {canon:.2f} us/bet"
            )


def _time(module: ModuleType, bodies: list[bytes], markets: frozenset[str]) -> tuple[float, float]:
    """Best-of-five microseconds per bet for parse + validate, and for the canonical message."""
    bets = [module.parse_bet(b, markets) for b in bodies]
    runs = 200 * len(bodies)
    parse = min(
        timeit.repeat(lambda: [module.parse_bet(b, markets) for b in bodies], number=200, repeat=5)
    )
    canon = min(timeit.repeat(lambda: [b.message for b in bets], number=200, repeat=5))
    return parse / runs * 1e6, canon / runs * 1e6


if __name__ == "__main__":
    main()
