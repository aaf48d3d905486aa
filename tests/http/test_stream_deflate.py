"""The stream's permessage-deflate: one compression per message, standard on the wire."""

from __future__ import annotations

import orjson
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from gateway.http import stream_deflate
from gateway.http.stream_deflate import SharedCompressions, SharedDeflate, SharedDeflateFactory


def _client_decoder() -> PerMessageDeflate:
    """The client's half of what SharedDeflateFactory agrees to (server_no_context_takeover)."""
    return PerMessageDeflate(True, False, 15, 15)


def _negotiated() -> SharedDeflate:
    _, ext = SharedDeflateFactory().process_request_params([], [])
    assert isinstance(ext, SharedDeflate)
    return ext


def test_the_server_always_answers_without_context_takeover() -> None:
    """Whatever the client offers, the server side compresses each message on its own."""
    response, ext = SharedDeflateFactory().process_request_params([], [])
    assert ("server_no_context_takeover", None) in response
    assert ext.local_no_context_takeover


def test_one_text_to_many_connections_is_compressed_once(monkeypatch: object) -> None:
    """The same message on three connections: one compression, three identical frames
    that a standard client decoder reads back, message after message."""
    shared = SharedCompressions()
    monkeypatch.setattr(stream_deflate, "SHARED", shared)  # type: ignore[attr-defined]
    cells = [{"cell_id": f"cell-{r}-7", "row": r, "multiplier": "1.50"} for r in range(40)]
    texts = [orjson.dumps({"type": "grid_delta", "seq": i, "cells": cells}) for i in range(3)]
    connections = [_negotiated() for _ in range(3)]
    decoders = [_client_decoder() for _ in connections]
    for text in texts:
        frames = [ext.encode(Frame(Opcode.TEXT, text)) for ext in connections]
        assert len({f.data for f in frames}) == 1 and all(f.rsv1 for f in frames)
        assert len(frames[0].data) < len(text) / 4
        assert [dec.decode(f).data for dec, f in zip(decoders, frames, strict=True)] == [text] * 3
    assert shared.compressed == len(texts)


def test_control_frames_and_fragments_go_through_untouched() -> None:
    """A ping is not compressed; a fragment is compressed the library's own way."""
    ext = _negotiated()
    ping = Frame(Opcode.PING, b"x")
    assert ext.encode(ping) is ping
    first = ext.encode(Frame(Opcode.TEXT, b"a" * 100, fin=False))
    assert first.rsv1 and not first.fin


def test_only_the_last_few_messages_are_kept() -> None:
    """The cache holds ``size`` payloads; an older message is compressed again."""
    shared = SharedCompressions(size=2)
    for text in (b"a" * 50, b"b" * 50, b"c" * 50, b"a" * 50):
        shared.get(text, 15)
    assert shared.compressed == 4
    shared.get(b"a" * 50, 15)
    assert shared.compressed == 4
