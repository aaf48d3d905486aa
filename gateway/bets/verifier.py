"""Signature verification on a thread of its own, many signatures per hand-off.

The event loop queues (signature + message, public key) and awaits a future; the thread
takes everything queued, verifies it in one ``fastpath.verify_batch`` call (compiled: the
whole batch without the GIL) and hands all results back with one ``call_soon_threadsafe``.
Per-request ``run_in_executor`` was measured slower than verifying inline (issue 4); one
hand-off per batch is what makes the thread pay (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

__all__ = ["BatchVerifier"]

VerifyBatch = Callable[[list[tuple[bytes, bytes]]], list[bool]]
_Item = tuple[bytes, bytes, "asyncio.Future[bool]"]


class BatchVerifier:
    """One thread verifying batches; ``verify`` is called on the event loop."""

    def __init__(self, verify_batch: VerifyBatch, loop: asyncio.AbstractEventLoop) -> None:
        self._verify_batch = verify_batch
        self._loop = loop
        self._pending: list[_Item] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tapgate-verifier", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=5)

    def verify(self, signed: bytes, public_key: bytes) -> asyncio.Future[bool]:
        """A future that becomes True when the signature (first 64 bytes of ``signed``) holds."""
        future: asyncio.Future[bool] = self._loop.create_future()
        with self._lock:
            self._pending.append((signed, public_key, future))
            if len(self._pending) == 1:
                self._wake.set()
        return future

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                items, self._pending = self._pending, []
                self._wake.clear()
            if items:
                results = self._verify_batch([(s, k) for s, k, _ in items])
                self.batches += 1
                self._loop.call_soon_threadsafe(_deliver, items, results)
            if self._stopping:
                return


def _deliver(items: list[_Item], results: list[bool]) -> None:
    for (_, _, future), ok in zip(items, results, strict=True):
        if not future.done():
            future.set_result(ok)
