"""Structured logs: every log record becomes one JSON line on stderr.

Usage::

    configure_logging("info")                        # every log record becomes one JSON line

Records go through a queue to one writer thread (:class:`LineWriter`), which writes whole lines
in chunks of at most ``ATOMIC_WRITE_BYTES`` (several worker processes may share one stdout). The
request log middleware (:mod:`service.http.request_log`) queues one :class:`AccessLine` per
request straight to that writer when nothing else would see the record.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

ACCESS_LOGGER = "service.access"
# POSIX makes a write of at most PIPE_BUF bytes to a pipe atomic (Linux: 4096): with several
# worker processes on one stdout (GAN_WORKERS), their lines then never mix within a line.
ATOMIC_WRITE_BYTES = 4096
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
        extras = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        }
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(
            record.created,
            int(record.msecs),
            record.levelname,
            record.name,
            record.getMessage(),
            extras,
            exception,
        )

    def line(
        self,
        created: float,
        msecs: int,
        level: str,
        logger: str,
        message: str,
        extras: Mapping[str, Any],
        exception: str | None = None,
    ) -> str:
        """The JSON line of a record made of these parts (``created``: seconds since the epoch,
        ``msecs``: its milliseconds)."""
        # strftime once per second, not per line (a line per request under load).
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        line: dict[str, Any] = {
            "time": f"{self._second_text}.{msecs:03d}Z",
            "level": level.lower(),
            "logger": logger,
            "message": message,
            **extras,
        }
        if exception:
            line["exception"] = exception
        return json.dumps(line, default=str, ensure_ascii=False)


JsonFormatter.converter = time.gmtime


class AccessLine(NamedTuple):
    """A request's log line as :class:`RequestLog` queues it for the :class:`LineWriter` when
    nothing but the writer would see its record (see :func:`access_queue`): the record's time
    and extra fields, which the writer turns into exactly the line the record would give."""

    time_ns: int
    fields: dict[str, Any]

    @property
    def millis(self) -> int:
        """The milliseconds of the second the line was logged in (a record's ``msecs``)."""
        return self.time_ns % 1_000_000_000 // 1_000_000

    def record(self) -> logging.LogRecord:
        """The record :class:`RequestLog` would otherwise have logged."""
        record = access_logger.makeRecord(
            ACCESS_LOGGER, logging.INFO, "", 0, "request", (), None, extra=self.fields
        )
        record.created = self.time_ns / 1e9
        record.msecs = float(self.millis)
        return record

    def format(self, formatter: JsonFormatter) -> str:
        """The record's JSON line, as ``formatter.format(self.record())`` writes it."""
        return formatter.line(
            self.time_ns / 1e9, self.millis, "INFO", ACCESS_LOGGER, "request", self.fields
        )


class _RecordQueueHandler(logging.handlers.QueueHandler):
    """Hands records over as they are: the JSON formatting happens in the writer's thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class LineWriter:
    """A thread that formats queued log records and writes them to a stream, in batches.

    Usage (``configure_logging`` does this)::

        records = queue.SimpleQueue()
        writer = LineWriter(records, handler)        # handler: its formatter and stream
        writer.start()                               # records (or AccessLines) put get written
        writer.stop()                                # writes what is queued, then returns

    Why batches: under load the service logs a line per request, thousands a second. A thread
    woken for every line (as ``logging.handlers.QueueListener`` is), with a write and a flush
    per line, takes the interpreter lock from the event loop and the model's thread thousands
    of times a second; on 2 cores that cost about a tenth of the images/s. This thread wakes
    for the first record, lets the next ``interval_s`` of records gather (no wake-up for them),
    then formats them all and writes them with one write and one flush. A line is therefore
    written at most ``interval_s`` after it was logged; an idle service causes no wake-ups.
    """

    _STOP = object()

    def __init__(
        self,
        records: queue.SimpleQueue[Any],
        handler: logging.StreamHandler[Any],
        interval_s: float = 0.05,
    ) -> None:
        self._records = records
        self._handler = handler
        self._interval_s = interval_s
        self._stopping = threading.Event()  # cuts the gathering short: stop() writes at once
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)

    @property
    def records(self) -> queue.SimpleQueue[Any]:
        """The queue this writer reads."""
        return self._records

    def start(self) -> None:
        """Start writing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Write the records still queued and end the thread (idempotent)."""
        if self._thread.is_alive():
            self._stopping.set()
            self._records.put(self._STOP)
            self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._records.get()]  # blocks while nothing is logged
            if batch[0] is not self._STOP:
                self._stopping.wait(self._interval_s)
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._records.get_nowait())
            stopping = any(record is self._STOP for record in batch)
            self._write([item for item in batch if item is not self._STOP])

    def _write(self, items: list[logging.LogRecord | AccessLine]) -> None:
        lines = []
        formatter = self._handler.formatter
        for item in items:
            try:
                if isinstance(item, AccessLine) and isinstance(formatter, JsonFormatter):
                    line = item.format(formatter)  # the record's line, without the record
                else:
                    line = self._handler.format(_record_of(item))
                lines.append(line + self._handler.terminator)
            except Exception:
                self._handler.handleError(_record_of(item))  # as logging does: a notice
        if not lines:
            return
        try:
            stream = self._handler.stream
            encoding = getattr(stream, "encoding", None) or "utf-8"
            for chunk in _whole_lines(lines, ATOMIC_WRITE_BYTES, encoding):
                stream.write(chunk)
                stream.flush()  # one system call per chunk: the stream's buffer holds 8 KiB
        except Exception:
            self._handler.handleError(_record_of(items[-1]))


def _whole_lines(lines: list[str], limit: int, encoding: str = "utf-8") -> Iterator[str]:
    """``lines`` joined into chunks of at most ``limit`` bytes in ``encoding``, each of whole
    lines (a longer line is a chunk of its own)."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        # What the stream writes of a character it cannot encode: stderr's backslashreplace.
        length = len(line) if line.isascii() else len(line.encode(encoding, "backslashreplace"))
        if chunk and size + length > limit:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield "".join(chunk)


def _record_of(item: logging.LogRecord | AccessLine) -> logging.LogRecord:
    return item.record() if isinstance(item, AccessLine) else item


_writer: LineWriter | None = None
_queue_handler: logging.Handler | None = None  # the root's one handler that configure_logging set


def access_queue() -> queue.SimpleQueue[Any] | None:
    """The :class:`LineWriter`'s queue when a request's record would reach its handler and no
    other (``configure_logging``'s set-up, untouched): :class:`RequestLog` then queues an
    :class:`AccessLine` and skips the :class:`logging.LogRecord` and its handling, about 6% of
    the images/s at 32 clients on 2 cores. None when anything else would see the record (a
    handler or filter added since, pytest's capture): then the record goes through logging.
    """
    if _writer is None or access_logger.filters:
        return None
    handlers: list[logging.Handler] = []
    logger: logging.Logger | None = access_logger
    while logger is not None:  # the handlers logging would call, as Logger.callHandlers walks
        handlers.extend(logger.handlers)
        if not logger.propagate:
            break
        logger = logger.parent
    if handlers != [_queue_handler] or handlers[0].filters or handlers[0].level > logging.INFO:
        return None
    return _writer.records


def _stop_writer() -> None:
    """Write the queued lines and stop the writer's thread (at exit, or on reconfiguring)."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


def configure_logging(level: str = "info") -> None:
    """Send every log record (the service's, uvicorn's, TensorFlow's) to stderr as JSON lines.

    Records are formatted and written by a thread of their own (:class:`LineWriter`), so the
    event loop neither formats JSON nor waits for a slow stderr reader; a line reaches stderr
    within 50 ms, and the lines still queued are written at exit.
    """
    global _writer, _queue_handler
    _stop_writer()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    _writer = LineWriter(records, handler)
    _writer.start()
    atexit.register(_stop_writer)
    root = logging.getLogger()
    _queue_handler = _RecordQueueHandler(records)
    root.handlers[:] = [_queue_handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn installs handlers of its own; route its records through the root's.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
