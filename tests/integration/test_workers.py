"""``GAN_WORKERS``: several server processes on one port are one service to their clients."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import time
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.processes import ServiceProcess, wait_for

pytestmark = pytest.mark.slow

GENERATED = {"method": "GET", "route": "/generate", "status": "200"}


def _wait_for_lines(log: Path, text: str, count: int, timeout: float = 120.0) -> str:
    """The log once it holds ``count`` lines containing ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text()
        if content.count(text) >= count:
            return content
        time.sleep(0.2)
    raise TimeoutError(f"fewer than {count} lines with {text!r} in {log}")


def _started(log: Path) -> tuple[list[int], Path]:
    """The worker pids and the metrics directory the supervisor logged."""
    pattern = r"started 2 workers \(pids (\d+), (\d+)\).*metrics in (\S+?)\""
    found = re.search(pattern, log.read_text())
    assert found, log.read_text()
    return [int(found.group(1)), int(found.group(2))], Path(found.group(3))


@contextlib.contextmanager
def _two_workers(
    model_dir: Path, log: Path, drain_seconds: float
) -> Iterator[tuple[ServiceProcess, list[int]]]:
    """``gan-serve`` with two workers, both ready; yields it and the workers' pids."""
    env = {"GAN_WORKERS": "2", "GAN_DRAIN_SECONDS": str(drain_seconds)}
    with ServiceProcess(model_dir, env=env).start(log_path=log) as replica:
        _wait_for_lines(log, "ready: serving", 2)
        yield replica, _started(log)[0]


def _generate(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return bytes(response.read())


def _served_by(metrics_dir: Path, pid: int) -> float:
    """The ``GET /generate`` requests worker ``pid`` counted, from its own metrics file."""
    counters = metrics_dir / f"counter_{pid}.db"
    if not counters.exists():  # it has counted nothing yet
        return 0.0
    return _generated_in(MultiProcessCollector.merge([str(counters)]))


def _generated(base: str) -> float:
    """``gan_http_requests_total`` of ``GET /generate`` answered 200, as /metrics reports it."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        return _generated_in(text_string_to_metric_families(response.read().decode()))


def _generated_in(metrics: Iterable[Metric]) -> float:
    """The ``GET /generate`` requests answered 200 that ``metrics`` count."""
    for metric in metrics:
        for sample in metric.samples:
            if sample.name == "gan_http_requests_total" and sample.labels == GENERATED:
                return float(sample.value)
    return 0.0


def test_workers_share_the_port_and_report_their_metrics_together(
    model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with _two_workers(model_dir, log, drain_seconds=3) as (replica, workers):
        _, metrics_dir = _started(log)
        sent = 0
        # The kernel hands each connection to a worker that is accepting: send until both
        # have answered some (bounded), so that the sum below really covers two processes.
        while sent < 400 and not all(_served_by(metrics_dir, pid) for pid in workers):
            query = "model=cond&class_label=0"
            urls = [f"{replica.url}/generate?seed={sent + n}&{query}" for n in range(40)]
            with ThreadPoolExecutor(8) as pool:  # a new connection per request
                pngs = list(pool.map(_generate, urls))
            assert all(png.startswith(b"\x89PNG") for png in pngs)
            sent += len(urls)
        counts = [_served_by(metrics_dir, pid) for pid in workers]
        assert all(counts) and sum(counts) == sent
        # Whichever worker answers /metrics counts the requests of both.
        assert [_generated(replica.url) for _ in range(4)] == [float(sent)] * 4

        assert replica.process is not None
        replica.process.send_signal(signal.SIGTERM)
        wait_for(replica.url + "/readyz", status=503, timeout=10)  # draining: out of rotation
        assert replica.process.wait(timeout=60) == 0
    for pid in workers:
        assert not _alive(pid)
    assert log.read_text().count("Finished server process") == 2
    assert not metrics_dir.exists()
    with pytest.raises(ConnectionRefusedError):  # nothing holds the port any more
        socket.create_connection(("127.0.0.1", replica.port), timeout=5)


def test_sigint_stops_the_workers_without_a_drain(model_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with _two_workers(model_dir, log, drain_seconds=60) as (replica, workers):
        assert replica.process is not None
        replica.process.send_signal(signal.SIGINT)
        assert replica.process.wait(timeout=30) == 0  # not the 60-s drain
    assert not any(_alive(pid) for pid in workers)
    assert "SIGTERM: not ready" not in log.read_text()


def test_a_worker_that_dies_stops_the_replica_with_a_failure_status(
    model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with _two_workers(model_dir, log, drain_seconds=0.5) as (replica, (crashed, other)):
        os.kill(crashed, signal.SIGKILL)  # as the kernel's OOM killer would
        assert replica.process is not None
        assert replica.process.wait(timeout=60) == 128 + signal.SIGKILL  # as a shell says it
    assert not _alive(other)  # stopped (after its drain), not left behind
    assert f"worker {crashed} exited" in log.read_text()


def test_workers_whose_supervisor_was_killed_drain_and_exit(
    model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with _two_workers(model_dir, log, drain_seconds=0.5) as (replica, workers):
        replica.kill()  # SIGKILL: the supervisor cannot pass anything on
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
    assert log.read_text().count("SIGTERM: not ready") == 2  # each drained


def test_a_model_the_workers_cannot_load_fails_the_command(model_dir: Path, tmp_path: Path) -> None:
    # model.json is fine (the supervisor's checks pass); the SavedModel itself is not.
    broken = tmp_path / "models"
    shutil.copytree(model_dir / "cond" / "1", broken / "cond" / "1")
    (broken / "cond" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    replica = ServiceProcess(broken, env={"GAN_WORKERS": "2"})
    replica.launch(log_path=tmp_path / "serve.log")
    assert replica.process is not None
    assert replica.process.wait(timeout=120) == 2
    lines = (tmp_path / "serve.log").read_text().splitlines()
    errors = [line for line in lines if "gan-serve: error" in line]
    assert errors and all("saved_model" in line.lower() or "cond" in line for line in errors)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (an exited one not yet reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
