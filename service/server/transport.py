"""Writes coalesced per turn of the event loop: a response's headers go out with its body.

Usage (``gan-serve`` does this)::

    config = uvicorn.Config(app, http=coalescing_protocol())

uvicorn writes a response's status line and headers as soon as the app starts the response,
and the body in a second write: two system calls and two TCP segments per response, and a
client woken twice. :class:`CoalescingTransport` holds what is written during one turn of the
event loop and sends it in one write when the turn ends (or at once past
:data:`FLUSH_BYTES`, so that a large or streamed response still meets the transport's flow
control). A response is then one write, and a turn that answers a whole batch does its system
calls after the answers are built (measured: 6% more images/s at 32 clients on 2 cores).
Nothing waits beyond the turn that wrote it; closing the connection sends what is held first;
aborting it drops it, as aborting drops the transport's own buffer.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Held bytes past which a write goes out at once (a large grid, a stream that does not yield).
FLUSH_BYTES = 64 * 1024


class CoalescingTransport:
    """A transport wrapper that sends the writes of one loop turn as one (see the module).

    Everything but writing and closing is the wrapped transport's own.
    """

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._held_bytes += len(data)
        if self._held_bytes >= FLUSH_BYTES:
            self.flush()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Send what is held, in one write (the end of the loop's turn calls this)."""
        held, self._held, self._held_bytes = self._held, [], 0
        if not held or self._transport.is_closing():
            return
        if len(held) == 1:
            self._transport.write(held[0])
        else:
            self._transport.writelines(held)  # one system call (writev) for all of them

    def get_write_buffer_size(self) -> int:
        # Part of the transport interface this wrapper stands in for (asyncio's flow control
        # and any protocol may ask it). Without it, __getattr__ would answer the wrapped
        # transport's count, leaving out up to FLUSH_BYTES held here.
        return int(self._transport.get_write_buffer_size()) + self._held_bytes

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held, self._held_bytes = [], 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalescing_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (httptools, else h11) with its transport wrapped in
    :class:`CoalescingTransport`: pass it as ``uvicorn.Config(http=...)``."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class CoalescingHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            loop = asyncio.get_running_loop()
            super().connection_made(CoalescingTransport(transport, loop))

    return CoalescingHTTPProtocol
