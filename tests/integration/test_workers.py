"""``GAN_WORKERS``: several server processes on one port are one service to their clients."""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.processes import ServiceProcess, wait_for

pytestmark = pytest.mark.slow


def _wait_for_lines(log: Path, text: str, count: int, timeout: float = 120.0) -> str:
    """The log once it holds ``count`` lines containing ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text()
        if content.count(text) >= count:
            return content
        time.sleep(0.2)
    raise TimeoutError(f"fewer than {count} lines with {text!r} in {log}")


def _workers(log: Path) -> list[int]:
    """The worker pids the supervisor logged, once both workers are ready."""
    content = _wait_for_lines(log, "ready: serving", 2)
    found = re.search(r"started 2 workers \(pids (\d+), (\d+)\)", content)
    assert found, content
    return [int(found.group(1)), int(found.group(2))]


def _generate(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return bytes(response.read())


def _generated(base: str) -> float:
    """``gan_http_requests_total`` of ``GET /generate`` answered 200, as /metrics reports it."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = {"method": "GET", "route": "/generate", "status": "200"}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gan_http_requests_total" and sample.labels == wanted:
                return float(sample.value)
    return 0.0


def test_workers_share_the_port_and_report_their_metrics_together(
    model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    replica = ServiceProcess(model_dir, env={"GAN_WORKERS": "2", "GAN_DRAIN_SECONDS": "1"})
    with replica.start(log_path=log):
        workers = _workers(log)
        query = "model=cond&class_label=0"
        urls = [f"{replica.url}/generate?seed={seed}&{query}" for seed in range(40)]
        with ThreadPoolExecutor(8) as pool:  # a new connection per request
            pngs = list(pool.map(_generate, urls))
        assert all(png.startswith(b"\x89PNG") for png in pngs)
        # Whichever worker answers /metrics counts the requests of both.
        assert [_generated(replica.url) for _ in range(4)] == [40.0] * 4

        assert replica.process is not None
        replica.process.send_signal(signal.SIGTERM)
        wait_for(replica.url + "/readyz", status=503, timeout=10)  # draining: out of rotation
        assert replica.process.wait(timeout=60) == 0
    for pid in workers:
        assert not _alive(pid)
    assert log.read_text().count("Finished server process") == 2


def test_a_worker_that_dies_stops_the_replica_with_a_failure_status(
    model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    replica = ServiceProcess(model_dir, env={"GAN_WORKERS": "2", "GAN_DRAIN_SECONDS": "0.5"})
    with replica.start(log_path=log):
        crashed, other = _workers(log)
        os.kill(crashed, signal.SIGKILL)  # as the kernel's OOM killer would
        assert replica.process is not None
        assert replica.process.wait(timeout=60) == 1  # for the orchestrator to restart
    assert not _alive(other)  # stopped (after its drain), not left behind
    assert f"worker {crashed} exited" in log.read_text()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (an exited one not yet reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_workers_whose_supervisor_was_killed_drain_and_exit(
    model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    replica = ServiceProcess(model_dir, env={"GAN_WORKERS": "2", "GAN_DRAIN_SECONDS": "0.5"})
    with replica.start(log_path=log):
        workers = _workers(log)
        replica.kill()  # SIGKILL: the supervisor cannot pass anything on
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
    assert log.read_text().count("SIGTERM: not ready") == 2  # each drained
