"""Every fastpath test runs on both implementations (multidict's pattern)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType

import pytest


def _compiled(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"fastpath.{name}_c")
    except ImportError:
        if os.environ.get("TAPGATE_REQUIRE_EXTENSIONS") == "1":
            raise
        return None


MODULES = ("_bets", "_buckets", "_queue", "_verify")


@pytest.fixture(params=["c", "py"])
def impl(request: pytest.FixtureRequest) -> str:
    """Which implementation the test runs against (each compiled module must have loaded)."""
    if request.param == "c":
        missing = [name for name in MODULES if _compiled(name) is None]
        if missing:
            pytest.skip(f"compiled fastpath not built: {', '.join(missing)}")
    return str(request.param)


@pytest.fixture
def buckets_cls(impl: str) -> type:
    return importlib.import_module(f"fastpath._buckets_{impl}").TokenBuckets  # type: ignore[no-any-return]


@pytest.fixture
def queue_cls(impl: str) -> type:
    return importlib.import_module(f"fastpath._queue_{impl}").BatchQueue  # type: ignore[no-any-return]


@pytest.fixture
def verify_batch(impl: str) -> Callable[[list[tuple[bytes, bytes]]], list[bool]]:
    return importlib.import_module(f"fastpath._verify_{impl}").verify_batch  # type: ignore[no-any-return]
