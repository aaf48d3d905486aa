"""The data directory's exclusive lock: one gateway (or offline tool) per database."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["DataDirLocked", "hold_lock"]


class DataDirLocked(RuntimeError):
    """Another process holds the data directory's lock."""


def hold_lock(path: Path) -> int:
    """Take the exclusive lock on ``path`` for the life of the process; return its fd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise DataDirLocked(
            f"{path} is locked by pid {holder}: another tapgate is using this data directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
