"""Structured logs: one JSON line per request with a request id that the response echoes."""

from __future__ import annotations

import io
import json
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from service.logs import ACCESS_LOGGER, JsonFormatter


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == ACCESS_LOGGER]


@pytest.fixture
def stderr_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], io.StringIO]]:
    """For a test that calls ``configure_logging``: a function that makes stderr a string (call
    it in the test: pytest sets its own stderr again between a fixture and its test), and
    afterwards the writer stopped and the root logger's handlers (pytest's capture) and level
    given back."""
    from service import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)

    def capture() -> io.StringIO:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    yield capture
    logs._stop_writer()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_one_json_line_per_request_with_model_and_images(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = client.post(
        "/generate", json={"seeds": "1-3", "model": "uncond", "response": "grid"}
    )
    assert response.status_code == 200
    lines = _request_lines(caplog)
    assert len(lines) == 1
    line = lines[0]
    assert line["message"] == "request" and line["level"] == "info"
    assert line["method"] == "POST" and line["path"] == "/generate" and line["status"] == 200
    assert line["model"] == "uncond/1" and line["images"] == 3
    assert line["duration_ms"] > 0
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert len(line["request_id"]) == 32


def test_a_well_formed_incoming_request_id_is_kept(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = client.get("/healthz", headers={"X-Request-ID": "nginx-4f2a.17:x"})
    assert response.headers["X-Request-ID"] == "nginx-4f2a.17:x"
    assert _request_lines(caplog)[-1]["request_id"] == "nginx-4f2a.17:x"


@pytest.mark.parametrize("bad", ["a" * 129, "has space", "semi;colon", "new\\nline", ""])
def test_a_malformed_request_id_is_replaced(client: TestClient, bad: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    echoed = response.headers["X-Request-ID"]
    assert echoed != bad and len(echoed) == 32


def test_errors_are_logged_with_their_status(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = client.post("/generate", json={"seeds": [1], "model": "nope"})
    assert response.status_code == 404
    line = _request_lines(caplog)[-1]
    assert line["status"] == 404 and line["request_id"] == response.headers["X-Request-ID"]
    # The query string and the body never reach the log.
    client.get("/generate?seed=5&model=secret-model-name")
    assert "secret-model-name" not in json.dumps(_request_lines(caplog))


def test_formatter_writes_one_line_of_json_with_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "WARNING", "msg": "two\nlines %s", "args": ("ok",), "k": 1}
    )
    text = JsonFormatter().format(record)
    assert "\n" not in text
    assert json.loads(text) | {"time": None} == {
        "time": None,
        "level": "warning",
        "logger": "x",
        "message": "two\nlines ok",
        "k": 1,
    }


def test_lines_are_formatted_and_written_off_the_calling_thread(
    monkeypatch: pytest.MonkeyPatch, stderr_lines: Callable[[], io.StringIO]
) -> None:
    from service import logs

    threads: list[str] = []
    format_line = logs.JsonFormatter.format

    def spy(self: logs.JsonFormatter, record: logging.LogRecord) -> str:
        threads.append(threading.current_thread().name)
        return format_line(self, record)

    monkeypatch.setattr(logs.JsonFormatter, "format", spy)
    stream = stderr_lines()
    logs.configure_logging("info")
    logging.getLogger("service.test").info("queued %d", 7, extra={"model": "m/1"})
    logs._stop_writer()  # what the process does at exit: write what is queued
    line = json.loads(stream.getvalue())
    assert line["message"] == "queued 7" and line["model"] == "m/1"
    assert threads and threading.current_thread().name not in threads


def _write_through_line_writer(stream: io.StringIO, records: list[logging.LogRecord]) -> None:
    """Put ``records`` on a :class:`LineWriter` writing JSON lines to ``stream``, then stop it.
    Its interval is longer than the test: everything put before stop() is one batch."""
    from service.logs import LineWriter

    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    queued: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = LineWriter(queued, handler, interval_s=60.0)
    writer.start()
    for record in records:
        queued.put(record)
    writer.stop()


def test_lines_logged_together_are_written_together_in_whole_lines() -> None:
    """The writer gathers the lines of its interval and writes them a few KiB at a time (a
    write per line woke a thread and took the interpreter lock per request), each write whole
    lines of at most PIPE_BUF bytes, so that workers sharing one stdout never mix their lines."""
    from service.logs import ATOMIC_WRITE_BYTES

    class Stream(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []
            self.unflushed = 0

        def write(self, text: str) -> int:
            assert self.unflushed == 0, "each write is flushed before the next"
            self.writes.append(text)
            self.unflushed += 1
            return super().write(text)

        def flush(self) -> None:
            self.unflushed = 0

    stream = Stream()
    # 300 lines of about 100 bytes, some with non-ASCII text (more bytes than characters).
    records = [logging.makeLogRecord({"msg": "line %d é€", "args": (n,)}) for n in range(300)]
    _write_through_line_writer(stream, records)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == [f"line {n} é€" for n in range(300)]
    sizes = [len(text.encode()) for text in stream.writes]
    assert all(text.endswith("\n") for text in stream.writes)
    assert max(sizes) <= ATOMIC_WRITE_BYTES
    # Full chunks: no more writes than the bytes need, plus one for the last, partial chunk.
    line_bytes = max(len(line.encode()) + 1 for line in stream.getvalue().splitlines())
    assert len(sizes) <= sum(sizes) // (ATOMIC_WRITE_BYTES - line_bytes) + 1
    assert stream.unflushed == 0


def test_a_line_longer_than_an_atomic_write_is_written_whole_on_its_own() -> None:
    from service.logs import ATOMIC_WRITE_BYTES, _whole_lines

    long = "x" * (ATOMIC_WRITE_BYTES + 10) + "\n"
    chunks = list(_whole_lines(["a\n", long, "b\n"], ATOMIC_WRITE_BYTES))
    assert chunks == ["a\n", long, "b\n"]


def test_a_record_that_cannot_be_formatted_costs_only_its_own_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = io.StringIO()
    records = [
        logging.makeLogRecord({"msg": "before"}),
        logging.makeLogRecord({"msg": "%d", "args": ("not a number",)}),
        logging.makeLogRecord({"msg": "after"}),
    ]
    _write_through_line_writer(stream, records)
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["before", "after"]
    assert "Logging error" in capsys.readouterr().err  # logging's own notice, as for any handler


# --- a request's line straight to the writer ---------------------------------------------------


def test_an_access_line_is_the_line_its_record_gives() -> None:
    from service.logs import AccessLine

    fields = {
        "request_id": "r-1",
        "method": "POST",
        "path": '/généré "quoted"',
        "status": 200,
        "duration_ms": 1.25,
        "client": "10.0.0.1",
        "model": "mnist/1",
        "images": 3,
    }
    line = AccessLine(1_795_000_000_123_456_789, fields)
    formatter = JsonFormatter()
    assert line.format(formatter) == JsonFormatter().format(line.record())
    parsed = json.loads(line.format(formatter))
    assert parsed["time"].endswith(".123Z") and parsed["logger"] == ACCESS_LOGGER
    assert parsed["message"] == "request" and parsed["level"] == "info"
    assert {key: parsed[key] for key in fields} == fields


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_request_line_skips_the_record_only_while_the_writer_alone_would_see_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, stderr_lines: Callable[[], io.StringIO]
) -> None:
    from service import logs

    handled: list[logging.LogRecord] = []
    handle = logs.access_logger.handle
    monkeypatch.setattr(logs.access_logger, "handle", lambda r: (handled.append(r), handle(r)))
    extra = _Collect()
    stream = stderr_lines()
    logs.configure_logging("info")
    assert logs.access_queue() is not None
    client.get("/healthz", headers={"X-Request-ID": "direct"})
    assert handled == []  # no record made: the line went to the writer's queue
    # Someone adds a handler: the next line is a record again, seen by both.
    logging.getLogger("service").addHandler(extra)
    try:
        assert logs.access_queue() is None
        client.get("/healthz", headers={"X-Request-ID": "through-logging"})
    finally:
        logging.getLogger("service").removeHandler(extra)
    logs._stop_writer()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ids = [line["request_id"] for line in lines if line.get("logger") == ACCESS_LOGGER]
    assert ids == ["direct", "through-logging"]
    assert [r.request_id for r in handled] == ["through-logging"]  # type: ignore[attr-defined]
    assert [r.request_id for r in extra.records] == ["through-logging"]  # type: ignore[attr-defined]


def test_no_request_line_below_its_level(
    client: TestClient, stderr_lines: Callable[[], io.StringIO]
) -> None:
    from service import logs

    stream = stderr_lines()
    logs.configure_logging("warning")
    client.get("/healthz")
    logs._stop_writer()
    assert ACCESS_LOGGER not in stream.getvalue()


def test_chunk_sizes_count_what_the_stream_writes_of_any_character() -> None:
    from service.logs import _whole_lines

    # A lone surrogate (a file name's undecodable byte) and a character Latin-1 lacks.
    lines = ["caf\udce9\n", "€\n"] * 3
    assert "".join(_whole_lines(lines, 4096)) == "".join(lines)  # no error, nothing lost
    chunks = list(_whole_lines(lines, 10, "latin-1"))  # "\u20ac" takes 6 bytes there
    assert "".join(chunks) == "".join(lines)
    assert all(len(c.encode("latin-1", "backslashreplace")) <= 10 for c in chunks)
