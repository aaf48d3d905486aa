"""Error codes: one enum, one status table, one documented list."""

from __future__ import annotations

import re

from gateway.errors import ErrorCode
from gateway.http.errors import STATUS
from tests.gatewayproc import ROOT


def test_every_error_code_has_a_status() -> None:
    """The status table covers exactly the codes of the enum."""
    assert set(STATUS) == set(ErrorCode)


def test_api_md_lists_each_code_with_its_status() -> None:
    """docs/API.md's error table gives each code the status the gateway answers with."""
    table = re.findall(
        r"^\| (\d{3}) \| `([a-z_]+)` \|", (ROOT / "docs" / "API.md").read_text(), re.M
    )
    assert {code: int(status) for status, code in table} == {c.value: s for c, s in STATUS.items()}
