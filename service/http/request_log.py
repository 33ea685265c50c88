"""The request log: an ASGI middleware writing one JSON line per request, with a request id.

Usage (the app factory does this; :func:`service.logs.configure_logging` sets up logging)::

    app.add_middleware(RequestLog)                   # one "request" line per HTTP request

:class:`RequestLog` takes the client's ``X-Request-ID`` (nginx sets one) when it is 1-128
characters of ``[A-Za-z0-9._:-]``, else makes one, and echoes it in the response's
``X-Request-ID`` header. Its line holds the method, path, status, duration, request id, client
address and, where a route set them (``request.state.model``, ``request.state.images``), the model
version and the number of images. It never holds a header value (API keys travel in headers), a
query string or a body.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import AccessLine, access_logger, access_queue

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(scope: Scope) -> str:
    """The client's request id when it is well-formed, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _VALID_ID.match(text):
                return text
            break
    # 32 hex digits like uuid4().hex, without a system call: an id to correlate, not a secret.
    return f"{random.getrandbits(128):032x}"


class RequestLog:
    """ASGI middleware: a request id for every request and one JSON log line when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_of(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000.0, 3),
            }
            client = scope.get("client")
            if client:
                fields["client"] = client[0]
            for key in ("model", "images"):
                if key in state:
                    fields[key] = state[key]
            if access_logger.isEnabledFor(logging.INFO):
                line = AccessLine(time.time_ns(), fields)
                direct = access_queue()
                if direct is not None:
                    direct.put(line)
                else:
                    # Logger.info minus its stack walk for the caller's file and line, which
                    # the JSON line does not show: the same record and handlers otherwise.
                    access_logger.handle(line.record())
