"""Coalesced writes: a response's headers and body reach the socket in one write, nothing is
lost, reordered or kept past the loop's turn, and a real uvicorn server answers through it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from service.server.transport import FLUSH_BYTES, CoalescingTransport, coalescing_protocol


class RecordingTransport:
    """A transport that records what reaches it: one entry per system call it would make."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.calls.append(b"".join(chunks))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def write_eof(self) -> None:
        self.events.append("eof")

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


@pytest.fixture
def wrapped() -> Iterator[
    tuple[CoalescingTransport, RecordingTransport, asyncio.AbstractEventLoop]
]:
    loop = asyncio.new_event_loop()
    inner = RecordingTransport()
    yield CoalescingTransport(inner, loop), inner, loop
    loop.close()


def run_turn(loop: asyncio.AbstractEventLoop) -> None:
    """Let the loop run the callbacks that are ready (the end of the current turn)."""
    loop.run_until_complete(asyncio.sleep(0))


def test_headers_and_body_go_out_in_one_write_at_the_end_of_the_turn(wrapped: Any) -> None:
    outer, inner, loop = wrapped
    outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
    outer.write(b"PNG")
    assert inner.calls == []  # held until the turn ends
    run_turn(loop)
    assert inner.calls == [b"HTTP/1.1 200 OK\r\n\r\nPNG"]
    run_turn(loop)
    assert inner.calls == [b"HTTP/1.1 200 OK\r\n\r\nPNG"]  # nothing sent twice


def test_each_turn_is_one_write_in_order(wrapped: Any) -> None:
    outer, inner, loop = wrapped
    for chunk in (b"a", b"b", b"c"):
        outer.write(chunk)
    run_turn(loop)
    outer.writelines([b"d", b"e"])
    run_turn(loop)
    outer.write(b"f")
    run_turn(loop)
    assert inner.calls == [b"abc", b"de", b"f"]


def test_a_large_write_goes_out_at_once(wrapped: Any) -> None:
    outer, inner, loop = wrapped
    outer.write(b"head")
    outer.write(b"x" * FLUSH_BYTES)
    assert inner.calls == [b"head" + b"x" * FLUSH_BYTES]  # no waiting for the turn
    outer.write(b"tail")
    run_turn(loop)
    assert inner.calls[1:] == [b"tail"]


@pytest.mark.parametrize(("method", "event"), [("close", "close"), ("write_eof", "eof")])
def test_closing_sends_what_is_held_first(wrapped: Any, method: str, event: str) -> None:
    outer, inner, loop = wrapped
    outer.write(b"last")
    getattr(outer, method)()
    assert inner.calls == [b"last"]
    assert inner.events == [event]
    run_turn(loop)
    assert inner.calls == [b"last"]  # not sent again at the end of the turn


def test_abort_drops_what_is_held(wrapped: Any) -> None:
    outer, inner, loop = wrapped
    outer.write(b"dropped")
    outer.abort()
    run_turn(loop)
    assert inner.calls == []
    assert inner.events == ["abort"]


def test_a_connection_closed_meanwhile_gets_nothing_more(wrapped: Any) -> None:
    outer, inner, loop = wrapped
    outer.write(b"late")
    inner.closing = True  # the client went away before the turn ended
    run_turn(loop)
    assert inner.calls == []


def test_the_rest_is_the_wrapped_transports(wrapped: Any) -> None:
    outer, _, _ = wrapped
    assert outer.get_extra_info("peername") == "info:peername"
    outer.write(b"12345")
    assert outer.get_write_buffer_size() == 7 + 5  # held bytes count as buffered


# --- a real server ------------------------------------------------------------------------------

BODY = b"x" * 300


async def small_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/octet-stream")]
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(BODY)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


class CountingTransport:
    """Counts the writes that reach the socket's transport (one system call each)."""

    writes: ClassVar[list[bytes]] = []

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        CountingTransport.writes.append(bytes(data))
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        CountingTransport.writes.append(b"".join(chunks))
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def counted(protocol: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """``protocol`` with its socket's transport wrapped in :class:`CountingTransport`."""

    class Counted(protocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(CountingTransport(transport))

    return Counted


@contextlib.asynccontextmanager
async def running_server(protocol: type[asyncio.Protocol] | None = None) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        small_app, http=protocol or coalescing_protocol(), log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The head and the body of one response (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
    if b"content-length" in fields:
        return head, await reader.readexactly(int(fields[b"content-length"]))
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return head, body
        body += chunk[:-2]


def test_a_real_server_answers_pipelined_and_streamed_requests() -> None:
    async def scenario() -> None:
        async with running_server() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"
            # Three requests in one packet, on one keep-alive connection: three answers in order.
            writer.write(request % b"a" + request % b"stream" + request % b"b")
            answers = [await read_response(reader) for _ in range(3)]
            writer.close()
            await writer.wait_closed()
        assert [head.split(b"\r\n")[0] for head, _ in answers] == [b"HTTP/1.1 200 OK"] * 3
        assert [body for _, body in answers] == [BODY, b"one,two,three", BODY]

    asyncio.run(scenario())


def test_a_real_server_answers_in_one_write_where_uvicorn_alone_makes_two() -> None:
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    async def writes_of_one_response(protocol: type[asyncio.Protocol]) -> list[bytes]:
        CountingTransport.writes = []
        async with running_server(counted(protocol)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            _, body = await read_response(reader)
            assert body == BODY
            writer.close()
            await writer.wait_closed()
        return CountingTransport.writes

    coalesced = asyncio.run(writes_of_one_response(coalescing_protocol()))
    plain = asyncio.run(writes_of_one_response(AutoHTTPProtocol))
    assert len(plain) == 2  # the head, then the body: why the wrapper exists
    assert len(coalesced) == 1 and coalesced[0].endswith(b"\r\n\r\n" + BODY)
