"""Every fastpath test runs on both implementations (multidict's pattern)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def _compiled(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"fastpath.{name}_c")
    except ImportError:
        if os.environ.get("TAPGATE_REQUIRE_EXTENSIONS") == "1":
            raise
        return None


@pytest.fixture(params=["c", "py"])
def impl(request: pytest.FixtureRequest) -> str:
    """Which implementation the test runs against."""
    if request.param == "c" and _compiled("_buckets") is None:
        pytest.skip("compiled fastpath not built")
    return str(request.param)


@pytest.fixture
def buckets_cls(impl: str) -> type:
    return importlib.import_module(f"fastpath._buckets_{impl}").TokenBuckets  # type: ignore[no-any-return]


@pytest.fixture
def queue_cls(impl: str) -> type:
    return importlib.import_module(f"fastpath._queue_{impl}").BatchQueue  # type: ignore[no-any-return]
