"""Hot-path data structures, compiled with Cython when available.

``TAPGATE_NO_EXTENSIONS=1`` forces the pure-Python twins. ``IMPLEMENTATION`` says
which one loaded ("c" or "py"); the gateway logs it, exports it as a metric and,
with ``TAPGATE_REQUIRE_EXTENSIONS=1``, refuses to start on "py".
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__all__ = [
    "IMPLEMENTATION",
    "IMPORT_ERROR",
    "BatchQueue",
    "TokenBuckets",
    "bet_fields",
    "verify_batch",
]

NO_EXTENSIONS = os.environ.get("TAPGATE_NO_EXTENSIONS", "") not in ("", "0")
IMPORT_ERROR: str | None = None

if TYPE_CHECKING or NO_EXTENSIONS:
    from ._bets_py import bet_fields
    from ._buckets_py import TokenBuckets
    from ._queue_py import BatchQueue
    from ._verify_py import verify_batch

    IMPLEMENTATION = "py"
else:
    try:
        from ._bets_c import bet_fields
        from ._buckets_c import TokenBuckets
        from ._queue_c import BatchQueue
        from ._verify_c import verify_batch

        IMPLEMENTATION = "c"
    except ImportError as exc:  # no compiler at install time: say so, never silently
        from ._bets_py import bet_fields
        from ._buckets_py import TokenBuckets
        from ._queue_py import BatchQueue
        from ._verify_py import verify_batch

        IMPLEMENTATION = "py"
        IMPORT_ERROR = str(exc)
