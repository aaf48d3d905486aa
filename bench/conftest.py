from __future__ import annotations

import importlib

import pytest


@pytest.fixture(params=["c", "py"])
def impl(request: pytest.FixtureRequest) -> str:
    """Compiled and pure-Python side by side."""
    try:
        importlib.import_module(f"fastpath._buckets_{request.param}")
    except ImportError:
        pytest.skip(f"fastpath {request.param} not available")
    return str(request.param)
