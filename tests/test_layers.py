"""The import rules of docs/ARCHITECTURE.md: data flows one way, the server never imports
the client side."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.gatewayproc import ROOT

# Each part of gateway/ and the parts it may import (itself included). Leaves import no
# other part: errors, protocol (the wire contract), limits, metrics, telemetry, lockfile.
LEAVES = {
    "errors",
    "wire",
    "protocol",
    "limits",
    "metrics",
    "loop_metrics",
    "telemetry",
    "lockfile",
}
MAY_IMPORT: dict[str, set[str]] = {
    "leaf": {"leaf"},
    "store": {"leaf", "store"},
    "accounts": {"leaf", "accounts"},
    "market": {"leaf", "store", "accounts", "market"},
    "config": {"leaf", "market", "config"},
    "bets": {"leaf", "store", "accounts", "market", "config", "bets"},
    "ops": {"leaf", "store", "market", "config", "ops"},
    "runtime": {"leaf", "store", "accounts", "market", "config", "bets", "ops", "runtime"},
    "http": {"leaf", "store", "accounts", "market", "config", "bets", "ops", "runtime", "http"},
    "server": {"leaf", "config", "bets", "runtime", "http", "server"},
    "client": {"leaf", "client"},
    "cli": {"leaf", "store", "config", "ops", "server", "client", "cli"},
}


def part(module: str) -> str:
    """The part of gateway/ a dotted module name belongs to."""
    module = module.removesuffix(".__init__")
    name = module.split(".")[1] if module.count(".") else ""
    if name in LEAVES or name == "":
        return "leaf"
    if name == "__main__":
        return "cli"
    return name


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] if node.module != "gateway" else []
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [m for m in found if m.startswith("gateway.")]


def _violations(root: Path) -> list[str]:
    out = []
    for path in sorted((root / "gateway").rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        here = part(module)
        allowed = MAY_IMPORT[here]
        out += [
            f"{module} ({here}) imports {imported} ({part(imported)})"
            for imported in _imports(path)
            if part(imported) not in allowed
        ]
    return out


def test_every_part_has_a_rule() -> None:
    """Each folder and module of gateway/ is one of the parts the rules name."""
    parts = {part(".".join(p.relative_to(ROOT).with_suffix("").parts))
             for p in (ROOT / "gateway").rglob("*.py")}  # fmt: skip
    assert parts <= set(MAY_IMPORT), parts - set(MAY_IMPORT)


def test_imports_follow_the_layers() -> None:
    """No module imports a part above it (type-only imports included)."""
    assert _violations(ROOT) == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself finds store/ importing the bet layer."""
    (tmp_path / "gateway" / "store").mkdir(parents=True)
    (tmp_path / "gateway" / "store" / "bad.py").write_text("from gateway.bets import pending\n")
    assert _violations(tmp_path) == [
        "gateway.store.bad (store) imports gateway.bets (bets)"
    ]  # fmt: skip
