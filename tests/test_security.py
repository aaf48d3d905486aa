"""Security properties checked statically: inventory (OpenAPI) and no outbound requests."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from starlette.routing import Route

from gateway.config import Settings
from gateway.http.openapi import openapi
from gateway.server.app import create_app

ROOT = Path(__file__).resolve().parent.parent


def _app_routes() -> set[tuple[str, str]]:
    app = create_app(Settings())
    out = {("/api/bets", "post")}  # the raw-ASGI hot route, dispatched before Starlette
    for route in app.starlette.routes:
        # the stream (its plain GET answers 426) is in docs/FRONTEND.md, not an OpenAPI op
        if isinstance(route, Route) and route.path != "/api/stream":
            out |= {(route.path, m.lower()) for m in route.methods or () if m != "HEAD"}
    return out


def test_openapi_documents_exactly_the_served_routes() -> None:
    """Every route is in /openapi.json and every documented operation is served (API9)."""
    documented = {(p, m) for p, ops in openapi()["paths"].items() for m in ops}
    assert documented == _app_routes()


def test_every_operation_has_its_own_operation_id() -> None:
    """Generated clients name each call: every operation has an operationId, none twice."""
    ids = [op["operationId"] for ops in openapi()["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == len(_app_routes())


def test_server_code_makes_no_outbound_requests() -> None:
    """Nothing the server runs imports an HTTP or socket client (API7: no SSRF surface).

    gateway/client/ (and the command line that calls it) sends requests; it runs on an
    operator's or a player's machine, never inside the gateway (tests/test_layers.py keeps
    the server from importing it). sdnotify writes only to systemd's NOTIFY_SOCKET, an
    address systemd sets; serve.py types uvicorn's sockets; workers.py binds the listening
    socket and the owner-worker socket pairs (it connects to nothing).
    """
    outside = {"gateway/cli.py", "gateway/__main__.py", "gateway/server/sdnotify.py",
               "gateway/server/serve.py", "gateway/server/workers.py"}  # fmt: skip
    forbidden = {"httpx", "urllib", "requests", "http.client", "aiohttp", "socket"}
    found = []
    for path in (ROOT / "gateway").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("gateway/client/") or relative in outside:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in forbidden or n in forbidden
            ]
    assert not found, found


def test_a_bug_in_a_route_answers_the_generic_500(tmp_path: Path) -> None:
    """An exception escaping a Starlette route gives the JSON 500 with the request id only."""
    from starlette.testclient import TestClient

    from tests.gatewayproc import test_settings

    app = create_app(test_settings(tmp_path))

    async def broken(request: object) -> None:
        raise RuntimeError("secret detail that must not leak")

    app.starlette.router.routes.append(Route("/broken", broken))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/broken", headers={"x-request-id": "bug-1"})
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal error; quote the request id",
            "request_id": "bug-1",
        }
    }
    assert "secret" not in r.text and r.headers["cache-control"] == "no-store"


def test_security_md_names_every_mutation_patch_and_each_names_a_test() -> None:
    """SECURITY.md and tests/mutations/ list the same patches; each names a test that exists."""
    patches = {p.stem: p for p in (ROOT / "tests" / "mutations").glob("*.patch")}
    named = set(re.findall(r"`(\d\d-[a-z0-9-]+)`", (ROOT / "docs" / "SECURITY.md").read_text()))
    assert named == set(patches)
    for patch in patches.values():
        tests = [
            line.split(":", 1)[1].strip()
            for line in patch.read_text().splitlines()
            if line.startswith("# test:")
        ]
        assert tests, patch.name
        for test in tests:
            path, _, name = test.partition("::")
            function = name.partition("[")[0]  # a parametrized case names its function
            assert f"def {function}(" in (ROOT / path).read_text(), (patch.name, test)


def test_every_mutation_patch_applies_to_the_current_code() -> None:
    """A patch gone stale (its context edited) fails here, not at the end of make mutation-check."""
    stale = [
        patch.name
        for patch in sorted((ROOT / "tests" / "mutations").glob("*.patch"))
        if subprocess.run(
            ["git", "apply", "--check", str(patch)], cwd=ROOT, capture_output=True
        ).returncode
    ]
    assert not stale, stale
