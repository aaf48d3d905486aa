from collections.abc import Collection
from typing import Any

__all__ = ["bet_fields"]

def bet_fields(
    body: bytes, data: dict[str, Any], markets: Collection[str]
) -> tuple[str, str, str, int, int, int, str, int, str | None, str] | None: ...
