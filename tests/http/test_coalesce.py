"""One write per connection per loop turn: a response's headers and body leave together."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway.http.coalesce import CoalescingTransport
from gateway.http.deadline import with_request_deadline


class _Socket(asyncio.Transport):
    """A connected transport that records what reaches it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", None))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.calls.append(("set_protocol", protocol))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        self.calls.append(("pause_reading", None))

    def resume_reading(self) -> None:
        self.calls.append(("resume_reading", None))


def test_writes_of_one_loop_turn_reach_the_socket_in_one_call() -> None:
    """Three writes in one turn are one write at its end; the next turn's are another."""

    async def scenario() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]], int]:
        sock = _Socket()
        transport = CoalescingTransport(sock, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")
        reused = bytearray(b"!")
        transport.writelines([b"body", reused])
        reused[0] = ord("?")  # the caller's buffer is its own again once write() returned
        held = transport.get_write_buffer_size()
        before = list(sock.calls)
        await asyncio.sleep(0)
        transport.write(b"next")
        await asyncio.sleep(0)
        return before, sock.calls, held

    before, after, held = asyncio.run(scenario())
    assert before == [] and held == len(b"HTTP/1.1 200 OK\r\n\r\nbody!")
    assert after == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody!"), ("write", b"next")]


def test_what_ends_or_hands_over_the_connection_sends_what_is_held_first() -> None:
    """close, write_eof and set_protocol follow the held bytes; abort drops them."""

    async def scenario() -> list[list[tuple[str, Any]]]:
        loop = asyncio.get_running_loop()
        seen = []
        protocol = asyncio.Protocol()
        for end in ("close", "write_eof", "set_protocol", "abort"):
            sock = _Socket()
            transport = CoalescingTransport(sock, loop)
            transport.write(b"last words")
            if end == "set_protocol":
                transport.set_protocol(protocol)
            else:
                getattr(transport, end)()
            await asyncio.sleep(0)  # the turn's scheduled flush finds nothing left
            seen.append(sock.calls)
        return seen

    closed, eof, handed, aborted = asyncio.run(scenario())
    assert closed == [("write", b"last words"), ("close", None)]
    assert eof == [("write", b"last words"), ("write_eof", None)]
    assert handed[0] == ("write", b"last words") and handed[1][0] == "set_protocol"
    assert len(handed) == 2
    assert aborted == [("abort", None)]


def test_nothing_is_written_to_a_socket_already_closing() -> None:
    """Bytes held when the peer went away are dropped, not written to a dead transport."""

    async def scenario() -> list[tuple[str, Any]]:
        sock = _Socket()
        transport = CoalescingTransport(sock, asyncio.get_running_loop())
        transport.write(b"too late")
        sock.closing = True
        await asyncio.sleep(0)
        return sock.calls

    assert asyncio.run(scenario()) == []


def test_the_gateways_http_protocol_answers_a_request_in_one_write() -> None:
    """uvicorn's protocol as tapgate serves with it: the status line, headers and body of a
    response reach the socket in a single write (uvicorn alone makes two)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]}
        )
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    async def scenario() -> list[tuple[str, Any]]:
        config = Config(app, http="httptools", lifespan="off", log_config=None)
        config.load()
        protocol_class = with_request_deadline(10.0)
        protocol = protocol_class(config, ServerState(), {}, asyncio.get_running_loop())
        sock = _Socket()
        protocol.connection_made(sock)
        protocol.data_received(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        for _ in range(5):
            await asyncio.sleep(0)
        protocol.connection_lost(None)
        return [call for call in sock.calls if call[0] == "write"]

    writes = asyncio.run(scenario())
    assert len(writes) == 1
    assert writes[0][1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0][1].endswith(b'\r\n\r\n{"ok":true}')
