"""Request-receipt limits for uvicorn's httptools protocol: a deadline and a header size.

uvicorn closes idle keep-alive connections, but a client that trickles a request one byte
at a time resets that timer with every byte and holds its connection (and a slot of
``limit_concurrency``) for ever. This protocol gives every request ``request_timeout``
seconds from its first byte (or from the connection, or the previous response) until it
has been received whole; past that the connection is closed. Handling time after the
request arrived, and WebSocket streams, are not limited.

httptools has no limit on the size of the request line and headers either; past
``MAX_HEADER_BYTES`` of them the client gets 431 and the connection is closed.

The same protocol hands uvicorn a ``CoalescingTransport`` (ADR 15): what a connection
writes during one event-loop turn (a response's head and body) leaves in one system call.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.http.coalesce import CoalescingTransport

__all__ = ["MAX_HEADER_BYTES", "with_request_deadline"]

MAX_HEADER_BYTES = 16 * 1024
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: 78\r\nconnection: close\r\n\r\n"
    b'{"error":{"code":"headers_too_large","message":"request headers over 16 KiB"}}'
)


class _DeadlineProtocol(HttpToolsProtocol):
    request_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _header_bytes = 0
    _headers_done = False

    _refused = False

    def on_headers_complete(self) -> None:
        self._headers_done = True
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > MAX_HEADER_BYTES:
            self._refuse()
            return
        super().on_headers_complete()

    def _refuse(self) -> None:
        """431 and close, before any ASGI cycle exists for this request."""
        self._refused = True
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def data_received(self, data: bytes) -> None:
        if not self._headers_done:
            self._header_bytes += len(data)
        if self._refused:
            return
        super().data_received(data)
        if not self._headers_done and self._header_bytes > MAX_HEADER_BYTES:
            self._refuse()  # still no end of headers after 16 KiB

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # a response's headers and body (and a turn's stream frames) leave in one write
        super().connection_made(CoalescingTransport(transport, self.loop))
        self._arm()

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        self._header_bytes = 0  # the next request on this connection starts counting
        self._headers_done = False
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this keep-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def with_request_deadline(seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a ``seconds`` deadline per request."""
    return type("DeadlineHttpToolsProtocol", (_DeadlineProtocol,), {"request_timeout": seconds})
