"""The mutation check: each patch here disables one protection; its tests must then fail.

    python tests/mutations/run.py [NAME ...]     (make mutation-check; CI runs it)

First every test named by a patch runs on the code as it is: each must pass, or a failure
later would prove nothing. Then, for every ``*.patch`` (or those whose names contain one of
the arguments): apply it with ``git apply``, run the tests named in its ``# test:`` lines,
read pytest's JUnit report, and revert. The patch is caught when at least one of its tests
*fails* (an assertion) and none *errors* (a broken fixture or import proves nothing about
the protection). A patch that no longer applies, or whose tests still pass, fails the check:
either the code moved (update the patch with the one line it disables) or a protection lost
its test. Slow tests (the ``edge`` marker) are run too: ``-m ""`` lifts the default filter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET  # our own pytest report, never untrusted input
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# pytest plugins no named test needs (tests that use hypothesis or schemathesis import them):
# loading them took 4 of the 5.4 s each of the ~80 pytest runs here spent before its tests
LEAN = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:benchmark")
# the baseline (every named test) on two processes, a test file to each, as make test runs
PARALLEL = ("-n", "2", "--dist", "loadfile")


@dataclass(frozen=True)
class Report:
    passed: int
    failed: int
    errors: int
    output: str


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def _named(patch: Path) -> tuple[str, list[str]]:
    lines = patch.read_text().splitlines()
    tests = [line.split(":", 1)[1].strip() for line in lines if line.startswith("# test:")]
    what = next(
        (line[len("# protects:") :].strip() for line in lines if line.startswith("# protects:")), ""
    )
    return what, tests


def _pytest(tests: list[str], *options: str) -> Report:
    """Run ``tests`` (no coverage, no cache, the edge filter lifted) and read the report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "report.xml"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-m",
                "",
                "-p",
                "no:cacheprovider",
                "--no-header",
                *LEAN,
                f"--junitxml={junit}",
                *options,
                *tests,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if not junit.exists():
            return Report(0, 0, 1, result.stdout[-2000:] + result.stderr[-2000:])
        suites = ET.parse(junit).getroot()  # noqa: S314 # written by pytest just now
    cases = list(suites.iter("testcase"))
    failed = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    passed = len(cases) - failed - errors - skipped
    return Report(passed, failed, errors, result.stdout[-2000:])


def check(patch: Path) -> tuple[bool, str]:
    what, tests = _named(patch)
    if not tests:
        return False, "names no test"
    if _git("apply", "--check", str(patch)).returncode != 0:
        return False, "does not apply to the current code"
    _git("apply", str(patch))
    try:
        report = _pytest(tests)
    finally:
        reverted = _git("apply", "-R", str(patch))
        if reverted.returncode != 0:
            raise SystemExit(f"could not revert {patch.name}: {reverted.stderr}")
    if report.errors:
        return False, f"{what}: {report.errors} test(s) ERRORED, not failed\n{report.output}"
    if report.failed:
        return True, f"{what}: caught ({report.failed} failed)"
    if report.passed:
        return False, f"{what}: SURVIVED, its tests still pass"
    return False, f"{what}: pytest ran none of its tests\n{report.output}"


def main() -> int:
    if _git("diff", "--quiet", "--", "gateway").returncode != 0:
        print("mutation-check: gateway/ has uncommitted changes; commit or stash them first")
        return 2
    wanted = sys.argv[1:]
    patches = [
        p for p in sorted(HERE.glob("*.patch")) if not wanted or any(w in p.name for w in wanted)
    ]
    named = sorted({t for p in patches for t in _named(p)[1]})
    started = time.monotonic()
    baseline = _pytest(named, *PARALLEL)
    print(f"unpatched: {baseline.passed} of {len(named)} named tests pass "
          f"({time.monotonic() - started:.0f} s)")  # fmt: skip
    if baseline.failed or baseline.errors or baseline.passed < len(named):
        print(f"mutation-check: named tests must pass on the code as it is\n{baseline.output}")
        return 1
    failed = 0
    for patch in patches:
        started = time.monotonic()
        ok, message = check(patch)
        failed += not ok
        took = time.monotonic() - started
        print(f"{'ok  ' if ok else 'FAIL'} {patch.stem:<42} {took:5.1f} s  {message}")
    print(f"{len(patches) - failed} of {len(patches)} mutations caught")
    return 0 if failed == 0 and patches else 1


if __name__ == "__main__":
    sys.exit(main())
