"""permessage-deflate for the stream, each message compressed once for every connection.

Every watcher of a market receives the same texts (ticks and grid updates of ~4-6 KB).
With the usual negotiation each connection keeps its own compression context, so each
text is compressed again for every connection: in the ``live`` scenario (300 watchers)
that was a quarter of a worker's CPU and, in a turn that fans one message out to every
watcher, a stall of many milliseconds (bench/RESULTS.md, 2026-11-29 18:45-18:48).

Here the server always answers ``server_no_context_takeover`` (RFC 7692 lets a server
add it to any offer): each message it sends is compressed on its own, so the compressed
bytes of one text are the same for every connection with the same window size. They are
computed once and kept for a few messages (``SharedCompressions``). Clients see standard
permessage-deflate; what they send is decompressed as before. The cost is a weaker ratio
than with context takeover (each message starts with an empty window).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import OrderedDict
from typing import Any

from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import CTRL_OPCODES, Frame

__all__ = ["SharedCompressions", "SharedDeflate", "SharedDeflateFactory", "stream_protocol"]

_TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; RFC 7692 drops it


class SharedCompressions:
    """The compressed payloads of the last ``size`` messages, by (text, window bits)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._done: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
        self.compressed = 0  # how many payloads were compressed (tests, benchmarks)

    def get(self, data: bytes, wbits: int) -> bytes:
        key = (data, wbits)
        found = self._done.get(key)
        if found is not None:
            return found
        encoder = zlib.compressobj(wbits=-wbits)
        payload = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
        payload = payload[: -len(_TAIL)]  # always present after a sync flush
        self.compressed += 1
        self._done[key] = payload
        if len(self._done) > self.size:
            self._done.popitem(last=False)
        return payload


SHARED = SharedCompressions()  # one per process: the stream's messages are per process


class SharedDeflate(PerMessageDeflate):
    """permessage-deflate whose whole outgoing messages come from ``SHARED``."""

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode in CTRL_OPCODES or not frame.fin or not self.local_no_context_takeover:
            return super().encode(frame)  # fragments and control frames: as websockets does
        payload = SHARED.get(bytes(frame.data), self.local_max_window_bits)
        return Frame(frame.opcode, payload, True, True, frame.rsv2, frame.rsv3)


class SharedDeflateFactory(ServerPerMessageDeflateFactory):
    """The server's offer answer: always ``server_no_context_takeover``."""

    def __init__(self) -> None:
        super().__init__(server_no_context_takeover=True)

    def process_request_params(self, params: Any, accepted_extensions: Any) -> Any:
        response, ext = super().process_request_params(params, accepted_extensions)
        shared = SharedDeflate(
            ext.remote_no_context_takeover,
            ext.local_no_context_takeover,
            ext.remote_max_window_bits,
            ext.local_max_window_bits,
        )
        return response, shared


def stream_protocol() -> type[asyncio.Protocol]:
    """uvicorn's websockets protocol offering the shared compression (when
    ``ws_per_message_deflate`` is on, as it is by default). Imported here, not at the top:
    importing uvicorn's legacy websockets module warns, and serving quiets that first."""
    from uvicorn.protocols.websockets.websockets_impl import WebSocketProtocol

    class StreamProtocol(WebSocketProtocol):
        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            if config.ws_per_message_deflate:
                extensions: list[ServerExtensionFactory] = [SharedDeflateFactory()]
                self.available_extensions = extensions

    return StreamProtocol
