"""The worker supervisor's own steps, without starting a service: binding the port."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from service.server import workers

REAL_SOCKET = socket.socket


def two_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """``localhost`` resolves to an IPv4 and an IPv6 loopback address, as on most hosts."""

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
        ]

    monkeypatch.setattr(workers.socket, "getaddrinfo", getaddrinfo)


def failing_bind(
    monkeypatch: pytest.MonkeyPatch, families: set[int], code: int
) -> list[socket.socket]:
    """Sockets of ``families`` fail to bind with ``code``; returns every socket made."""
    made: list[socket.socket] = []

    class Socket(REAL_SOCKET):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

        def bind(self, address: Any) -> None:
            if self.family in families:
                raise OSError(code, "refused by the test")
            super().bind(address)

        def setsockopt(self, *args: Any) -> None:
            if self.family not in families:  # an IPv6 socket may not exist on this host
                super().setsockopt(*args)

    monkeypatch.setattr(workers.socket, "socket", Socket)
    return made


def test_an_address_the_host_cannot_assign_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    # A host with IPv6 turned off: "::1" fails with EADDRNOTAVAIL, as one process skips it.
    two_addresses(monkeypatch)
    failing_bind(monkeypatch, {socket.AF_INET6}, errno.EADDRNOTAVAIL)
    [listener] = workers.bind("localhost", 0)
    with listener:
        assert listener.family == socket.AF_INET and listener.getsockname()[1] > 0


def test_no_address_that_binds_is_an_error_and_leaves_no_socket_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two_addresses(monkeypatch)
    made = failing_bind(monkeypatch, {socket.AF_INET, socket.AF_INET6}, errno.EADDRNOTAVAIL)
    with pytest.raises(OSError) as error:
        workers.bind("localhost", 0)
    assert error.value.errno == errno.EADDRNOTAVAIL
    assert made and all(sock.fileno() == -1 for sock in made)


def test_another_bind_error_fails_the_start_and_leaves_no_socket_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two_addresses(monkeypatch)
    made = failing_bind(monkeypatch, {socket.AF_INET6}, errno.EADDRINUSE)
    with pytest.raises(OSError) as error:
        workers.bind("localhost", 0)
    assert error.value.errno == errno.EADDRINUSE
    assert made and all(sock.fileno() == -1 for sock in made)


# --- a start that fails part-way leaves nothing behind ---------------------------------------


def pipes_and_sockets() -> dict[str, str]:
    """This process's open file descriptors that are pipes or sockets, and what they are."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(("pipe:", "socket:")):
                found[fd] = target
    return found


class Leftovers:
    """What a supervisor's start holds: its listening sockets, metrics directory, workers, signal
    handlers and file descriptors, recorded to check that a failed start gives all of them up."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.listeners: list[socket.socket] = []
        self.metrics_dirs: list[Path] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.pipes_and_sockets = pipes_and_sockets()
        real_bind, real_mkdtemp = workers.bind, tempfile.mkdtemp

        def bind(host: str, port: int) -> list[socket.socket]:
            self.listeners = real_bind(host, port)
            return self.listeners

        def mkdtemp(*args: Any, **kwargs: Any) -> str:
            path = real_mkdtemp(*args, **kwargs)
            self.metrics_dirs.append(Path(path))
            return path

        monkeypatch.setattr(workers, "bind", bind)
        monkeypatch.setattr(workers.tempfile, "mkdtemp", mkdtemp)

    def check_released(self) -> None:
        assert self.listeners and all(sock.fileno() == -1 for sock in self.listeners)
        assert not any(path.exists() for path in self.metrics_dirs)
        assert all(worker.poll() is not None for worker in self.workers)
        assert {sig: signal.getsignal(sig) for sig in self.handlers} == self.handlers
        assert pipes_and_sockets() == self.pipes_and_sockets  # the watch pipe, the listeners


def test_a_worker_that_cannot_be_started_stops_the_others_and_releases_everything(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    held = Leftovers(monkeypatch)
    real_popen = subprocess.Popen

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        if held.workers:  # the second worker: the kernel is out of processes
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]  # a worker, loading
        held.workers.append(real_popen(sleeper, **kwargs))
        return held.workers[-1]

    monkeypatch.setattr(workers.subprocess, "Popen", popen)
    caplog.set_level(logging.ERROR, logger="service")
    try:
        assert workers.serve_workers("127.0.0.1", 0, 2, []) == 1
        held.check_released()
        assert held.workers and held.metrics_dirs
    finally:
        for worker in held.workers:  # whatever happened, the test leaves no process behind
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Resource temporarily unavailable" in error.getMessage() and error.exc_info is None


def test_a_metrics_directory_that_cannot_be_made_releases_the_port(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    held = Leftovers(monkeypatch)

    def mkdtemp(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    def popen(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no worker may start without its metrics directory")

    monkeypatch.setattr(workers.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(workers.subprocess, "Popen", popen)
    caplog.set_level(logging.ERROR, logger="service")
    assert workers.serve_workers("127.0.0.1", 0, 2, []) == 1
    held.check_released()
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "No space left on device" in error.getMessage() and error.exc_info is None
