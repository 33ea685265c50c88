"""Graceful drain of a real ``gan-serve`` process on SIGTERM.

/readyz turns 503 at once; requests already accepted finish; new ones are still served during
the grace period (``GAN_DRAIN_SECONDS``); the process then exits with status 0.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.integration.processes import ServiceProcess, http_status

pytestmark = pytest.mark.slow

DRAIN_SECONDS = 4.0


class SlowPost:
    """A POST /generate whose body is sent in two halves, some time apart."""

    def __init__(self, port: int, seed: int) -> None:
        body = json.dumps({"seeds": [seed], "model": "uncond"}).encode()
        self.half = len(body) // 2
        self.body = body
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = (
            "POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body[: self.half])

    def finish(self) -> tuple[int, bytes]:
        """Send the rest of the body; return the status and the response body."""
        self.sock.sendall(self.body[self.half :])
        chunks = []
        while chunk := self.sock.recv(65536):
            chunks.append(chunk)
        self.sock.close()
        raw = b"".join(chunks)
        head, _, payload = raw.partition(b"\r\n\r\n")
        return int(head.split()[1]), payload


def test_sigterm_drains_then_exits_zero(model_dir: Path, tmp_path: Path) -> None:
    env = {"GAN_DRAIN_SECONDS": str(DRAIN_SECONDS), "GAN_WARMUP": "false"}
    replica = ServiceProcess(model_dir, env=env).start(log_path=tmp_path / "replica.log")
    try:
        assert replica.process is not None
        accepted = SlowPost(replica.port, seed=1)  # in flight when SIGTERM arrives
        time.sleep(0.2)
        replica.process.send_signal(15)
        signalled = time.monotonic()
        time.sleep(0.3)
        assert http_status(replica.url + "/readyz") == 503
        assert http_status(replica.url + "/healthz") == 200
        status, payload = accepted.finish()
        assert status == 200 and payload.startswith(b"\x89PNG")
        served = []
        while time.monotonic() - signalled < DRAIN_SECONDS - 1.5:
            served.append(http_status(replica.url + "/generate?seed=7&model=uncond"))
            time.sleep(0.1)
        assert len(served) >= 5 and set(served) == {200}, served
        late = SlowPost(replica.port, seed=2)  # accepted before the period ends ...
        time.sleep(DRAIN_SECONDS - (time.monotonic() - signalled) + 0.6)
        status, payload = late.finish()  # ... and finished after it
        assert status == 200 and payload.startswith(b"\x89PNG")
        assert replica.process.wait(timeout=20) == 0
        assert time.monotonic() - signalled < DRAIN_SECONDS + 15
    finally:
        replica.kill()
    log = [
        json.loads(line)
        for line in (tmp_path / "replica.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any("SIGTERM" in line["message"] for line in log)
    statuses = [line["status"] for line in log if line["message"] == "request"]
    assert statuses and all(status in (200, 503) for status in statuses)
