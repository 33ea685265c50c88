"""Structured logs: JSON lines, one per request, each with a request id echoed to the client.

Usage::

    configure_logging("info")                        # every log record becomes one JSON line
    app.add_middleware(RequestLog)                   # one "request" line per HTTP request

:class:`RequestLog` takes the client's ``X-Request-ID`` (nginx sets one) when it is 1-128
characters of ``[A-Za-z0-9._:-]``, else makes one, and echoes it in the response's
``X-Request-ID`` header. Its line holds the method, path, status, duration, request id, client
address and, where a route set them (``request.state.model``, ``request.state.images``), the model
version and the number of images. It never holds a header value (API keys travel in headers), a
query string or a body.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import random
import re
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = "service.access"
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Attributes every LogRecord has; anything else was passed as `extra` and belongs in the line.
# uvicorn adds "color_message" (the message with terminal colour codes) to its records.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}

access_logger = logging.getLogger(ACCESS_LOGGER)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the record's extras."""

    _second = -1
    _second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        # strftime once per second, not per line (a line per request under load).
        second = int(record.created)
        if second != self._second:
            self._second_text = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
            self._second = second
        line: dict[str, Any] = {
            "time": f"{self._second_text}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


JsonFormatter.converter = time.gmtime


class _RecordQueueHandler(logging.handlers.QueueHandler):
    """Hands records over as they are: the JSON formatting happens in the listener's thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_listener: logging.handlers.QueueListener | None = None


def _stop_listener() -> None:
    """Write the queued lines and stop the listener's thread (at exit, or on reconfiguring)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def configure_logging(level: str = "info") -> None:
    """Send every log record (the service's, uvicorn's, TensorFlow's) to stderr as JSON lines.

    Records are formatted and written by a thread of their own (a ``QueueListener``), so the
    event loop neither formats JSON nor waits for a slow stderr reader; the lines still queued
    are written at exit.
    """
    global _listener
    _stop_listener()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    atexit.register(_stop_listener)
    root = logging.getLogger()
    root.handlers[:] = [_RecordQueueHandler(records)]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn installs handlers of its own; route its records through the root's.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


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
                # Logger.info minus its stack walk for the caller's file and line, which the
                # JSON line does not show: the same record and handlers otherwise.
                record = access_logger.makeRecord(
                    ACCESS_LOGGER, logging.INFO, "", 0, "request", (), None, extra=fields
                )
                access_logger.handle(record)
