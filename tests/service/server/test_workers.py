"""The worker supervisor's own steps, without starting a service: binding the port."""

from __future__ import annotations

import errno
import socket
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
