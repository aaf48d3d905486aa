"""The owner-worker channel: one Unix socket pair per worker, length-prefixed frames.

A frame is a tuple of plain values (str, int, float, bytes, None, tuples, lists and dicts
of them) encoded with ``marshal``: no classes are built when a frame is read, and the two
ends are processes of one installation started together, never another version. The
sockets are a ``socketpair`` the owner makes before it starts a worker, so nothing else can
connect to them. Frames written during one event-loop turn leave in one ``write``.
"""

from __future__ import annotations

import asyncio
import marshal
import struct
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["Channel", "Frame", "MAX_FRAME"]

Frame = tuple[Any, ...]
_LENGTH = struct.Struct("!I")
MAX_FRAME = 16 * 1024 * 1024  # a /metrics exposition or a large read fits; more is a bug
_CHUNK = 256 * 1024


class Channel:
    """One end of a worker's socket pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # the loop the streams belong to, kept: get_running_loop() asks the kernel for the
        # process id on every call (a system call), and a busy channel sends per request
        self.loop = asyncio.get_running_loop()
        self._reader = reader
        self._writer = writer
        self._out: list[bytes] = []

    @classmethod
    async def open(cls, sock: Any) -> Channel:
        """The channel over a connected Unix stream ``sock``."""
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_FRAME)
        return cls(reader, writer)

    def send(self, *frame: Any) -> None:
        """Queue ``frame``; every frame queued in this loop turn is written at its end."""
        data = marshal.dumps(frame)
        if not self._out:
            self.loop.call_soon(self._flush)
        self._out.append(_LENGTH.pack(len(data)))
        self._out.append(data)

    def _flush(self) -> None:
        if self._out and not self._writer.is_closing():
            self._writer.write(b"".join(self._out))
        self._out.clear()

    async def frames(self) -> AsyncIterator[Frame]:
        """Every frame the other end sends, until its end closes or its process dies.

        Each read takes what the socket has (up to _CHUNK) and yields every whole frame in
        it: a busy channel costs one await per read, not two per frame."""
        reader = self._reader
        buffer = bytearray()
        while True:
            try:
                chunk = await reader.read(_CHUNK)
            except ConnectionResetError:  # it died with frames of ours unread (a SIGKILL)
                return
            if not chunk:
                return  # closed; a frame cut short means its process died mid-write
            buffer += chunk
            start, end = 0, len(buffer)
            while end - start >= _LENGTH.size:
                (size,) = _LENGTH.unpack_from(buffer, start)
                if size > MAX_FRAME:
                    raise ConnectionError(f"a channel frame of {size} bytes")
                stop = start + _LENGTH.size + size
                if stop > end:
                    break
                # the peer is this installation's own process on a socketpair (module doc)
                frame = marshal.loads(buffer[start + _LENGTH.size : stop])  # noqa: S302  # nosec B302
                start = stop
                yield frame
            del buffer[:start]

    def close(self) -> None:
        self._flush()
        self._writer.close()
