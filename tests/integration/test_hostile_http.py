"""Hostile clients on the wire, against a real ``gan-serve``: a 100 MB body (declared or
chunked) and a slow client each get a 4xx within a bounded time, and the service keeps serving."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from tests.integration.conftest import BODY_TIMEOUT_S
from tests.integration.processes import ServiceProcess, http_status

pytestmark = pytest.mark.slow

MB = 1024 * 1024


def read_status(sock: socket.socket) -> int:
    """The status code of the response on ``sock`` (reads until the head is complete)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed before a status line: {data!r}")
        data += chunk
    return int(data.split()[1])


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send, ignoring that the server may close early (it answered already)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def assert_still_serving(service: ServiceProcess) -> None:
    assert http_status(service.url + "/readyz") == 200
    assert http_status(service.url + "/generate?seed=4&model=uncond") == 200


def test_declared_100_mb_body_is_refused_before_it_is_sent(service: ServiceProcess) -> None:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        head = (
            "POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            f"Content-Length: {100 * MB}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"\x89PNG" + b"\0" * 65536)
        assert read_status(sock) == 413
    assert time.monotonic() - start < 5.0
    assert_still_serving(service)


def test_chunked_100_mb_body_is_cut_off_at_the_limit(service: ServiceProcess) -> None:
    start = time.monotonic()
    chunk = b"\0" * MB
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", service.port), timeout=20) as sock:
        head = (
            "POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())

        def send_100_mb() -> None:
            # Until the service answers and closes (after about 8 MB, its limit).
            with contextlib.suppress(OSError):
                for _ in range(100):
                    sock.sendall(framed)

        sender = threading.Thread(target=send_100_mb, daemon=True)
        sender.start()
        status = read_status(sock)
        # The service closed the connection with the rest of the body unread, so the kernel may
        # have reset it already: then there is nothing left to shut down.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sender.join(timeout=10)
    assert status == 413
    assert time.monotonic() - start < 20.0
    assert_still_serving(service)


def test_slow_client_gets_408(service: ServiceProcess) -> None:
    body = b'{"seeds": [1, 2, 3], "model": "uncond", "response": "grid"}'
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        head = (
            "POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode())
        sock.settimeout(0.5)
        status = None
        for byte in body:  # one byte every half second: the body would take 30 s
            send_quietly(sock, bytes([byte]))
            try:
                status = read_status(sock)
                break
            except (TimeoutError, ConnectionError):
                continue
    assert status == 408
    elapsed = time.monotonic() - start
    assert BODY_TIMEOUT_S - 0.5 < elapsed < BODY_TIMEOUT_S + 5.0
    assert_still_serving(service)


def test_many_slow_clients_do_not_block_others(service: ServiceProcess) -> None:
    sockets = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
            sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            sockets.append(sock)
        start = time.monotonic()
        assert_still_serving(service)  # served while 50 bodies are pending
        assert time.monotonic() - start < 5.0
        statuses = []
        for sock in sockets:
            sock.settimeout(BODY_TIMEOUT_S + 10)
            statuses.append(read_status(sock))
        assert set(statuses) == {408}
    finally:
        for sock in sockets:
            sock.close()
    assert_still_serving(service)
