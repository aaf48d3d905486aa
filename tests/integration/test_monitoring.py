"""Alert rules and the dashboard: promtool checks and unit-tests them; metric names exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gatewayproc import ROOT, GatewayProcess

MONITORING = ROOT / "docs" / "monitoring"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is needed (Debian: apt-get install prometheus)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], capture_output=True, text=True, timeout=300, cwd=MONITORING
    )


@pytest.mark.once
def test_alert_rules_pass_their_unit_tests() -> None:
    """promtool check rules and promtool test rules both pass."""
    checked = _run("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _run("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_test_and_an_existing_runbook() -> None:
    """Each alert appears in alerts_test.yml and names a runbook file that exists."""
    rules = (MONITORING / "alerts.yml").read_text()
    tests = (MONITORING / "alerts_test.yml").read_text()
    names = re.findall(r"- alert: (\w+)", rules)
    assert len(names) >= 12
    for name in names:
        assert f"alertname: {name}" in tests, name
    for runbook in set(re.findall(r"runbook: (\S+)", rules)):
        assert (ROOT / runbook).exists(), runbook


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


@pytest.mark.once
def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every dashboard query is valid PromQL (checked by promtool as recording rules)."""
    exprs = _dashboard_exprs()
    assert len(exprs) >= 20
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = _run("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_name_metrics_the_gateway_exports(gateway: GatewayProcess) -> None:
    """Every tapgate_* metric in the rules and dashboard exists in a live scrape."""
    with gateway.client() as c:
        scrape = c.get("/metrics").text
    exported = set(re.findall(r"^# TYPE (\w+) ", scrape, re.M))
    text = (MONITORING / "alerts.yml").read_text() + "\n".join(_dashboard_exprs())
    used = set(re.findall(r"\b(tapgate_\w+)", text))
    suffixes = ("_bucket", "_sum", "_count", "_total", "_created")
    missing = []
    for name in used:
        base = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
        if name not in exported and base not in exported:
            missing.append(name)
    assert not missing, missing
