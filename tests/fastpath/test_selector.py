from __future__ import annotations

import os

import fastpath


def test_selected_implementation_matches_mode() -> None:
    """The compiled module loads when required, and pure Python when extensions are off."""
    if os.environ.get("TAPGATE_NO_EXTENSIONS") == "1":
        assert fastpath.IMPLEMENTATION == "py"
        assert fastpath.TokenBuckets.__module__ == "fastpath._buckets_py"
    elif os.environ.get("TAPGATE_REQUIRE_EXTENSIONS") == "1":
        assert fastpath.IMPLEMENTATION == "c", fastpath.IMPORT_ERROR
        assert fastpath.TokenBuckets.__module__ == "fastpath._buckets_c"
        assert fastpath.BatchQueue.__module__ == "fastpath._queue_c"
