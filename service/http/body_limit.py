"""The body limit: an ASGI middleware that bounds a request body's size and the time it takes.

Usage (the app factory does this)::

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=30.0)

413 for a body over ``max_bytes`` (by its Content-Length, or counted as it streams), 408 for a
body still incomplete ``timeout_s`` after the request began (a slow client). The answer is sent
at once and the app is told the client left, so it stops reading.
"""

from __future__ import annotations

import asyncio
import sys

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response

if sys.version_info >= (3, 11):

    async def _receive_within(receive: Receive, seconds: float) -> Message:
        # A timer on the current task: no Task per receive, unlike asyncio.wait_for (<= 3.11).
        async with asyncio.timeout(seconds):
            return await receive()

else:  # pragma: no cover - Python 3.10

    async def _receive_within(receive: Receive, seconds: float) -> Message:
        return await asyncio.wait_for(receive(), seconds)


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (by Content-Length or as it streams),
    408 for a body still incomplete ``timeout_s`` after the request began (a slow client)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body exceeds {self.max_bytes} bytes; send fewer or smaller images"
        counting = True
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await error_response(413, "payload_too_large", message)(scope, receive, send)
                    return
                # The HTTP server never reads past Content-Length: no need to count.
                counting = False
                break
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        received = 0
        refused = False
        started = False
        body_done = False

        async def refuse(status: int, error: str, text: str) -> Message:
            # Answer now (unless the app already began its answer) and tell the app the client
            # left, so it stops reading; the app's own answer is then dropped.
            nonlocal refused
            refused = True
            if not started:
                await error_response(status, error, text)(scope, receive, send)
            return {"type": "http.disconnect"}

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if refused:
                return {"type": "http.disconnect"}
            if body_done:  # the app now listens for a disconnect: no deadline for that
                return await receive()
            try:
                msg = await _receive_within(receive, max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                text = f"the request body did not arrive within {self.timeout_s:g} s"
                return await refuse(408, "request_timeout", text)
            if msg["type"] == "http.request":
                body_done = not msg.get("more_body", False)
            if msg["type"] == "http.request" and counting:
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    return await refuse(413, "payload_too_large", message)
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if not refused:
                started = True
                await send(msg)

        await self.app(scope, guarded_receive, guarded_send)
