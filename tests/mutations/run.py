"""The mutation check: each patch here disables one protection; its tests must then fail.

    python tests/mutations/run.py            (make mutation-check; CI runs it)

For every ``*.patch``: apply it with ``git apply``, run the tests named in its
``# test:`` lines, require pytest to report failures (exit status 1), and revert it. A
patch that no longer applies, or whose tests still pass, fails the check: either the code
moved (update the patch with the one line it disables) or a protection lost its test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def check(patch: Path) -> tuple[bool, str]:
    lines = patch.read_text().splitlines()
    tests = [line.split(":", 1)[1].strip() for line in lines if line.startswith("# test:")]
    what = next(
        (line[len("# protects:") :].strip() for line in lines if line.startswith("# protects:")), ""
    )
    if not tests:
        return False, "names no test"
    if _git("apply", "--check", str(patch)).returncode != 0:
        return False, "does not apply to the current code"
    _git("apply", str(patch))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "--no-header",
                *tests,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        reverted = _git("apply", "-R", str(patch))
        if reverted.returncode != 0:
            raise SystemExit(f"could not revert {patch.name}: {reverted.stderr}")
    if result.returncode == 1:
        return True, f"{what}: caught"
    if result.returncode == 0:
        return False, f"{what}: SURVIVED, its tests still pass"
    detail = result.stdout[-2000:]
    return False, f"{what}: pytest could not run the tests (exit {result.returncode})\n{detail}"


def main() -> int:
    if _git("diff", "--quiet", "--", "gateway").returncode != 0:
        print("mutation-check: gateway/ has uncommitted changes; commit or stash them first")
        return 2
    patches = sorted(HERE.glob("*.patch"))
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
